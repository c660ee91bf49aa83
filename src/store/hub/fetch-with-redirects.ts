import { AbortedError, GroveError, UpstreamError } from "../../core/errors.js";

/** The most redirects a hub request follows. */
export const MAX_REDIRECTS = 5;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Options of {@link fetchWithRedirects}. */
export interface FetchWithRedirectsOptions {
  /** @default "GET" */
  method?: "GET" | "HEAD";
  /** Extra request headers (never `Authorization`: pass `token`). */
  headers?: Record<string, string>;
  /** Bearer token, sent only to the origin (scheme, host and port) of the first URL. */
  token?: string;
  /** Follow a redirect to another origin; `false` returns that redirect response instead. @default true */
  followCrossOrigin?: boolean;
  /** @default MAX_REDIRECTS (5) */
  maxRedirects?: number;
  /** Cancels the request. */
  signal?: AbortSignal;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** What {@link fetchWithRedirects} got. */
export interface FetchWithRedirectsResult {
  /** The last response (its body unread). */
  response: Response;
  /** The URL that answered it. */
  url: string;
}

/**
 * Fetches a URL and follows redirects by hand, so that the `Authorization` header goes only to
 * the first URL's origin: the hub redirects large files to a CDN on another host, which must
 * never see the token. Refuses redirects to anything but http(s) and from https down to http.
 *
 * @throws UpstreamError when the host cannot be reached or redirects too often;
 *   AbortedError when `signal` fires.
 */
export async function fetchWithRedirects(url: string, options: FetchWithRedirectsOptions = {}): Promise<FetchWithRedirectsResult> {
  const fetchImplementation = options.fetch ?? globalThis.fetch;
  const maxRedirects = options.maxRedirects ?? MAX_REDIRECTS;
  const origin = new URL(url).origin;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token && current.origin === origin) headers.authorization = `Bearer ${options.token}`;
    let response: Response;
    try {
      response = await fetchImplementation(current.href, {
        method: options.method ?? "GET",
        headers,
        redirect: "manual",
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal, error);
      throw new UpstreamError(`Could not reach ${current.host}: ${errorText(error)}`, { cause: error });
    }
    const location = response.headers.get("location");
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return { response, url: current.href };
    const next = resolveRedirect(current, location);
    if (options.followCrossOrigin === false && next.origin !== origin) return { response, url: current.href };
    await response.body?.cancel().catch(() => undefined);
    if (hop >= maxRedirects) {
      throw new UpstreamError(`${url} redirected more than ${maxRedirects} times`, { status: response.status });
    }
    current = next;
  }
}

/** True when `status` is an HTTP redirect that {@link fetchWithRedirects} would follow. */
export function isRedirectStatus(status: number): boolean {
  return REDIRECT_STATUSES.has(status);
}

function resolveRedirect(current: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch (error) {
    throw new UpstreamError(`${current.host} redirected to an invalid URL`, { cause: error });
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new UpstreamError(`${current.host} redirected to a ${next.protocol} URL; only http(s) is followed`);
  }
  if (current.protocol === "https:" && next.protocol === "http:") {
    throw new UpstreamError(`${current.host} redirected from https to plain http (${next.host}); refused`);
  }
  return next;
}

/** Maps an abort to AbortedError, keeping a reason that is already a Grove error (a stall). */
export function abortError(signal: AbortSignal, cause: unknown): Error {
  return signal.reason instanceof GroveError ? signal.reason : new AbortedError(undefined, { cause });
}

/** The message of an error and of its cause, for fetch's terse `TypeError: fetch failed`. */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
