import { loadConfig } from "../config/config.js";
import { serverTarget } from "../config/server-url.js";
import { ConfigError, UpstreamError } from "../core/errors.js";

/**
 * How CLI commands reach a running `grove serve` (`grove ps`, `grove stop`), as Ollama's CLI reaches
 * its server through `OLLAMA_HOST`: `GROVE_HOST` (or `--host`) is a host, `host:port` or a URL, and
 * the port is `GROVE_PORT` (default 11435) when it names none. A wildcard bind (`0.0.0.0`, `::`) is
 * reached on loopback. `GROVE_API_KEY` goes along as the bearer key.
 */
export interface ServerClientOptions {
  /** A host, `host:port` or `http(s)://host:port`. @default GROVE_HOST, else 127.0.0.1 */
  readonly host?: string;
  /** @default GROVE_API_KEY */
  readonly apiKey?: string;
}

/** A small JSON client of a running Grove server. */
export class ServerClient {
  /** The server's base URL, without a trailing slash: `http://127.0.0.1:11435`. */
  readonly baseUrl: string;
  readonly #apiKey: string;

  constructor(options: ServerClientOptions = {}) {
    const target = serverTarget(options.host === undefined ? {} : { hostFlag: options.host });
    if (target === undefined) throw new ConfigError(`GROVE_HOST (or --host) must be a host, host:port or http(s) URL, and GROVE_PORT a port`, { param: "--host" });
    this.baseUrl = target.url;
    this.#apiKey = loadConfig({ flags: { apiKey: options.apiKey } }).apiKey;
  }

  /** GET a JSON document. */
  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  /** POST a JSON body; resolves to the JSON answer (undefined for an empty one). */
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  /**
   * One request. A refused connection says that no server runs there; an error status becomes an
   * {@link UpstreamError} carrying the status and the server's own message (Ollama's
   * `{"error": "…"}` or OpenAI's `{"error": {"message": …}}`).
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(this.#apiKey === "" ? {} : { authorization: `Bearer ${this.#apiKey}` }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new UpstreamError(`No Grove server answers at ${this.baseUrl} (start one with grove serve, or point GROVE_HOST at it)`, { cause: error });
    }
    const text = await response.text();
    if (!response.ok) throw new UpstreamError(errorMessage(text, response.status), { status: response.status });
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }
}

function errorMessage(text: string, status: number): string {
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string } };
    const message = typeof body.error === "string" ? body.error : body.error?.message;
    if (message) return message;
  } catch {
    // not JSON: the status says it
  }
  return `The server answered ${status}${text === "" ? "" : `: ${text.slice(0, 200)}`}`;
}
