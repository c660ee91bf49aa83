import { InvalidRequestError } from "../core/errors.js";

/**
 * Upstreams: served names routed to an external OpenAI-compatible engine (vLLM, llama.cpp's
 * server, Ollama's `/v1`, another Grove). They live beside keys and prices in the gateway's
 * service database, not in the model registry: an upstream is service configuration with a
 * secret (the upstream's API key), not a model artifact with a digest and lineage.
 * `SqliteUpstreamStore` is the embedded implementation; a shared (PostgreSQL) one implements
 * the same interface so that replicas route alike.
 */

/** One upstream, as `grove upstream add` records it. */
export interface UpstreamRecord {
  /** The name clients send as `model`; it shadows a store model or alias of the same name. */
  readonly name: string;
  /** Base URL of the OpenAI-compatible API, up to and including `/v1` (`http://host:8000/v1`). */
  readonly url: string;
  /** The model name sent upstream. @default the upstream's own `name` */
  readonly remoteModel?: string;
  /** Sent as `Authorization: Bearer …` upstream; stored as given (it must be), never logged or listed. */
  readonly apiKey?: string;
  /** Another served name (upstream or local model) tried when this one is unhealthy or unreachable. */
  readonly fallback?: string;
  readonly createdAt: string;
}

/** Where upstreams are kept; see the module comment. */
export interface UpstreamStore {
  listUpstreams(): Promise<UpstreamRecord[]>;
  getUpstream(name: string): Promise<UpstreamRecord | undefined>;
  /** Adds or replaces the upstream of that name. */
  putUpstream(upstream: UpstreamRecord): Promise<void>;
  /** Removes it; false when there was none. */
  removeUpstream(name: string): Promise<boolean>;
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

/** Checks a record's fields where they enter (CLI, API); returns it with the URL normalised (no trailing slash). */
export function validateUpstream(upstream: UpstreamRecord): UpstreamRecord {
  if (!NAME.test(upstream.name)) {
    throw new InvalidRequestError(`Upstream name '${upstream.name}' must be 1-128 letters, digits and . _ : / -`, { param: "name" });
  }
  let url: URL;
  try {
    url = new URL(upstream.url);
  } catch (error) {
    throw new InvalidRequestError(`--url ${upstream.url} is not a URL`, { param: "--url", cause: error });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidRequestError("--url must be http:// or https://", { param: "--url" });
  if (url.username || url.password) throw new InvalidRequestError("Put the upstream's key in --api-key, not in the URL", { param: "--url" });
  if (url.search || url.hash) throw new InvalidRequestError("--url takes a base URL without query or fragment", { param: "--url" });
  if (upstream.remoteModel !== undefined && (upstream.remoteModel.length === 0 || upstream.remoteModel.length > 256)) {
    throw new InvalidRequestError("--model must be 1-256 characters", { param: "--model" });
  }
  if (upstream.fallback !== undefined) {
    if (!NAME.test(upstream.fallback)) throw new InvalidRequestError(`Fallback '${upstream.fallback}' is not a valid name`, { param: "--fallback" });
    if (upstream.fallback === upstream.name) throw new InvalidRequestError("An upstream cannot be its own fallback", { param: "--fallback" });
  }
  return { ...upstream, url: url.toString().replace(/\/+$/, "") };
}
