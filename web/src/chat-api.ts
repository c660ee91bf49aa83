/** The OpenAI-compatible calls the chat page makes, with streaming parsed from SSE. */
import { apiHeaders, ensureOk, readEventStream } from "./api.js";

export interface ChatMessage { readonly role: "system" | "user" | "assistant"; readonly content: string }

export interface ReplyStats {
  readonly completionTokens: number;
  /** Generation speed: tokens after the first over the time after it (the server's own timing when it sends one). */
  readonly tokensPerSecond: number;
  /** Seconds the server spent loading the model for this reply; absent when it was loaded already. */
  readonly loadSeconds?: number;
  /** The model the server says answered, as the stream names it. */
  readonly model?: string;
  /** True when the user stopped the reply before it ended. */
  readonly stopped?: boolean;
}

export interface StreamChatOptions {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly temperature: number;
  readonly maxTokens: number;
  readonly signal: AbortSignal;
  readonly onText: (delta: string) => void;
}

/** A name the chat can send to: a model's name, or an alias over one or more models. */
export interface ModelOption { readonly id: string; readonly alias: boolean; readonly isDefault: boolean }

/** Lists what `/v1/models` offers (aliases carry their targets in `alias`; the server's default model has `default: true`). */
export async function listModels(): Promise<ModelOption[]> {
  const response = await ensureOk(await fetch("/v1/models", { headers: apiHeaders() }));
  const body = (await response.json()) as { data: { id: string; alias?: unknown; default?: boolean }[] };
  return body.data.map((model) => ({ id: model.id, alias: model.alias !== undefined, isDefault: model.default === true }));
}

/** The model a new conversation starts with: the server's default (e.g. `demo-s-chat:f16`), else the first listed. */
export function preferredModel(options: readonly ModelOption[]): string {
  return (options.find((option) => option.isDefault) ?? options[0])?.id ?? "";
}

/** A model lookup faster than this was no load: the reply's stats leave it out. */
const LOAD_SHOWN_MS = 100;

/** Streams one reply; resolves with its token count and speed (also when stopped, from what came). */
export async function streamChat(options: StreamChatOptions): Promise<ReplyStats> {
  const stoppedEarly = { completionTokens: 0, tokensPerSecond: 0, stopped: true };
  let response: Response;
  try {
    response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: apiHeaders(true),
      signal: options.signal,
      body: JSON.stringify({
        model: options.model, messages: options.messages, stream: true, stream_options: { include_usage: true },
        temperature: options.temperature, max_tokens: options.maxTokens,
      }),
    });
  } catch (error) {
    // Stopped before the server answered.
    if (error instanceof DOMException && error.name === "AbortError") return stoppedEarly;
    throw error;
  }
  await ensureOk(response);
  if (!response.body) throw new Error("The server answered without a body");
  let chunks = 0;
  let completionTokens: number | undefined;
  let answeredBy: string | undefined;
  let stopped = false;
  let firstChunkAt: number | undefined;
  let lastChunkAt: number | undefined;
  let timings: { predicted_per_second?: number; load_ms?: number } | undefined;
  try {
    await readEventStream(response, (payload) => {
      const data = payload as {
        error?: { message: string }; model?: string; usage?: { completion_tokens: number }; choices?: { delta?: { content?: string } }[];
        timings?: { predicted_per_second?: number; load_ms?: number };
      };
      if (data.timings) timings = data.timings;
      if (data.model) answeredBy = data.model;
      if (data.error) throw new Error(data.error.message);
      if (data.usage) completionTokens = data.usage.completion_tokens;
      const delta = data.choices?.[0]?.delta?.content;
      if (delta) {
        chunks++;
        lastChunkAt = performance.now();
        firstChunkAt ??= lastChunkAt;
        options.onText(delta);
      }
    });
  } catch (error) {
    if (!(error instanceof DOMException && error.name === "AbortError")) throw error;
    stopped = true;
  }
  // Without a usage chunk (stopped early) each content chunk is one token, as Grove streams them.
  const tokens = completionTokens ?? chunks;
  // Generation only: a model load and the prompt come before the first token, so the speed is
  // the server's (tokens after the first over the time after it), else the same from the chunks.
  const generating = firstChunkAt !== undefined && lastChunkAt !== undefined ? (lastChunkAt - firstChunkAt) / 1000 : 0;
  const tokensPerSecond = timings?.predicted_per_second ?? (generating > 0 && tokens > 1 ? (tokens - 1) / generating : 0);
  // Finding a loaded model takes milliseconds; a load, a tenth of a second and more.
  const loadSeconds = timings?.load_ms !== undefined && timings.load_ms >= LOAD_SHOWN_MS ? timings.load_ms / 1000 : undefined;
  return {
    completionTokens: tokens, tokensPerSecond,
    ...(loadSeconds === undefined ? {} : { loadSeconds }), ...(answeredBy ? { model: answeredBy } : {}), ...(stopped ? { stopped } : {}),
  };
}
