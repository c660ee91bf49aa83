import { UpstreamUnavailableError } from "../core/errors.js";

/** Options of {@link UpstreamEngine}. */
export interface UpstreamEngineOptions {
  /** The served name (for errors, logs and metrics). */
  readonly name: string;
  /** Base URL of the OpenAI-compatible API, including `/v1`, without a trailing slash. */
  readonly url: string;
  /** The model name sent upstream. @default `name` */
  readonly remoteModel?: string;
  /** Sent as `Authorization: Bearer …`; never logged, never in an error message. */
  readonly apiKey?: string;
  /** Further attempts after a connect error, before any response came. @default 2 */
  readonly retries?: number;
  /** Wait before the first retry, doubled for each next one. @default 100 */
  readonly retryDelayMs?: number;
  /** A health check that takes longer fails. @default 2000 */
  readonly healthTimeoutMs?: number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** What the last health check or request said about an upstream. */
export interface UpstreamHealth {
  readonly healthy: boolean;
  /** Milliseconds since the epoch of the last check; `undefined` before the first. */
  readonly checkedAt?: number;
  /** Why it is unhealthy (a network error code or an HTTP status). */
  readonly reason?: string;
}

// Errors that mean no request reached the upstream (or none was answered on a dead pooled
// socket): safe to retry, and proof the upstream is down.
const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** The network error code under fetch's `TypeError: fetch failed`, if it is a connect error. */
export function connectErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code !== undefined && CONNECT_ERRORS.has(code)) return code;
    current = current.cause;
  }
  return undefined;
}

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * An external OpenAI-compatible server that runs a model (vLLM, llama.cpp's server, Ollama's
 * `/v1`, another Grove). It sends requests with the upstream's model name and key, retries
 * connect errors (nothing reached the upstream, nothing reached the client), and keeps a health
 * state: a failed connect marks it unhealthy at once; only a passing {@link checkHealth}
 * (`GET /models`) marks it healthy again.
 */
export class UpstreamEngine {
  readonly name: string;
  readonly url: string;
  readonly remoteModel: string;
  #health: UpstreamHealth = { healthy: true };
  readonly #options: UpstreamEngineOptions;
  readonly #fetch: typeof fetch;

  constructor(options: UpstreamEngineOptions) {
    this.#options = options;
    this.name = options.name;
    this.url = options.url.replace(/\/+$/, "");
    this.remoteModel = options.remoteModel ?? options.name;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  get health(): UpstreamHealth {
    return this.#health;
  }

  get healthy(): boolean {
    return this.#health.healthy;
  }

  /** Marks the upstream unhealthy until the next passing health check. */
  markUnhealthy(reason: string): void {
    this.#health = { healthy: false, checkedAt: Date.now(), reason };
  }

  #headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: json ? "application/json, text/event-stream" : "application/json" };
    if (json) headers["content-type"] = "application/json";
    if (this.#options.apiKey) headers.authorization = `Bearer ${this.#options.apiKey}`;
    return headers;
  }

  /** `GET <url>/models`: healthy when it answers 2xx within the timeout. */
  async checkHealth(): Promise<UpstreamHealth> {
    const timeout = AbortSignal.timeout(this.#options.healthTimeoutMs ?? 2000);
    try {
      const response = await this.#fetch(`${this.url}/models`, { headers: this.#headers(false), signal: timeout });
      await response.body?.cancel();
      this.#health = response.ok
        ? { healthy: true, checkedAt: Date.now() }
        : { healthy: false, checkedAt: Date.now(), reason: `GET /models answered ${response.status}` };
    } catch (error) {
      this.#health = { healthy: false, checkedAt: Date.now(), reason: connectErrorCode(error) ?? (timeout.aborted ? "health check timed out" : describe(error)) };
    }
    return this.#health;
  }

  /**
   * POSTs `body` (its `model` replaced by the upstream's name) to `<url><path>` and returns the
   * response, whatever its status, once its headers arrived. Connect errors are retried; when
   * they persist the upstream is marked unhealthy and UpstreamUnavailableError is thrown.
   * An abort through `signal` rejects with the signal's reason.
   */
  async send(path: string, body: Readonly<Record<string, unknown>>, signal?: AbortSignal): Promise<Response> {
    const payload = JSON.stringify({ ...body, model: this.remoteModel });
    const retries = this.#options.retries ?? 2;
    let wait = this.#options.retryDelayMs ?? 100;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#fetch(`${this.url}${path}`, { method: "POST", headers: this.#headers(true), body: payload, ...(signal ? { signal } : {}) });
      } catch (error) {
        if (signal?.aborted) throw signal.reason ?? error;
        const code = connectErrorCode(error);
        if (code === undefined) {
          throw new UpstreamUnavailableError(this.name, `Upstream '${this.name}' (${this.url}) failed: ${describe(error)}`, { cause: error });
        }
        if (attempt >= retries) {
          this.markUnhealthy(code);
          throw new UpstreamUnavailableError(this.name, `Upstream '${this.name}' (${this.url}) is unreachable (${code} after ${attempt + 1} attempts)`, { cause: error });
        }
        await delay(wait, signal);
        wait *= 2;
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
