import { GroveError, InvalidRequestError, UnauthorizedError, UpstreamError } from "../../core/errors.js";

/**
 * A client of a Grove's Ollama-compatible API (`/api/chat`, `/api/show`, `/api/version`): what
 * `grove run` talks to, whether the server is another process (`GROVE_HOST`) or started in this
 * one on a loopback port. Going through HTTP either way keeps one generation path: the chat a
 * terminal user sees is the one every API client gets.
 */

/** One message of a conversation, as `/api/chat` takes it. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** What `/api/chat` is asked. */
export interface ChatRequest {
  model: string;
  messages: readonly ChatMessage[];
  /** Ollama's `options` (temperature, num_ctx, stop…), passed as they are: the server bounds them. */
  options?: Readonly<Record<string, unknown>>;
  /** `json` constrains the answer to JSON. */
  format?: string;
  /** Ollama's `keep_alive` (`5m`, `0`, `-1`). */
  keepAlive?: string;
}

/** The figures of the last line of an answer (nanoseconds and token counts, as Ollama sends them). */
export interface ChatStats {
  doneReason: string;
  totalDuration: number;
  loadDuration: number;
  promptEvalCount: number;
  promptEvalDuration: number;
  evalCount: number;
  evalDuration: number;
}

/** One streamed piece of an answer: text, or the end with its figures. */
export type ChatChunk = { type: "content"; text: string } | { type: "done"; stats: ChatStats };

/** The parts of `/api/show` that `grove run`'s `/show` prints. */
export interface ShowResponse {
  license?: string;
  modelfile?: string;
  parameters?: string;
  template?: string;
  system?: string;
  details?: { family?: string; parameter_size?: string; quantization_level?: string };
  model_info?: Record<string, unknown>;
  capabilities?: string[];
}

/** Options of {@link ChatClient}. */
export interface ChatClientOptions {
  /** The server's root, e.g. `http://127.0.0.1:11435`. */
  url: string;
  /** Bearer key, when the server requires one (`GROVE_API_KEY`). */
  apiKey?: string;
}

export class ChatClient {
  readonly url: string;
  readonly #apiKey: string | undefined;

  constructor(options: ChatClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#apiKey = options.apiKey === "" ? undefined : options.apiKey;
  }

  /**
   * Whether a server answers `/api/version` within `timeoutMs`.
   * @returns the error that kept it from answering, or undefined when it answered
   */
  async probe(timeoutMs = 2000): Promise<Error | undefined> {
    try {
      const response = await fetch(`${this.url}/api/version`, { headers: this.#headers(), signal: AbortSignal.timeout(timeoutMs) });
      await response.body?.cancel();
      return response.ok ? undefined : new UpstreamError(`${this.url}/api/version answered ${response.status}`, { status: response.status });
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  /** `/api/show` of one model. @throws GroveError with the server's message (404: model_not_found) */
  async show(model: string): Promise<ShowResponse> {
    const response = await this.#post("/api/show", { model }, model);
    return (await response.json()) as ShowResponse;
  }

  /** Loads the model (`/api/chat` without messages, as `ollama run` does before its prompt). */
  async load(model: string, keepAlive?: string): Promise<void> {
    const response = await this.#post("/api/chat", { model, messages: [], ...(keepAlive === undefined ? {} : { keep_alive: keepAlive }) }, model);
    await response.body?.cancel();
  }

  /**
   * Streams an answer. Aborting `signal` closes the connection, which frees the server's slot.
   * @throws GroveError for an HTTP error or an error line in the stream
   */
  async *chat(request: ChatRequest, signal?: AbortSignal): AsyncGenerator<ChatChunk> {
    const body = {
      model: request.model,
      messages: request.messages,
      stream: true,
      ...(request.options === undefined || Object.keys(request.options).length === 0 ? {} : { options: request.options }),
      ...(request.format === undefined ? {} : { format: request.format }),
      ...(request.keepAlive === undefined ? {} : { keep_alive: request.keepAlive }),
    };
    const response = await this.#post("/api/chat", body, request.model, signal);
    const decoder = new TextDecoder();
    let pending = "";
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(bytes, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line !== "") yield* chunksOf(line);
      }
    }
    if (pending.trim() !== "") yield* chunksOf(pending.trim());
  }

  #headers(): Record<string, string> {
    return { "content-type": "application/json", ...(this.#apiKey === undefined ? {} : { authorization: `Bearer ${this.#apiKey}` }) };
  }

  async #post(path: string, body: unknown, model: string, signal?: AbortSignal): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { method: "POST", headers: this.#headers(), body: JSON.stringify(body), ...(signal === undefined ? {} : { signal }) });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw unreachable(this.url, error);
    }
    if (response.ok) return response;
    const text = await response.text();
    let message = text;
    try {
      const parsed = JSON.parse(text) as { error?: string | { message?: string } };
      message = typeof parsed.error === "string" ? parsed.error : (parsed.error?.message ?? text);
    } catch {
      // Not JSON (a proxy's page): the text is the message.
    }
    throw httpError(response.status, message, model, this.url);
  }
}

/** The error of a server that cannot be reached: what to do about it, with the network error as cause. */
export function unreachable(url: string, cause: unknown): GroveError {
  const code = (cause as { cause?: { code?: string } })?.cause?.code ?? (cause as Error)?.name ?? "no answer";
  return new UpstreamError(`Cannot reach Grove at ${url} (${code}): start it with grove serve, or unset GROVE_HOST (and --host) to serve the model in this process`, { cause });
}

function httpError(status: number, message: string, model: string, url: string): GroveError {
  if (status === 404) return new GroveError("model_not_found", `The model '${model}' is not served at ${url} (${message}); grove ls lists the store's models, grove pull fetches one`);
  if (status === 401 || status === 403) return new UnauthorizedError(`${url} refused the request (${status}: ${message}); set GROVE_API_KEY to a key it accepts`);
  if (status === 400 || status === 413 || status === 422) return new InvalidRequestError(message);
  return new UpstreamError(`${url} answered ${status}: ${message}`, { status });
}

function* chunksOf(line: string): Generator<ChatChunk> {
  const event = JSON.parse(line) as {
    error?: string;
    done?: boolean;
    message?: { content?: string };
    done_reason?: string;
    total_duration?: number;
    load_duration?: number;
    prompt_eval_count?: number;
    prompt_eval_duration?: number;
    eval_count?: number;
    eval_duration?: number;
  };
  if (event.error !== undefined) throw new GroveError("engine_failure", event.error);
  const text = event.message?.content ?? "";
  if (text !== "") yield { type: "content", text };
  if (event.done === true) {
    yield {
      type: "done",
      stats: {
        doneReason: event.done_reason ?? "stop",
        totalDuration: event.total_duration ?? 0,
        loadDuration: event.load_duration ?? 0,
        promptEvalCount: event.prompt_eval_count ?? 0,
        promptEvalDuration: event.prompt_eval_duration ?? 0,
        evalCount: event.eval_count ?? 0,
        evalDuration: event.eval_duration ?? 0,
      },
    };
  }
}
