import type { FastifyInstance } from "fastify";
import { ContextLengthError, InvalidRequestError } from "../../core/errors.js";
import type { GenerateDone, LoadedModel, TokenLogprob } from "../../engine/engine.js";
import { withLora } from "../../serving/lora-mix.js";
import { GenerationSession, shareMeter, type CollectedChoice } from "../../serving/generation-session.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { meterOf } from "../gateway-hooks.js";
import { checkLogitBias, clientGoneSignal, completionLogprobs, responseId, samplingOptions, timingsOf } from "../generation.js";
import { completionSchema, parseBody, type CompletionRequest } from "../openai-schemas.js";
import { SseStream } from "../sse.js";

/** One prompt's tokens, and how many of them tokenizing added in front (BOS) that the client did not write. */
interface PromptTokens {
  readonly tokens: number[];
  readonly added: number;
}

/**
 * The prompt field as token lists, one per prompt. Text is tokenized as llama-server tokenizes a
 * prompt: BOS added where the vocabulary asks, special-token text (`<|im_start|>`) parsed into
 * its token — unless `parse_special` is false. Token lists are taken as they are.
 */
export function promptTokenLists(model: LoadedModel, prompt: CompletionRequest["prompt"], parseSpecial = true): PromptTokens[] {
  const tokenize = (text: string): PromptTokens => {
    const tokens = model.tokenize(text, { special: parseSpecial, addSpecial: true });
    return { tokens, added: Math.max(0, tokens.length - model.tokenize(text, { special: parseSpecial }).length) };
  };
  if (typeof prompt === "string") return [tokenize(prompt)];
  if (prompt.length > 0 && typeof prompt[0] === "number") return [{ tokens: prompt as number[], added: 0 }];
  return (prompt as (string | number[])[]).map((item) => (typeof item === "string" ? tokenize(item) : { tokens: item, added: 0 }));
}

/** The prompt as echoed: the client's text, with special tokens as written, without the BOS tokenizing added. */
function echoText(model: LoadedModel, prompt: PromptTokens, parseSpecial: boolean): string {
  return model.detokenize(prompt.tokens.slice(prompt.added), { special: parseSpecial });
}

/** Prompt scores as echoed: the added BOS keeps its place (no score) but no text, so text offsets match the client's prompt. */
function echoScores(prompt: PromptTokens, scores: readonly TokenLogprob[]): TokenLogprob[] {
  return scores.map((score, index) => (index < prompt.added ? { ...score, text: "" } : score));
}

