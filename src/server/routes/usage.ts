import type { FastifyInstance } from "fastify";
import { InvalidRequestError } from "../../core/errors.js";
import type { Gateway } from "../../gateway/gateway.js";
import { parseUsageOptions } from "../../gateway/usage-options.js";

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function price(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1e6) {
    throw new InvalidRequestError(`${field} must be a number of US dollars per million tokens, from 0 to 1000000`, { param: field });
  }
  return value;
}

/**
 * The admin API of metering (admin key required):
 * `GET /api/usage?key=&since=&by=model|key|day|hour&split=model|key&limit=` — usage rows (newest
 * first) or, with `by`, their sums per group, each group split again per model or key with
 * `split` (the web app's usage-over-time chart); `GET /api/prices`; `PUT /api/prices/{digest}`
 * `{input_per_1m, output_per_1m}`.
 */
export function registerUsageRoutes(app: FastifyInstance, gateway: Gateway): void {
  const store = gateway.store;
  app.get<{ Querystring: Record<string, string> }>("/api/usage", async (request) => {
    const { query, by, split } = parseUsageOptions(request.query, new Date(), "field");
    if (by === undefined) return { usage: await store.listUsage(query) };
    if (split === undefined) return { by, groups: await store.summarizeUsage(query, by) };
    return { by, split, groups: await store.summarizeUsage(query, by, split) };
  });
  app.get("/api/prices", async () => ({ prices: await store.listPrices() }));
  app.put<{ Params: { digest: string } }>("/api/prices/:digest", async (request) => {
    const digest = request.params.digest;
    if (!DIGEST.test(digest)) throw new InvalidRequestError("The model must be given by digest: sha256:<64 hex>", { param: "digest" });
    const body = (request.body ?? {}) as Record<string, unknown>;
    const record = {
      modelDigest: digest,
      inputPer1m: price(body.input_per_1m, "input_per_1m"),
      outputPer1m: price(body.output_per_1m, "output_per_1m"),
      updatedAt: new Date().toISOString(),
    };
    await store.setPrice(record);
    return record;
  });
}
