import { loadConfig } from "../config/config.js";
import { UpstreamError } from "../core/errors.js";

/**
 * How CLI commands reach a running `grove serve` (`grove ps`, `grove stop`), as Ollama's CLI reaches
 * its server through `OLLAMA_HOST`: `GROVE_HOST` (or `--host`) is a host, `host:port` or a URL, and
 * the port is `GROVE_PORT` (default 11435) when it names none. A wildcard bind (`0.0.0.0`, `::`) is
 * reached on loopback. `GROVE_API_KEY` goes along as the bearer key.
 */
export interface ServerClientOptions {
  /** A host, `host:port` or `http(s)://host:port`. @default GROVE_HOST, else 127.0.0.1 */
  readonly host?: string;
  /** @default GROVE_PORT, else 11435 */
  readonly port?: string | number;
  /** @default GROVE_API_KEY */
  readonly apiKey?: string;
}

/** A small JSON client of a running Grove server. */
export class ServerClient {
  /** The server's base URL, without a trailing slash: `http://127.0.0.1:11435`. */
  readonly baseUrl: string;
  readonly #apiKey: string;

  constructor(options: ServerClientOptions = {}) {
    const config = loadConfig({ flags: { host: options.host, port: options.port, apiKey: options.apiKey } });
    this.baseUrl = serverUrl(config.host, config.port);
    this.#apiKey = config.apiKey;
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

/** The URL of a server from `host` (a host, `host:port` or URL) and the port to use when it names none. */
export function serverUrl(host: string, port: number): string {
  if (/^https?:\/\//i.test(host)) {
    const url = new URL(host);
    if (url.port === "") url.port = String(port);
    return url.origin;
  }
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  const hostPort = /^([^:]+):(\d+)$/.exec(host);
  let name = bracketed?.[1] ?? hostPort?.[1] ?? host;
  const explicitPort = bracketed?.[2] ?? hostPort?.[2];
  if (name === "0.0.0.0" || name === "") name = "127.0.0.1";
  if (name === "::") name = "::1";
  return `http://${name.includes(":") ? `[${name}]` : name}:${explicitPort ?? port}`;
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
