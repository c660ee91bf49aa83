import type { FastifyInstance } from "fastify";
import { ContextLengthError, InvalidRequestError } from "../../core/errors.js";
import type { GenerateDone, GenerateEvent, LoadedModel, TokenLogprob } from "../../engine/engine.js";
import {
  checkLogitBias,
  clientGoneSignal,
  completionLogprobs,
  responseId,
  samplingOptions,
  usageOutcome,
  timingsOf,
} from "../generation.js";
import { meterOf } from "../gateway-hooks.js";
import { completionSchema, parseBody, type CompletionRequest } from "../openai-schemas.js";
import type { ModelCatalog } from "../model-catalog.js";
import { SseStream } from "../sse.js";

/** The prompt field as token lists, one per choice. */
function promptTokenLists(model: LoadedModel, prompt: CompletionRequest["prompt"]): number[][] {
  if (typeof prompt === "string") return [model.tokenize(prompt)];
  if (prompt.length > 0 && typeof prompt[0] === "number") return [prompt as number[]];
  return (prompt as (string | number[])[]).map((item) => (typeof item === "string" ? model.tokenize(item) : item));
}

interface Choice {
  text: string;
  logprobs: TokenLogprob[];
  done: GenerateDone;
}

async function collect(events: AsyncGenerator<GenerateEvent, void, void>): Promise<Choice> {
  let text = "";
  const logprobs: TokenLogprob[] = [];
  let done: GenerateDone | undefined;
  for await (const event of events) {
    if (event.type === "done") done = event;
    else {
      text += event.text;
      if (event.logprobs) logprobs.push(...event.logprobs);
    }
  }
  return { text, logprobs, done: done! };
}