/** `POST /v1/completions`: raw prompts, with `n`, `echo` and prompt log-probabilities for evaluation harnesses. */
export function registerCompletionsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/completions", async (request, reply) => {
    const body = parseBody(completionSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await withLora(catalog, body.model, await catalog.get(body.model), body.lora, (fork) => meter.applyFork(fork));
    const sampling = samplingOptions(body);
    const biasProblem = checkLogitBias(model, sampling.logitBias);
    if (biasProblem) throw new InvalidRequestError(biasProblem, { param: "logit_bias" });
    const parseSpecial = body.parse_special ?? true;
    const prompts = promptTokenLists(model, body.prompt, parseSpecial);
    const tokenLists = prompts.map((prompt) => prompt.tokens);
    // OpenAI's default for the legacy endpoint.
    const maxTokens = body.max_tokens ?? model.info.defaults?.maxTokens ?? 16;
    const n = body.n ?? 1;
    const { contextSize, vocabularySize } = model.info;
    tokenLists.forEach((tokens, index) => {
      if (tokens.length === 0) throw new InvalidRequestError(`prompt ${index} is empty`, { param: "prompt" });
      const stray = tokens.find((token) => token >= vocabularySize);
      if (stray !== undefined) throw new InvalidRequestError(`prompt ${index} holds token ${stray}; the vocabulary has ${vocabularySize}`, { param: "prompt" });
      if (tokens.length + maxTokens > contextSize) {
        throw new ContextLengthError(`This model's context holds ${contextSize} tokens; prompt ${index} has ${tokens.length} and max_tokens asks for ${maxTokens} more`, { param: "max_tokens", sizes: { promptTokens: tokens.length, contextSize } });
      }
    });
    if (body.stream && prompts.length > 1) throw new InvalidRequestError("Streaming takes one prompt per request", { param: "prompt" });
    if (n > model.info.slots) throw new InvalidRequestError(`n is ${n}; this model runs ${model.info.slots} slots, so at most ${model.info.slots} choices`, { param: "n" });
    // The worst case of every prompt is reserved at once, before any slot is taken.
    await meter.admit({ model: body.model, digest: model.info.digest, promptTokens: tokenLists.reduce((sum, tokens) => sum + tokens.length, 0), maxCompletionTokens: maxTokens * n * prompts.length });
    const echo = body.echo === true;
    const wantLogprobs = body.logprobs !== undefined;
    const signal = clientGoneSignal(reply);
    const shares = shareMeter(meter, prompts.length);
    const start = (index: number) =>
      GenerationSession.start({
        model,
        name: body.model,
        meter: shares[index]!,
        generate: { ...sampling, promptTokens: tokenLists[index]!, maxTokens, n, logprobs: body.logprobs, promptLogprobs: echo && wantLogprobs, signal },
      });
    const base = { id: responseId("cmpl"), object: "text_completion", created: Math.floor(Date.now() / 1000), model: body.model, system_fingerprint: model.info.digest.slice(7, 19) };

    if (!body.stream) {
      // At most as many prompts at a time as the model has slots, so a batch never overflows the wait queue.
      const results: { choices: CollectedChoice[]; cancelled: boolean }[] = new Array(prompts.length);
      let next = 0;
      let failure: unknown;
      const worker = async () => {
        while (next < prompts.length && failure === undefined) {
          const index = next++;
          try {
            const session = await start(index);
            results[index] = { choices: await session.collect(), cancelled: session.cancelled };
          } catch (error) {
            failure ??= error;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(Math.floor(model.info.slots / n), prompts.length)) }, worker));
      if (failure !== undefined) {
        // Prompts never started settle their share too, so the request is metered once.
        for (let index = next; index < prompts.length; index++) await shares[index]!.fail(failure);
        throw failure;
      }
      if (results.some((result) => result.cancelled)) return reply.code(499).send();
      const choices = results.flatMap((result, prompt) => result.choices.map((choice) => ({ ...choice, prompt })));
      const dones = choices.map((choice) => choice.done);
      const promptTokens = results.reduce((sum, result) => sum + result.choices[0]!.done.promptTokens, 0);
      const completionTokens = dones.reduce((sum, done) => sum + done.completionTokens, 0);
      return {
        ...base,
        choices: choices.map((choice, index) => {
          const promptText = echo ? echoText(model, prompts[choice.prompt]!, parseSpecial) : "";
          const scores = [...(echo ? echoScores(prompts[choice.prompt]!, choice.done.promptLogprobs ?? []) : []), ...choice.logprobs];
          return { index, text: promptText + choice.text, logprobs: wantLogprobs ? completionLogprobs(scores, 0) : null, finish_reason: choice.done.finishReason };
        }),
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          prompt_tokens_details: { cached_tokens: results.reduce((sum, result) => sum + result.choices[0]!.done.cachedTokens, 0) },
        },
      };
    }

    const session = await start(0);
    const includeUsage = body.stream_options?.include_usage === true;
    session.streaming();
    const stream = new SseStream(reply);
    const chunk = (index: number, text: string, finishReason: string | null, logprobs?: readonly TokenLogprob[]) => ({
      ...base,
      choices: [{ index, text, logprobs: logprobs && wantLogprobs ? completionLogprobs(logprobs, 0) : null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const dones: GenerateDone[] = [];
    try {
      if (echo) for (let index = 0; index < n; index++) stream.send(chunk(index, echoText(model, prompts[0]!, parseSpecial), null));
      for await (const event of session.events()) {
        const index = event.choice ?? 0;
        if (event.type === "progress") continue; // never asked for here
        if (event.type === "text") {
          stream.send(chunk(index, event.text, null, event.logprobs));
          continue;
        }
        if (event.finishReason === "aborted") return reply;
        dones.push(event);
        stream.send({ ...chunk(index, "", event.finishReason), timings: timingsOf(event) });
      }
      if (includeUsage) {
        const promptTokens = dones[0]?.promptTokens ?? 0;
        const completionTokens = dones.reduce((sum, done) => sum + done.completionTokens, 0);
        stream.send({ ...base, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } });
      }
      stream.end();
    } catch (error) {
      request.log.error({ err: error }, "completion stream failed");
      stream.fail(error);
    }
    return reply;
  });
}
