import { randomBytes } from "node:crypto";
import { InvalidRequestError } from "../core/errors.js";
import type { FastifyReply } from "fastify";
import type { ChatMessage, GenerateDone, GenerateOptions, GenerateProgress, LoadedModel, TokenLogprob } from "../engine/engine.js";
import { shutdownSignalOf } from "./graceful-shutdown.js";
import { onResponseClosed } from "./response-closed.js";
import { checkJsonSchema, type ChatCompletionRequest, type CompletionRequest } from "./openai-schemas.js";

/** An id in OpenAI's style: a prefix and 24 random hex characters. */
export function responseId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString("hex")}`;
}

/**
 * An AbortSignal that fires when the client goes away before the response is finished, or when
 * the server's shutdown grace period ends (graceful-shutdown.ts): either way the work stops and
 * the route records its usage as cancelled. Routes call it after awaits (a model load), so a
 * client already gone by then gets a signal that has fired (and nothing is left listening on the
 * server's shutdown signal).
 */
export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const shutdown = shutdownSignalOf(reply);
  const stop = () => controller.abort();
  if (shutdown?.aborted) controller.abort();
  else shutdown?.addEventListener("abort", stop, { once: true });
  onResponseClosed(reply.raw, () => {
    shutdown?.removeEventListener("abort", stop);
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/**
 * OpenAI chat messages as the engine takes them (`developer` is a system message). Text parts are
 * joined with a newline as llama.cpp joins them for templates; a final assistant message, which is
 * continued (see ChatTurn), with a blank line, as llama.cpp renders a continued message's parts.
 */
export function chatMessagesOf(messages: ChatCompletionRequest["messages"]): ChatMessage[] {
  return messages.map((message, index) => ({
    role: message.role === "developer" ? "system" : message.role,
    content: typeof message.content === "string" ? message.content : (message.content ?? []).map((part) => part.text).join(index === messages.length - 1 && message.role === "assistant" ? "\n\n" : "\n"),
    ...(message.tool_calls?.length ? { toolCalls: message.tool_calls.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments })) } : {}),
    ...(message.tool_call_id === undefined ? {} : { toolCallId: message.tool_call_id }),
    ...(message.name === undefined ? {} : { name: message.name }),
    ...(message.reasoning_content === undefined ? {} : { reasoningContent: message.reasoning_content }),
  }));
}

/** Maps the sampling fields shared by chat and completions onto engine options. */
export function samplingOptions(
  body: ChatCompletionRequest | CompletionRequest,
): Omit<GenerateOptions, "promptTokens" | "maxTokens"> {
  let logitBias: Map<number, number> | undefined;
  if (body.logit_bias) logitBias = new Map(Object.entries(body.logit_bias).map(([key, value]) => [Number(key), value]));
  return {
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    seed: body.seed,
    stop: body.stop,
    presencePenalty: body.presence_penalty,
    frequencyPenalty: body.frequency_penalty,
    repeatPenalty: body.repeat_penalty,
    ignoreEos: body.ignore_eos,
    logitBias,
  };
}

/** Checks logit_bias token ids against the vocabulary (the engine would ignore strays silently). */
export function checkLogitBias(model: LoadedModel, bias: ReadonlyMap<number, number> | undefined): string | undefined {
  if (!bias) return undefined;
  for (const token of bias.keys()) {
    if (token >= model.info.vocabularySize) return `logit_bias names token ${token}; the vocabulary has ${model.info.vocabularySize}`;
  }
  return undefined;
}

/** The `response_format` of a chat request as an engine JSON constraint. */
export function jsonConstraint(body: ChatCompletionRequest): object | "json" | undefined {
  if (body.json_schema !== undefined) {
    if (body.response_format !== undefined && body.response_format.type !== "text") throw new InvalidRequestError("Give response_format or json_schema, not both", { param: "json_schema" });
    checkJsonSchema(body.json_schema);
    return body.json_schema;
  }
  const format = body.response_format;
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") {
    if (format.schema === undefined) return "json";
    checkJsonSchema(format.schema);
    return format.schema;
  }
  checkJsonSchema(format.json_schema.schema);
  return format.json_schema.schema;
}

/** The UTF-8 bytes of a token's text, as OpenAI's `bytes` field carries them. */
export function utf8Bytes(text: string): number[] {
  return [...Buffer.from(text, "utf8")];
}

/**
 * Chat-style logprobs content entries; with `postSampling` (llama-server's `post_sampling_probs`),
 * llama-server's shape of them: `id`, `prob` and `top_probs`, probabilities after the sampler chain.
 */
export function chatLogprobs(logprobs: readonly TokenLogprob[], postSampling = false) {
  if (postSampling) return logprobs.map((entry) => ({ ...probabilityOf(entry.token, entry.text, entry.logprob), top_probs: entry.top.map((top) => probabilityOf(top.token, top.text, top.logprob)) }));
  return logprobs.map((entry) => ({
    token: entry.text,
    logprob: entry.logprob ?? 0,
    bytes: utf8Bytes(entry.text),
    top_logprobs: entry.top.map((top) => ({ token: top.text, logprob: top.logprob, bytes: utf8Bytes(top.text) })),
  }));
}

/** One token as llama-server's post-sampling entries give it: a probability (never above 1) instead of its log. */
export function probabilityOf(token: number, text: string, logprob: number | null) {
  return { id: token, token: text, bytes: utf8Bytes(text), prob: logprob === null ? 0 : Math.min(1, Math.exp(logprob)) };
}

/** llama-server's `prompt_progress` object. */
export function promptProgressOf(progress: GenerateProgress) {
  return { total: progress.total, cache: progress.cache, processed: progress.processed, time_ms: Math.round(progress.timeMs) };
}

/** Legacy completions-style logprobs, with text offsets counted from `offset`. */
export function completionLogprobs(logprobs: readonly TokenLogprob[], offset: number) {
  const tokens: string[] = [];
  const tokenLogprobs: (number | null)[] = [];
  const topLogprobs: (Record<string, number> | null)[] = [];
  const textOffset: number[] = [];
  let position = offset;
  for (const entry of logprobs) {
    tokens.push(entry.text);
    tokenLogprobs.push(entry.logprob);
    topLogprobs.push(entry.logprob === null ? null : Object.fromEntries(entry.top.map((top) => [top.text, top.logprob])));
    textOffset.push(position);
    position += entry.text.length;
  }
  return { tokens, token_logprobs: tokenLogprobs, top_logprobs: topLogprobs, text_offset: textOffset };
}


/**
 * llama-server's `timings` object for a finished generation (its clients and benchmarks read it):
 * prompt tokens evaluated and the time to the first token, tokens generated and the time after it.
 */
export function timingsOf(done: GenerateDone): Record<string, number> {
  const promptN = done.promptTokens - done.cachedTokens;
  const promptMs = done.timeToFirstTokenMs;
  const predictedMs = Math.max(0, done.totalMs - done.timeToFirstTokenMs);
  const predictedN = done.completionTokens;
  return {
    cache_n: done.cachedTokens,
    prompt_n: promptN,
    prompt_ms: promptMs,
    prompt_per_token_ms: promptN > 0 ? promptMs / promptN : 0,
    prompt_per_second: promptMs > 0 ? (promptN * 1000) / promptMs : 0,
    predicted_n: predictedN,
    predicted_ms: predictedMs,
    predicted_per_token_ms: predictedN > 1 ? predictedMs / (predictedN - 1) : 0,
    predicted_per_second: predictedMs > 0 && predictedN > 1 ? ((predictedN - 1) * 1000) / predictedMs : 0,
  };
}

/** llama-server's `chat_template_kwargs`: `enable_thinking` is the renderer's own option, the rest are template variables. */
export function templateKwargs(kwargs: Readonly<Record<string, unknown>> | undefined): { enableThinking?: boolean; templateArguments?: Record<string, unknown> } {
  if (kwargs === undefined) return {};
  const { enable_thinking: enableThinking, ...rest } = kwargs;
  return { ...(typeof enableThinking === "boolean" ? { enableThinking } : {}), ...(Object.keys(rest).length > 0 ? { templateArguments: rest } : {}) };
}

/** The template's options a chat request sets, and whether it continues its final message. */
export function templateOptions(body: { chat_template_kwargs?: Record<string, unknown>; add_generation_prompt?: boolean; continue_final_message?: boolean | "content" | "reasoning_content" }) {
  return {
    render: { ...templateKwargs(body.chat_template_kwargs), ...(body.add_generation_prompt === undefined ? {} : { addGenerationPrompt: body.add_generation_prompt }) },
    ...(body.continue_final_message === undefined ? {} : { continueFinal: body.continue_final_message }),
  };
}
