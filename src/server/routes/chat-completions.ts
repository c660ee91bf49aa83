import type { FastifyInstance } from "fastify";
import { ContextLengthError, InvalidRequestError } from "../../core/errors.js";
import type { GenerateDone, TokenLogprob } from "../../engine/engine.js";
import { GenerationSession } from "../../serving/generation-session.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { meterOf } from "../gateway-hooks.js";
import { chatLogprobs, chatMessagesOf, checkLogitBias, clientGoneSignal, jsonConstraint, responseId, samplingOptions, timingsOf } from "../generation.js";
import { chatCompletionSchema, parseBody, type ChatCompletionRequest } from "../openai-schemas.js";
import { SseStream } from "../sse.js";

function usageOf(dones: readonly GenerateDone[]) {
  const prompt = dones[0]?.promptTokens ?? 0;
  const completion = dones.reduce((sum, done) => sum + done.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: dones[0]?.cachedTokens ?? 0 } };
}

/** `POST /v1/chat/completions`, streaming and not, with `n` choices. */
export function registerChatCompletionsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(chatCompletionSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await catalog.get(body.model);
    const sampling = samplingOptions(body);
    const biasProblem = checkLogitBias(model, sampling.logitBias);
    if (biasProblem) throw new InvalidRequestError(biasProblem, { param: "logit_bias" });
    const promptTokens = model.applyChatTemplate(chatMessagesOf(body.messages));
    const room = model.info.contextSize - promptTokens.length;
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? room;
    if (room < 1 || maxTokens > room) {
      throw new ContextLengthError(
        `This model's context holds ${model.info.contextSize} tokens; the messages take ${promptTokens.length}` +
          (maxTokens > room && room >= 1 ? ` and max_tokens asks for ${maxTokens} more` : ""),
        { param: body.max_tokens === undefined && body.max_completion_tokens === undefined ? "messages" : "max_tokens" },
      );
    }
    const n = body.n ?? 1;
    const session = await GenerationSession.start({
      model,
      name: body.model,
      meter,
      generate: {
        ...sampling,
        promptTokens,
        maxTokens,
        json: jsonConstraint(body),
        logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
        signal: clientGoneSignal(reply),
        n,
      },
    });
    const base = { id: responseId("chatcmpl"), created: Math.floor(Date.now() / 1000), model: body.model, system_fingerprint: model.info.digest.slice(7, 19) };
    const logprobsOf = (logprobs: readonly TokenLogprob[] | undefined) => (logprobs && body.logprobs ? { content: chatLogprobs(logprobs), refusal: null } : null);

    if (!body.stream) {
      const choices = await session.collect();
      if (session.cancelled) return reply.code(499).send();
      return {
        ...base,
        object: "chat.completion",
        choices: choices.map((choice, index) => ({
          index,
          message: { role: "assistant", content: choice.text, refusal: null },
          logprobs: logprobsOf(choice.logprobs),
          finish_reason: choice.done.finishReason,
        })),
        usage: usageOf(choices.map((choice) => choice.done)),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    session.streaming();
    const stream = new SseStream(reply);
    const chunk = (index: number, delta: object, finishReason: string | null, logprobs?: readonly TokenLogprob[]) => ({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index, delta, logprobs: logprobsOf(logprobs), finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const dones: GenerateDone[] = [];
    try {
      for (let index = 0; index < n; index++) stream.send(chunk(index, { role: "assistant", content: "" }, null));
      for await (const event of session.events()) {
        const index = event.choice ?? 0;
        if (event.type === "text") {
          stream.send(chunk(index, { content: event.text }, null, event.logprobs));
          continue;
        }
        if (event.finishReason === "aborted") return reply;
        dones.push(event);
        stream.send({ ...chunk(index, {}, event.finishReason), timings: timingsOf(event) });
      }
      if (includeUsage) stream.send({ ...base, object: "chat.completion.chunk", choices: [], usage: usageOf(dones) });
      stream.end();
    } catch (error) {
      request.log.error({ err: error }, "chat stream failed");
      stream.fail(error);
    }
    return reply;
  });
}
