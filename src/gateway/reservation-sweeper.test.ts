import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../config/config.js";
import { ConfigError } from "../core/errors.js";
import { createTestModel, startTestGrove } from "../test-support/grove-fixture.js";
import { startPostgres, type TestPostgres } from "../test-support/postgres-server.js";
import { generateSecret } from "./api-key.js";
import { PostgresServiceStore } from "./postgres-service-store.js";
import { ReservationSweeper } from "./reservation-sweeper.js";
import type { KeyLimits, ServiceStore, UsageRecord } from "./service-store.js";
import { SqliteServiceStore } from "./sqlite-service-store.js";

// Stale budget reservations (a replica that crashed before settling) are released by
// expireReservations / the sweeper, the same way in the SQLite and the PostgreSQL store.

let directory: string;
let postgres: TestPostgres;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-sweeper-"));
  postgres = await startPostgres();
});
after(async () => {
  await postgres?.stop();
  await rm(directory, { recursive: true, force: true });
});

const now = new Date("2030-05-17T12:00:00Z");
const minutes = (count: number) => new Date(now.getTime() - count * 60_000);
const limits: KeyLimits = { budgetTokens: 100, period: "month" };

const usage = (keyId: string, tokens: number): UsageRecord => ({
  requestId: "r",
  keyId,
  modelDigest: "sha256:" + "0".repeat(64),
  model: "m",
  endpoint: "/v1/chat/completions",
  promptTokens: tokens,
  completionTokens: 0,
  costUsd: 0,
  durationMs: 1,
  status: 200,
  cancelled: false,
  createdAt: now.toISOString(),
});

async function admitted(store: ServiceStore, keyId: string, tokens: number, at: Date): Promise<string> {
  const result = await store.reserve({ keyId, limits, tokens, usd: 0.5, now: at });
  assert.ok(result.admitted, `${tokens} tokens at ${at.toISOString()} should be admitted`);
  return result.reservationId;
}

/** The scenario both stores must pass. */
async function releasesStaleReservations(store: ServiceStore): Promise<void> {
  const { hash, prefix } = generateSecret();
  const key = await store.createKey({ name: "t", secretHash: hash, prefix, admin: false, limits }, now);
  const stale = await admitted(store, key.id, 60, minutes(20));
  const fresh = await admitted(store, key.id, 30, minutes(1));
  assert.equal((await store.reserve({ keyId: key.id, limits, tokens: 30, usd: 0, now })).admitted, false, "the stale reservation holds budget");

  assert.equal(await store.expireReservations(minutes(15)), 1);
  const state = await store.budgetState(key.id, limits, now);
  assert.equal(state.reservedTokens, 30);
  assert.equal(state.reservedUsd, 0.5);
  assert.equal(state.spentTokens, 0);
  const third = await admitted(store, key.id, 30, now);
  assert.equal(await store.expireReservations(minutes(15)), 0, "a second sweep finds nothing");

  // The crashed request's reservation is gone: a late settle records usage but holds no budget.
  await store.settle(stale, usage(key.id, 7));
  await store.settle(fresh, usage(key.id, 20));
  await store.settle(third, usage(key.id, 5));
  const settled = await store.budgetState(key.id, limits, now);
  assert.deepEqual([settled.reservedTokens, settled.reservedUsd, settled.spentTokens], [0, 0, 25]);
  assert.equal((await store.listUsage({ keyId: key.id })).length, 3);

  // Sweeping and settling the same reservations at once: each is released or settled, once.
  const racing = await Promise.all(Array.from({ length: 10 }, () => admitted(store, key.id, 5, minutes(30))));
  await Promise.all([store.expireReservations(minutes(15)), ...racing.slice(0, 5).map((id) => store.settle(id, usage(key.id, 1)))]);
  const raced = await store.budgetState(key.id, limits, now);
  assert.equal(raced.reservedTokens, 0);
  assert.ok(raced.spentTokens >= 25 && raced.spentTokens <= 30, `spent ${raced.spentTokens}`);
}

