import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";

/**
 * Which paths are APIs (keys checked, metered, never the web app), and the aliases clients of
 * llama-server reach them by. One list, so the key check, the gateway and the web app's
 * fallback cannot disagree about a path.
 */

/** llama-server's own endpoints that Grove serves (`routes/llama-native.ts`, `routes/embeddings.ts`). */
export const NATIVE_PATHS = ["/completion", "/tokenize", "/detokenize", "/apply-template", "/props", "/slots", "/infill", "/embedding", "/embeddings"] as const;

/** Paths behind the API key and the gateway: the OpenAI and Ollama prefixes and llama-server's endpoints. */
const KEYED_PREFIXES = ["/v1", "/api", ...NATIVE_PATHS];

const underPrefix = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}/`);

/** True for a path that needs a key when keys are configured. */
export function isKeyedPath(path: string): boolean {
  return KEYED_PREFIXES.some((prefix) => underPrefix(path, prefix));
}

/** True for a path the web app never answers (an unknown one there is an API 404). */
export function isApiPath(path: string): boolean {
  return isKeyedPath(path) || underPrefix(path, "/metrics") || underPrefix(path, "/health");
}

/** True under `/api/`, Ollama's prefix (Grove's own routes there answer in its error shape too). */
export function isOllamaPath(path: string): boolean {
  return underPrefix(path, "/api");
}

/** OpenAI routes that llama-server (and so its clients) also serve without `/v1`. */
const UNVERSIONED = new Set(["/chat/completions", "/chat/completions/input_tokens", "/responses", "/messages", "/messages/count_tokens", "/models"]);

/**
 * Paths llama-server gives its own endpoints although they look like OpenAI's: `/completions` is
 * its `/completion` (answering `content`, not `choices`); `/embeddings` is its own route
 * (`routes/embeddings.ts`), not `/v1/embeddings`.
 */
const NATIVE_ALIASES: Readonly<Record<string, string>> = { "/completions": "/completion" };

/**
 * Fastify's `rewriteUrl`: `/chat/completions` is `/v1/chat/completions`, and `/completions` is
 * `/completion`, as on llama-server. `GET /models` from a browser page navigation stays the web
 * app's models page.
 */
export function rewriteUnversioned(request: IncomingMessage): string {
  const url = request.url ?? "/";
  const query = url.indexOf("?");
  const path = query === -1 ? url : url.slice(0, query);
  const native = NATIVE_ALIASES[path];
  if (native !== undefined) return native + url.slice(path.length);
  if (!UNVERSIONED.has(path)) return url;
  if (path === "/models" && (request.headers.accept ?? "").includes("text/html")) return url;
  return `/v1${url}`;
}

/**
 * Fills in `model` on a request body that leaves it out, as llama-server does, when the server
 * has a default (`grove serve`'s model, or the only model loaded). The OpenAI routes and
 * llama-server's own; Ollama's API always names its model.
 */
export function registerDefaultModel(app: FastifyInstance, defaultModel: () => string | undefined): void {
  app.addHook("preValidation", async (request) => {
    const path = request.url.split("?")[0]!;
    if (request.method !== "POST" || !(underPrefix(path, "/v1") || NATIVE_PATHS.some((prefix) => underPrefix(path, prefix)))) return;
    const body = request.body;
    if (body === null || typeof body !== "object" || Array.isArray(body)) return;
    const record = body as Record<string, unknown>;
    if (record.model !== undefined && record.model !== null && record.model !== "") return;
    const name = defaultModel();
    if (name !== undefined) record.model = name;
  });
}

/**
 * The request's credentials as an `Authorization` header value: the header itself, or
 * Anthropic's and llama-server's `x-api-key` as a bearer token when there is no header.
 */
export function authorizationOf(headers: IncomingMessage["headers"]): string | undefined {
  if (headers.authorization !== undefined) return headers.authorization;
  const key = headers["x-api-key"];
  return typeof key === "string" && key !== "" ? `Bearer ${key}` : undefined;
}
