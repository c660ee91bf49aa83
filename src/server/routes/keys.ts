import type { FastifyInstance } from "fastify";
import { InvalidRequestError, NotFoundError } from "../../core/errors.js";
import type { Gateway } from "../../gateway/gateway.js";
import { issueKey, KEY_ID_PATTERN, keyView, listKeyViews } from "../../gateway/issue-key.js";
import { parseKeyOptions, type RawKeyOptions } from "../../gateway/key-options.js";

const BODY_FIELDS: Record<string, keyof RawKeyOptions> = {
  name: "name",
  models: "models",
  expires: "expires",
  admin: "admin",
  rpm: "rpm",
  tpm: "tpm",
  concurrency: "concurrency",
  budget_tokens: "budgetTokens",
  budget_usd: "budgetUsd",
  period: "period",
};

function rawOptions(body: unknown): RawKeyOptions {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw new InvalidRequestError("The body must be a JSON object");
  const raw: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(body)) {
    const key = BODY_FIELDS[field];
    if (key === undefined) {
      throw new InvalidRequestError(`Unknown field '${field}'; known: ${Object.keys(BODY_FIELDS).join(", ")}`, { param: field });
    }
    raw[key] = value;
  }
  return raw;
}

/**
 * The admin API of keys (admin key required, see gateway-hooks.ts):
 * `POST /api/keys` creates one and returns its secret once; `GET /api/keys` lists them (never
 * a secret); `GET /api/keys/{id}`; `DELETE /api/keys/{id}` or `POST /api/keys/{id}/revoke`.
 */
export function registerKeyRoutes(app: FastifyInstance, gateway: Gateway): void {
  const store = gateway.store;
  const find = async (id: string) => {
    const key = KEY_ID_PATTERN.test(id) ? await store.getKey(id) : undefined;
    if (!key) throw new NotFoundError(`No key with id '${id.slice(0, 40)}' (GET /api/keys lists them)`);
    return key;
  };
  app.post("/api/keys", async (request, reply) => {
    const now = new Date();
    const { key, secret } = await issueKey(store, parseKeyOptions(rawOptions(request.body), now, "field"), now);
    reply.code(201);
    return { key: await keyView(store, key, now), secret };
  });
  app.get("/api/keys", async () => ({ keys: await listKeyViews(store, new Date()) }));
  app.get<{ Params: { id: string } }>("/api/keys/:id", async (request) => keyView(store, await find(request.params.id), new Date()));
  const revoke = async (id: string) => {
    await find(id);
    const now = new Date();
    return { key: await keyView(store, await store.revokeKey(id, now), now) };
  };
  app.delete<{ Params: { id: string } }>("/api/keys/:id", async (request) => revoke(request.params.id));
  app.post<{ Params: { id: string } }>("/api/keys/:id/revoke", async (request) => revoke(request.params.id));
}
