import assert from "node:assert/strict";
import { generateSecret } from "../gateway/api-key.js";
import type { KeyLimits, ServiceStore, UsageRecord } from "../gateway/service-store.js";

// What the tests of both ServiceStores (SQLite, PostgreSQL) create: a key with limits and a usage row.

/** The clock of the service-store tests. */
export const SERVICE_TEST_NOW = new Date("2030-05-17T12:00:00Z");

/** A fresh non-admin key named `t` with `limits`, created at {@link SERVICE_TEST_NOW}. */
export async function keyWith(store: ServiceStore, limits: KeyLimits) {
  const { hash, prefix } = generateSecret();
  return store.createKey({ name: "t", secretHash: hash, prefix, admin: false, limits }, SERVICE_TEST_NOW);
}

/** A 200 usage row of `tokens` = [prompt, completion], for `keyId` when given, at {@link SERVICE_TEST_NOW}; `extra` overrides. */
export const usage = (tokens: [number, number], keyId?: string, extra: Partial<UsageRecord> = {}): UsageRecord => ({
  requestId: "r",
  ...(keyId === undefined ? {} : { keyId }),
  modelDigest: "sha256:" + "0".repeat(64),
  model: "m",
  endpoint: "/v1/chat/completions",
  promptTokens: tokens[0],
  completionTokens: tokens[1],
  costUsd: 0,
  durationMs: 1,
  status: 200,
  cancelled: false,
  createdAt: SERVICE_TEST_NOW.toISOString(),
  ...extra,
});

/**
 * Two stores on one database (two replicas) race: 200 reservations of 30 tokens, alternating
 * between them, against a key's 1000-token daily budget. Asserts that exactly as many are admitted
 * as the budget holds and that a refused one says `budget_tokens`, fitting after the in-flight ones.
 */
export async function raceForBudget(first: ServiceStore, second: ServiceStore) {
  const now = SERVICE_TEST_NOW;
  const limits: KeyLimits = { budgetTokens: 1000, period: "day" };
  const key = await keyWith(first, limits);
  const attempts = await Promise.all(
    Array.from({ length: 200 }, (_, index) => (index % 2 === 0 ? first : second).reserve({ keyId: key.id, limits, tokens: 30, usd: 0, now })),
  );
  const admitted = attempts.flatMap((result) => (result.admitted ? [result.reservationId] : []));
  assert.equal(admitted.length, Math.floor(1000 / 30), "exactly as many as the budget holds");
  const refused = attempts.find((result) => !result.admitted);
  assert.ok(refused && !refused.admitted && refused.limit === "budget_tokens" && refused.fitsAfterInFlight);
  return { limits, key, admitted, refused };
}