/** `POST /v1/completions`: raw prompts, with `echo` and prompt log-probabilities for evaluation harnesses. */
export function registerCompletionsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/completions", async (request, reply) => {
    const body = parseBody(completionSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await catalog.get(body.model);
    const sampling = samplingOptions(body);
    const biasProblem = checkLogitBias(model, sampling.logitBias);
    if (biasProblem) throw new InvalidRequestError(biasProblem, { param: "logit_bias" });
    const prompts = promptTokenLists(model, body.prompt);
    const { contextSize, vocabularySize } = model.info;
    prompts.forEach((tokens, index) => {
      if (tokens.length === 0) throw new InvalidRequestError(`prompt ${index} is empty`, { param: "prompt" });
      const stray = tokens.find((token) => token >= vocabularySize);
      if (stray !== undefined) {
        throw new InvalidRequestError(`prompt ${index} holds token ${stray}; the vocabulary has ${vocabularySize}`, {
          param: "prompt",
        });
      }
      const maxTokens = body.max_tokens ?? 16;
      if (tokens.length + maxTokens > contextSize) {
        throw new ContextLengthError(
          `This model's context holds ${contextSize} tokens; prompt ${index} has ${tokens.length} and max_tokens asks for ${maxTokens} more`,
          { param: "max_tokens" },
        );
      }
    });
    if (body.stream && prompts.length > 1) {
      throw new InvalidRequestError("Streaming takes one prompt per request", { param: "prompt" });
    }
    await meter.admit({
      model: body.model,
      digest: model.info.digest,
      promptTokens: prompts.reduce((sum, tokens) => sum + tokens.length, 0),
      maxCompletionTokens: (body.max_tokens ?? 16) * prompts.length,
    });
    const echo = body.echo === true;
    const wantLogprobs = body.logprobs !== undefined;
    const signal = clientGoneSignal(reply);
    const start = (tokens: number[]) =>
      model.generate({
        ...sampling,
        promptTokens: tokens,
        // OpenAI's default for the legacy endpoint.
        maxTokens: body.max_tokens ?? 16,
        logprobs: body.logprobs,
        promptLogprobs: echo && wantLogprobs,
        signal,
      });
    const id = responseId("cmpl");
    const created = Math.floor(Date.now() / 1000);
    const base = { id, object: "text_completion", created, model: body.model, system_fingerprint: model.info.digest.slice(7, 19) };

    if (!body.stream) {
      // At most one prompt per slot at a time, so a batch never overflows the wait queue.
      const choices: Choice[] = new Array(prompts.length);
      let next = 0;
      const worker = async () => {
        while (next < prompts.length) {
          const index = next++;
          choices[index] = await collect(start(prompts[index]!));
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(model.info.slots, prompts.length) }, worker));
      } catch (error) {
        // Choices that finished were generated: they count.
        const used = choices.filter((choice) => choice !== undefined).map((choice) => usageOutcome(choice.done));
        await meter.fail(error, {
          promptTokens: used.reduce((sum, outcome) => sum + outcome.promptTokens, 0),
          completionTokens: used.reduce((sum, outcome) => sum + outcome.completionTokens, 0),
        });
        throw error;
      }
      const outcomes = choices.map((choice) => usageOutcome(choice.done));
      const cancelled = outcomes.some((outcome) => outcome.cancelled);
      const firstTokens = outcomes.flatMap((outcome) => (outcome.ttftMs === undefined ? [] : [outcome.ttftMs]));
      await meter.finish({
        promptTokens: outcomes.reduce((sum, outcome) => sum + outcome.promptTokens, 0),
        completionTokens: outcomes.reduce((sum, outcome) => sum + outcome.completionTokens, 0),
        ...(firstTokens.length > 0 ? { ttftMs: Math.min(...firstTokens) } : {}),
        status: cancelled ? 499 : 200,
        cancelled,
      });
      if (choices.some((choice) => choice.done.finishReason === "aborted")) return reply.code(499).send();
      let promptTokens = 0;
      let completionTokens = 0;
      let cachedTokens = 0;
      return {
        ...base,
        choices: choices.map((choice, index) => {
          promptTokens += choice.done.promptTokens;
          completionTokens += choice.done.completionTokens;
          cachedTokens += choice.done.cachedTokens;
          const promptText = echo ? model.detokenize(prompts[index]!) : "";
          const scores = [...(echo ? (choice.done.promptLogprobs ?? []) : []), ...choice.logprobs];
          return {
            index,
            text: promptText + choice.text,
            logprobs: wantLogprobs ? completionLogprobs(scores, 0) : null,
            finish_reason: choice.done.finishReason,
          };
        }),
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          prompt_tokens_details: { cached_tokens: cachedTokens },
        },
      };
    }

    const events = start(prompts[0]!);
    const first = await events.next().catch(async (error: unknown) => {
      await meter.fail(error);
      throw error;
    });
    const includeUsage = body.stream_options?.include_usage === true;
    meter.streaming = true;
    const stream = new SseStream(reply);
    const chunk = (text: string, finishReason: string | null, logprobs?: readonly TokenLogprob[]) => ({
      ...base,
      choices: [{ index: 0, text, logprobs: logprobs && wantLogprobs ? completionLogprobs(logprobs, 0) : null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
    let done: GenerateDone | undefined;
    let failure: unknown;
    try {
      if (echo) stream.send(chunk(model.detokenize(prompts[0]!), null));
      for (let result = first; !result.done; result = await events.next()) {
        const event = result.value;
        if (event.type === "text") {
          stream.send(chunk(event.text, null, event.logprobs));
          continue;
        }
        done = event;
        if (event.finishReason === "aborted") return reply;
        stream.send({ ...chunk("", event.finishReason), timings: timingsOf(event) });
        if (includeUsage) {
          stream.send({
            ...base,
            choices: [],
            usage: {
              prompt_tokens: event.promptTokens,
              completion_tokens: event.completionTokens,
              total_tokens: event.promptTokens + event.completionTokens,
            },
          });
        }
      }
      stream.end();
    } catch (error) {
      request.log.error({ err: error }, "completion stream failed");
      failure = error;
      stream.fail(error);
    } finally {
      // Closing the generator releases the slot whatever happened above.
      await events.return(undefined);
      if (failure === undefined) await meter.finish(usageOutcome(done));
      else await meter.fail(failure);
    }
    return reply;
  });
}
