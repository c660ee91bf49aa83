import type { FastifyInstance } from "fastify";
import { ContextLengthError, InvalidRequestError } from "../../core/errors.js";
import type { ChatMessage, Engine, GenerateDone, GenerateEvent, TokenLogprob } from "../../engine/engine.js";
import {
  chatLogprobs,
  checkLogitBias,
  clientGoneSignal,
  jsonConstraint,
  responseId,
  samplingOptions,
  usageOutcome,
  timingsOf,
} from "../generation.js";
import { meterOf } from "../gateway-hooks.js";
import { chatCompletionSchema, parseBody, type ChatCompletionRequest } from "../openai-schemas.js";
import type { ModelCatalog } from "../model-catalog.js";
import { SseStream } from "../sse.js";

function toMessages(body: ChatCompletionRequest): ChatMessage[] {
  return body.messages.map((message) => ({
    role: message.role === "developer" ? "system" : message.role,
    content:
      typeof message.content === "string"
        ? message.content
        : (message.content ?? []).map((part) => part.text).join(""),
  }));
}

function usageOf(done: GenerateDone) {
  return {
    prompt_tokens: done.promptTokens,
    completion_tokens: done.completionTokens,
    total_tokens: done.promptTokens + done.completionTokens,
    prompt_tokens_details: { cached_tokens: done.cachedTokens },
  };
}

/** `POST /v1/chat/completions`, streaming and not. */
export function registerChatCompletionsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(chatCompletionSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await catalog.get(body.model);
    const sampling = samplingOptions(body);
    const biasProblem = checkLogitBias(model, sampling.logitBias);
    if (biasProblem) throw new InvalidRequestError(biasProblem, { param: "logit_bias" });
    const promptTokens = model.applyChatTemplate(toMessages(body));
    const room = model.info.contextSize - promptTokens.length;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? room;
    if (room < 1 || maxTokens > room) {
      throw new ContextLengthError(
        `This model's context holds ${model.info.contextSize} tokens; the messages take ${promptTokens.length}` +
          (maxTokens > room && room >= 1 ? ` and max_tokens asks for ${maxTokens} more` : ""),
        { param: body.max_tokens === undefined && body.max_completion_tokens === undefined ? "messages" : "max_tokens" },
      );
    }
    const json = jsonConstraint(body);
    if (json !== undefined) await model.prepareJsonGrammar(json);
    // The worst case is reserved from the key's limits and budget before a slot is taken.
    await meter.admit({ model: body.model, digest: model.info.digest, promptTokens: promptTokens.length, maxCompletionTokens: maxTokens });
    const events = model.generate({
      ...sampling,
      promptTokens,
      maxTokens,
      json,
      logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
      signal: clientGoneSignal(reply),
    });
    // The first event comes after a slot is found and the prompt is read: errors before it
    // (queue full, bad grammar) still get a proper status code.
    const first = await events.next().catch(async (error: unknown) => {
      await meter.fail(error);
      throw error;
    });
    const id = responseId("chatcmpl");
    const created = Math.floor(Date.now() / 1000);
    const base = { id, created, model: body.model, system_fingerprint: model.info.digest.slice(7, 19) };

    if (!body.stream) {
      let content = "";
      const logprobs: TokenLogprob[] = [];
      let done: GenerateDone | undefined;
      try {
        for (let result = first; !result.done; result = await events.next()) {
          const event: GenerateEvent = result.value;
          if (event.type === "done") done = event;
          else {
            content += event.text;
            if (event.logprobs) logprobs.push(...event.logprobs);
          }
        }
      } catch (error) {
        await meter.fail(error);
        throw error;
      }
      await meter.finish(usageOutcome(done));
      if (!done || done.finishReason === "aborted") return reply.code(499).send();
      return {
        ...base,
        object: "chat.completion",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content, refusal: null },
            logprobs: body.logprobs ? { content: chatLogprobs(logprobs), refusal: null } : null,
            finish_reason: done.finishReason,
          },
        ],
        usage: usageOf(done),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    meter.streaming = true;
    const stream = new SseStream(reply);
    const chunk = (delta: object, finishReason: string | null, logprobs?: readonly TokenLogprob[]) => ({
      ...base,
      object: "chat.completion.chunk",
      choices: [
        {
          index: 0,
          delta,
          logprobs: logprobs && body.logprobs ? { content: chatLogprobs(logprobs), refusal: null } : null,
          finish_reason: finishReason,
        },
      ],
      ...(includeUsage ? { usage: null } : {}),
    });
    let done: GenerateDone | undefined;
    let failure: unknown;
    try {
      stream.send(chunk({ role: "assistant", content: "" }, null));
      for (let result = first; !result.done; result = await events.next()) {
        const event = result.value;
        if (event.type === "text") {
          stream.send(chunk({ content: event.text }, null, event.logprobs));
          continue;
        }
        done = event;
        if (event.finishReason === "aborted") return reply;
        stream.send({ ...chunk({}, event.finishReason), timings: timingsOf(event) });
        if (includeUsage) stream.send({ ...base, object: "chat.completion.chunk", choices: [], usage: usageOf(event) });
      }
      stream.end();
    } catch (error) {
      request.log.error({ err: error }, "chat stream failed");
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
