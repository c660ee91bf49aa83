import type { FastifyInstance } from "fastify";
import { InvalidRequestError } from "../../core/errors.js";
import type { GenerateDone, TokenLogprob } from "../../engine/engine.js";
import { withLora } from "../../serving/lora-mix.js";
import { ChatTurn } from "../../serving/chat-turn.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { meterOf } from "../gateway-hooks.js";
import { chatLogprobs, chatMessagesOf, checkLogitBias, clientGoneSignal, jsonConstraint, promptProgressOf, responseId, samplingOptions, templateOptions, timingsOf } from "../generation.js";
import { chatCompletionSchema, parseBody } from "../openai-schemas.js";
import { SseStream } from "../sse.js";

function usageOf(dones: readonly GenerateDone[]) {
  const prompt = dones[0]?.promptTokens ?? 0;
  const completion = dones.reduce((sum, done) => sum + done.completionTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: dones[0]?.cachedTokens ?? 0 } };
}

/** `POST /v1/chat/completions`, streaming and not, with `n` choices; and llama-server's `…/input_tokens` count. */
export function registerChatCompletionsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/chat/completions/input_tokens", async (request) => {
    const body = parseBody(chatCompletionSchema, request.body);
    meterOf(request).checkModel(body.model);
    const model = await catalog.get(body.model);
    const tools = body.tools === undefined ? {} : { tools: { definitions: body.tools, choice: body.tool_choice ?? ("auto" as const), parallel: body.parallel_tool_calls ?? true } };
    return { input_tokens: ChatTurn.promptTokens({ model, messages: chatMessagesOf(body.messages), ...templateOptions(body), ...tools }).length };
  });

  app.post("/v1/chat/completions", async (request, reply) => {
    const body = parseBody(chatCompletionSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    // A model loaded for this request makes its first token late: the time is reported apart
    // (`timings.load_ms`, as Ollama's load_duration) so clients do not count it as generation.
    const getStarted = performance.now();
    const model = await withLora(catalog, body.model, await catalog.get(body.model), body.lora, (fork) => meter.applyFork(fork));
    const loadMs = performance.now() - getStarted;
    const sampling = samplingOptions(body);
    const biasProblem = checkLogitBias(model, sampling.logitBias);
    if (biasProblem) throw new InvalidRequestError(biasProblem, { param: "logit_bias" });
    const n = body.n ?? 1;
    // llama-server reports the prompt's evaluation on streams only.
    const progress = (body.stream ?? false) && (body.return_progress ?? false);
    const turn = await ChatTurn.start({
      model,
      name: body.model,
      meter,
      messages: chatMessagesOf(body.messages),
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      maxTokensParam: "max_tokens",
      generate: {
        ...sampling,
        json: jsonConstraint(body),
        ...(body.grammar === undefined ? {} : { grammar: body.grammar }),
        logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
        postSamplingProbs: body.post_sampling_probs ?? false,
        progress: progress,
        signal: clientGoneSignal(reply),
        n,
      },
      ...templateOptions(body),
      ...(body.tools === undefined ? {} : { tools: { definitions: body.tools, choice: body.tool_choice ?? "auto", parallel: body.parallel_tool_calls ?? true } }),
    });
    const base = { id: responseId("chatcmpl"), created: Math.floor(Date.now() / 1000), model: body.model, system_fingerprint: model.info.digest.slice(7, 19) };
    const logprobsOf = (logprobs: readonly TokenLogprob[] | undefined) => (logprobs && body.logprobs ? { content: chatLogprobs(logprobs, body.post_sampling_probs ?? false), refusal: null } : null);
    const finishOf = (done: GenerateDone, calls: number) => (calls > 0 && done.finishReason === "stop" ? "tool_calls" : done.finishReason);

    if (!body.stream) {
      const choices = await turn.collect();
      if (turn.cancelled) return reply.code(499).send();
      return {
        ...base,
        object: "chat.completion",
        choices: choices.map((choice, index) => ({
          index,
          message: {
            role: "assistant",
            content: choice.content === "" && choice.toolCalls.length > 0 ? null : choice.content,
            ...(choice.reasoning === "" ? {} : { reasoning_content: choice.reasoning }),
            ...(choice.toolCalls.length === 0 ? {} : { tool_calls: choice.toolCalls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } })) }),
            refusal: null,
          },
          logprobs: logprobsOf(choice.logprobs),
          finish_reason: finishOf(choice.done, choice.toolCalls.length),
        })),
        usage: usageOf(choices.map((choice) => choice.done)),
        // llama-server's debug answer: asked for, or the server logs at debug level (its --verbose).
        ...(body.verbose || request.log.level === "debug" || request.log.level === "trace" ? { __verbose: { prompt: model.detokenize([...turn.prompt], { special: true }), content: choices[0]?.content ?? "", tokens_evaluated: turn.promptTokens, tokens_predicted: choices[0]?.done.completionTokens ?? 0, timings: choices[0] ? timingsOf(choices[0].done) : {} } } : {}),
      };
    }

    const includeUsage = body.stream_options?.include_usage === true;
    turn.session.streaming();
    const stream = new SseStream(reply);
    const chunk = (index: number, delta: object, finishReason: string | null, logprobs?: readonly TokenLogprob[]) => ({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index, delta, logprobs: logprobsOf(logprobs), finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const dones: GenerateDone[] = [];
    try {
      // The first chunk names the role; content null, as llama-server sends it. With progress,
      // llama-server's progress chunks name it (the first comes before any text) for choice 0.
      for (let index = progress ? 1 : 0; index < n; index++) stream.send(chunk(index, { role: "assistant", content: null }, null));
      for await (const event of turn.events()) {
        const index = event.choice;
        if (event.type === "progress") stream.send({ ...chunk(index, { role: "assistant", content: null }, null), prompt_progress: promptProgressOf(event.progress) });
        else if (event.type === "content") stream.send(chunk(index, { content: event.text }, null, event.logprobs));
        else if (event.type === "reasoning") stream.send(chunk(index, { reasoning_content: event.text }, null));
        else if (event.type === "tool_call") stream.send(chunk(index, { tool_calls: [event.delta] }, null));
        else {
          if (event.done.finishReason === "aborted") return reply;
          dones.push(event.done);
          stream.send({ ...chunk(index, {}, finishOf(event.done, event.toolCalls.length)), timings: timingsOf(event.done) });
        }
      }
      // The usage chunk carries llama-server's timings too (of the first choice).
      if (includeUsage) stream.send({ ...base, object: "chat.completion.chunk", choices: [], usage: usageOf(dones), ...(dones[0] ? { timings: { ...timingsOf(dones[0]), load_ms: Math.round(loadMs) } } : {}) });
      stream.end();
    } catch (error) {
      request.log.error({ err: error }, "chat stream failed");
      stream.fail(error);
    }
    return reply;
  });
}