describe("expireReservations", () => {
  test("SQLite: releases reservations older than the cut-off, atomically with settles", async () => {
    const store = SqliteServiceStore.openFile(join(directory, "expire.db"));
    try {
      await releasesStaleReservations(store);
    } finally {
      await store.close();
    }
  });

  test("PostgreSQL: releases reservations older than the cut-off, atomically with settles", async () => {
    const store = await PostgresServiceStore.open(await postgres.createDatabase("expire"));
    try {
      await releasesStaleReservations(store);
    } finally {
      await store.close();
    }
  });
});

describe("ReservationSweeper", () => {
  test("sweeps at start and on its timer; a TTL of 0 never sweeps", async () => {
    const store = SqliteServiceStore.openFile(join(directory, "sweeper.db"));
    let clock = now.getTime();
    try {
      const { hash, prefix } = generateSecret();
      const key = await store.createKey({ name: "t", secretHash: hash, prefix, admin: false, limits }, now);
      await admitted(store, key.id, 40, minutes(16));
      await admitted(store, key.id, 40, minutes(1));

      const off = await ReservationSweeper.start({ store, ttlMs: 0, now: () => clock });
      assert.equal(await off.sweep(), 0);
      await off.close();
      assert.equal((await store.budgetState(key.id, limits, now)).reservedTokens, 80);

      let swept = 0;
      let notify = () => {};
      const counting = {
        expireReservations: async (before: Date) => {
          const count = await store.expireReservations(before);
          swept += count;
          notify();
          return count;
        },
      };
      const sweeper = await ReservationSweeper.start({ store: counting, ttlMs: 15 * 60_000, intervalMs: 20, now: () => clock });
      try {
        assert.equal(swept, 1, "the startup sweep releases the 16-minute-old reservation");
        assert.equal((await store.budgetState(key.id, limits, now)).reservedTokens, 40);
        // The other one is now 16 minutes old too: a timer sweep releases it.
        clock += 15 * 60_000;
        // The sweeper's timer is unref'd; the deadline keeps the event loop alive meanwhile.
        await new Promise<void>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error("no timer sweep released it within 10 s")), 10_000);
          notify = () => {
            if (swept !== 2) return;
            clearTimeout(deadline);
            resolve();
          };
        });
      } finally {
        await sweeper.close();
      }
      assert.equal((await store.budgetState(key.id, limits, now)).reservedTokens, 0);
    } finally {
      await store.close();
    }
  });
});

describe("--reservation-ttl", () => {
  test("defaults to 15 minutes, reads GROVE_RESERVATION_TTL, and a bad value names the flag", () => {
    assert.equal(loadConfig({ env: {}, flags: { home: "/nonexistent-grove" } }).reservationTtl, 15 * 60_000);
    assert.equal(loadConfig({ env: { GROVE_RESERVATION_TTL: "30m" }, flags: { home: "/nonexistent-grove" } }).reservationTtl, 30 * 60_000);
    assert.throws(
      () => loadConfig({ env: {}, flags: { home: "/nonexistent-grove", reservationTtl: "soon" } }),
      (error: unknown) => error instanceof ConfigError && error.param === "--reservation-ttl" && /GROVE_RESERVATION_TTL/.test(error.message),
    );
  });

  test("grove serve releases what a crashed replica left in <home>/service.db when it starts", async () => {
    const model = await createTestModel();
    try {
      const home = join(model.directory, "home");
      await mkdir(home, { recursive: true });
      const store = SqliteServiceStore.open(home);
      const { hash, prefix } = generateSecret();
      const key = await store.createKey({ name: "t", secretHash: hash, prefix, admin: false, limits }, now);
      const started = new Date();
      await admitted(store, key.id, 50, new Date(started.getTime() - 20 * 60_000));
      await admitted(store, key.id, 20, started);
      await store.close();
      const grove = await startTestGrove(model);
      await grove.close();
      const reopened = SqliteServiceStore.open(home);
      try {
        assert.equal((await reopened.budgetState(key.id, limits, started)).reservedTokens, 20, "only the 20-minute-old reservation is released");
      } finally {
        await reopened.close();
      }
    } finally {
      await model.cleanup();
    }
  });
});
