import { performance } from "node:perf_hooks";
import { EngineError } from "../core/errors.js";
import { SseParser } from "./sse-parser.js";

/** One streamed `POST /v1/completions` request, sent the same way to every server under test. */
export interface StreamCompletionOptions {
  /** Server root, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** Model id (Grove requires it; llama-server ignores it). */
  readonly model: string;
  /** Raw prompt text: no chat template is applied. */
  readonly prompt: string;
  /** Exact number of tokens to generate; sent with `ignore_eos: true` so generation does not stop early. */
  readonly maxTokens: number;
  /** `logit_bias` to send (token id → bias), e.g. from `utf8SafeTokenBias`. @default none */
  readonly logitBias?: Readonly<Record<string, number>>;
  /** Gives up on the request after this long. @default 600000 */
  readonly timeoutMs?: number;
  /** Ends the request early; what arrived until then is returned (`finishReason` undefined). */
  readonly signal?: AbortSignal;
  /** Called as the first text arrives. */
  readonly onFirstText?: () => void;
}

/** What one streamed request measured. Times are `performance.now()` milliseconds. */
export interface StreamCompletionResult {
  /** Just before `fetch` was called. */
  readonly startedAt: number;
  /** First event that carried a choice (text or finish reason): the end of prompt processing. */
  readonly firstChoiceAt: number | undefined;
  /** First event whose choice text was non-empty. */
  readonly firstTextAt: number | undefined;
  /** Last event whose choice text was non-empty. */
  readonly lastTextAt: number | undefined;
  /** The arrival time of every event with non-empty text, in order. */
  readonly textEventTimes: readonly number[];
  /** Arrival of the event carrying `finish_reason`: generation ended. */
  readonly finishAt: number | undefined;
  /** When the stream ended (`[DONE]` or end of body). */
  readonly endedAt: number;
  /** `usage.prompt_tokens` of the stream's usage event, if the server sent one. */
  readonly promptTokens: number | undefined;
  /** `usage.completion_tokens` of the stream's usage event, if the server sent one. */
  readonly completionTokens: number | undefined;
  /** The choice's `finish_reason`, e.g. `length`. */
  readonly finishReason: string | undefined;
  /** The generated text, concatenated. */
  readonly text: string;
  /** The server's own timing of the generation (llama-server's and Grove's `timings`), when it sent one. */
  readonly serverTimings?: { readonly predictedN: number; readonly predictedMs: number };
}

interface CompletionEvent {
  timings?: { predicted_n?: number; predicted_ms?: number };
  choices?: { text?: string; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string } | string;
}

/** The request body; identical for both servers so that neither is favoured. */
function requestBody(options: StreamCompletionOptions): string {
  return JSON.stringify({
    model: options.model,
    prompt: options.prompt,
    max_tokens: options.maxTokens,
    temperature: 0,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
    ...(options.logitBias && Object.keys(options.logitBias).length > 0 ? { logit_bias: options.logitBias } : {}),
  });
}

/**
 * Sends one streamed completion and times its events. Every server is driven through this
 * one function (plain `fetch`, no SDK), so differences in the numbers come from the
 * servers, not from the client.
 *
 * @throws EngineError when the server answers with a non-2xx status, an `error` event or
 * malformed JSON.
 */
export async function streamCompletion(options: StreamCompletionOptions): Promise<StreamCompletionResult> {
  const startedAt = performance.now();
  const response = await fetch(`${options.baseUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: requestBody(options),
    signal: options.signal === undefined ? AbortSignal.timeout(options.timeoutMs ?? 600_000) : AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs ?? 600_000)]),
  });
  if (!response.ok || !response.body) {
    const detail = (await response.text()).slice(0, 500);
    throw new EngineError(`POST ${options.baseUrl}/v1/completions answered ${response.status}: ${detail}`);
  }
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const textEventTimes: number[] = [];
  let firstChoiceAt: number | undefined;
  let promptTokens: number | undefined;
  let completionTokens: number | undefined;
  let finishReason: string | undefined;
  let finishAt: number | undefined;
  let text = "";
  let done = false;
  let serverTimings: StreamCompletionResult["serverTimings"];
  try {
    for await (const bytes of response.body) {
      const arrivedAt = performance.now();
      for (const data of parser.push(decoder.decode(bytes, { stream: true }))) {
        if (data === "[DONE]") {
          done = true;
          break;
        }
        const event = parseEvent(data, options.baseUrl);
        if (event.usage) {
          promptTokens = event.usage.prompt_tokens ?? promptTokens;
          completionTokens = event.usage.completion_tokens ?? completionTokens;
        }
        if (typeof event.timings?.predicted_n === "number" && typeof event.timings.predicted_ms === "number") {
          serverTimings = { predictedN: event.timings.predicted_n, predictedMs: event.timings.predicted_ms };
        }
        const choice = event.choices?.[0];
        if (!choice) continue;
        firstChoiceAt ??= arrivedAt;
        if (choice.finish_reason) {
          finishReason = choice.finish_reason;
          finishAt ??= arrivedAt;
        }
        if (choice.text) {
          if (textEventTimes.length === 0) options.onFirstText?.();
          text += choice.text;
          textEventTimes.push(arrivedAt);
        }
      }
      if (done) break;
    }
  } catch (error) {
    // Ended on purpose: keep what arrived.
    if (!options.signal?.aborted) throw error;
  }
  if (!options.signal?.aborted) parser.finish();
  return {
    startedAt,
    firstChoiceAt,
    firstTextAt: textEventTimes[0],
    lastTextAt: textEventTimes.at(-1),
    textEventTimes,
    finishAt,
    endedAt: performance.now(),
    promptTokens,
    completionTokens,
    finishReason,
    text,
    ...(serverTimings === undefined ? {} : { serverTimings }),
  };
}

function parseEvent(data: string, baseUrl: string): CompletionEvent {
  let event: CompletionEvent;
  try {
    event = JSON.parse(data) as CompletionEvent;
  } catch (error) {
    throw new EngineError(`${baseUrl} sent an event that is not JSON: ${data.slice(0, 200)}`, { cause: error });
  }
  if (event.error !== undefined) {
    const message = typeof event.error === "string" ? event.error : (event.error.message ?? JSON.stringify(event.error));
    throw new EngineError(`${baseUrl} failed during the stream: ${message}`);
  }
  return event;
}

/**
 * Counts a prompt's tokens as the server sees them, with one non-streamed request that
 * generates a single token and reading `usage.prompt_tokens`.
 */
export async function countPromptTokens(baseUrl: string, model: string, prompt: string): Promise<number> {
  const response = await fetch(`${baseUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: 1, temperature: 0 }),
    signal: AbortSignal.timeout(120_000),
  });
  const body = (await response.json().catch(() => undefined)) as CompletionEvent | undefined;
  const count = body?.usage?.prompt_tokens;
  if (!response.ok || typeof count !== "number") {
    throw new EngineError(`Could not count prompt tokens at ${baseUrl}: status ${response.status}, ${JSON.stringify(body)?.slice(0, 300)}`);
  }
  return count;
}
