/**
 * Calls to Grove's APIs from the browser. When the server has keys, the one entered in the
 * header (kept in localStorage) goes in `Authorization`; errors carry the server's message.
 */

/** The localStorage key the API key lives under. */
export const API_KEY_STORAGE = "grove.apiKey";

export function storedApiKey(): string {
  try {
    return localStorage.getItem(API_KEY_STORAGE) ?? "";
  } catch {
    return "";
  }
}

export function storeApiKey(key: string): void {
  if (key) localStorage.setItem(API_KEY_STORAGE, key);
  else localStorage.removeItem(API_KEY_STORAGE);
}

/** Headers for a call: the key when one is set, and JSON when there is a body. */
export function apiHeaders(json = false): Record<string, string> {
  const key = storedApiKey();
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(json ? { "content-type": "application/json" } : {}) };
}

/** An API answer that was not 2xx: status, the server's error code and message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code?: string) {
    super(message);
  }
}

/** Throws an ApiError naming what the server said (OpenAI-style `{error:{message}}` or Ollama `{error}`). */
export async function ensureOk(response: Response): Promise<Response> {
  if (response.ok) return response;
  const body = (await response.json().catch(() => null)) as { error?: string | { message?: string; code?: string } } | null;
  const error = body?.error;
  const message = typeof error === "string" ? error : error?.message;
  const code = typeof error === "object" ? error?.code : undefined;
  const hint = response.status === 401 ? " — enter an API key at the top of the page" : "";
  throw new ApiError(response.status, `${message ?? `The server answered ${response.status}`}${hint}`, code);
}

/** GET a JSON resource. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await ensureOk(await fetch(path, { headers: apiHeaders(), ...(signal ? { signal } : {}) }));
  return (await response.json()) as T;
}

/** POST/PUT/DELETE with an optional JSON body; answers the parsed JSON (or null for an empty body). */
export async function sendJson<T>(method: "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T> {
  const response = await ensureOk(
    await fetch(path, { method, headers: apiHeaders(body !== undefined), ...(body === undefined ? {} : { body: JSON.stringify(body) }) }),
  );
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/**
 * Reads a server-sent-event stream (`data: {...}` lines) and calls `onEvent` with each parsed
 * payload until the stream ends or `signal` aborts. `[DONE]` is skipped.
 */
export async function readEventStream(response: Response, onEvent: (data: unknown) => void, signal?: AbortSignal): Promise<void> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  signal?.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        onEvent(JSON.parse(line.slice(6)));
      }
    }
  }
}
