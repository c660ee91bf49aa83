import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openPostgresDatabase } from "../store/postgres-database.js";
import { startPostgres, type TestPostgres } from "../test-support/postgres-server.js";
import { keyWith, raceForBudget, SERVICE_TEST_NOW, usage } from "../test-support/service-store-fixtures.js";
import { generateSecret } from "./api-key.js";
import { PostgresServiceStore } from "./postgres-service-store.js";
import type { KeyLimits } from "./service-store.js";

// Against a throwaway PostgreSQL server (initdb + pg_ctl, see test-support); each test has its
// own database. Missing binaries fail the file with the Debian package to install.

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
});

const now = SERVICE_TEST_NOW;

describe("PostgresServiceStore", () => {
  test("keys: created, found by hash only, listed, revoked; unknown id is a not_found", async () => {
    const store = await PostgresServiceStore.open(await server.createDatabase("keys"));
    try {
      assert.equal(await store.hasKeys(), false);
      const { hash, prefix } = generateSecret();
      const expiresAt = "2031-01-01T00:00:00.000Z";
      const key = await store.createKey(
        { name: "ci", secretHash: hash, prefix, admin: true, models: ["a", "b:1"], expiresAt, limits: { rpm: 5, budgetUsd: 1.25 } },
        now,
      );
      assert.match(key.id, /^key_[0-9a-f]{16}$/);
      assert.deepEqual(key, {
        id: key.id,
        name: "ci",
        prefix,
        admin: true,
        models: ["a", "b:1"],
        expiresAt,
        createdAt: now.toISOString(),
        limits: { rpm: 5, budgetUsd: 1.25, period: "month" },
      });
      assert.equal(await store.hasKeys(), true);
      assert.deepEqual(await store.findKeyByHash(hash), key);
      assert.equal(await store.findKeyByHash(generateSecret().hash), undefined);
      assert.deepEqual((await store.listKeys()).map((item) => item.id), [key.id]);
      assert.equal((await store.revokeKey(key.id, now)).revokedAt, now.toISOString());
      assert.equal((await store.revokeKey(key.id, new Date(now.getTime() + 1000))).revokedAt, now.toISOString(), "idempotent");
      await assert.rejects(store.revokeKey("key_0000000000000000", now), { code: "not_found" });
    } finally {
      await store.close();
    }
  });

  test("reserve/settle across two connections pools: admitted spend never exceeds the budget; settled spend is what was used", async () => {
    const url = await server.createDatabase("race");
    // Two stores opened together migrate once (advisory lock), then race as two replicas would.
    const [first, second] = await Promise.all([PostgresServiceStore.open(url), PostgresServiceStore.open(url)]);
    try {
      const { limits, key, admitted, refused } = await raceForBudget(first, second);
      assert.equal(refused.periodEnd, "2030-05-18T00:00:00.000Z");
      await Promise.all(admitted.map((id, index) => (index % 2 === 0 ? second : first).settle(id, usage([10, 5], key.id))));
      const state = await first.budgetState(key.id, limits, now);
      assert.deepEqual(state, { periodStart: "2030-05-17T00:00:00.000Z", spentTokens: 15 * admitted.length, reservedTokens: 0, spentUsd: 0, reservedUsd: 0 });
      await first.settle(admitted[0], usage([10, 5], key.id));
      assert.equal((await first.budgetState(key.id, limits, now)).spentTokens, 15 * admitted.length, "a reservation settles once");
      const next = await second.reserve({ keyId: key.id, limits, tokens: 1000 - 15 * admitted.length, usd: 0, now });
      assert.ok(next.admitted, "what was reserved but not used is free again");
      const over = await second.reserve({ keyId: key.id, limits, tokens: 1, usd: 0, now });
      assert.ok(!over.admitted && over.fitsAfterInFlight, "fits once the in-flight one settles");
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  test("money budgets are exact in nano-dollars; usage lists and sums by model, key, day and hour, split by key or model", async () => {
    const store = await PostgresServiceStore.open(await server.createDatabase("money"));
    try {
      const limits: KeyLimits = { budgetUsd: 0.001, period: "month" };
      const key = await keyWith(store, limits);
      const first = await store.reserve({ keyId: key.id, limits, tokens: 10, usd: 0.0006, now });
      assert.ok(first.admitted);
      const second = await store.reserve({ keyId: key.id, limits, tokens: 10, usd: 0.0006, now });
      assert.ok(!second.admitted && second.limit === "budget_usd" && second.periodEnd === "2030-06-01T00:00:00.000Z");
      await store.settle(first.reservationId, usage([4, 6], key.id, { costUsd: 0.0002, ttftMs: 12.5, requestId: "a" }));
      await store.settle(undefined, usage([0, 0], undefined, { status: 429, requestId: "b", createdAt: "2030-05-18T01:00:00.000Z" }));
      await store.settle(undefined, usage([3, 1], key.id, { cancelled: true, status: 499, requestId: "c", createdAt: "2030-05-18T02:00:00.000Z" }));
      const state = await store.budgetState(key.id, limits, now);
      assert.equal(state.spentUsd, 0.0002);
      assert.equal(state.reservedUsd, 0);
      const rows = await store.listUsage({});
      assert.deepEqual(rows.map((row) => row.requestId), ["c", "b", "a"], "newest first");
      assert.deepEqual(rows[2], usage([4, 6], key.id, { costUsd: 0.0002, ttftMs: 12.5, requestId: "a" }));
      assert.deepEqual((await store.listUsage({ keyId: key.id, since: "2030-05-18T00:00:00.000Z" })).map((row) => row.requestId), ["c"]);
      assert.equal((await store.listUsage({ limit: 1 })).length, 1);
      const byDay = await store.summarizeUsage({}, "day");
      assert.deepEqual(byDay.map((row) => [row.group, row.requests, row.errors, row.cancelled]), [
        ["2030-05-17", 1, 0, 0],
        ["2030-05-18", 2, 2, 1],
      ]);
      const byKey = await store.summarizeUsage({}, "key");
      assert.deepEqual(byKey.map((row) => row.group).sort(), ["-", key.id].sort());
      const byHourAndKey = await store.summarizeUsage({}, "hour", "key");
      assert.deepEqual(byHourAndKey.map((row) => [row.group, row.split, row.requests, row.promptTokens, row.completionTokens]), [
        ["2030-05-17T12", key.id, 1, 4, 6],
        ["2030-05-18T01", "-", 1, 0, 0],
        ["2030-05-18T02", key.id, 1, 3, 1],
      ]);
      const byDayAndModel = await store.summarizeUsage({ since: "2030-05-18T00:00:00.000Z" }, "day", "model");
      assert.deepEqual(byDayAndModel.map((row) => [row.group, row.split, row.requests]), [["2030-05-18", "sha256:" + "0".repeat(64), 2]]);
      const [byModel] = await store.summarizeUsage({}, "model");
      assert.deepEqual(byModel, {
        group: "sha256:" + "0".repeat(64),
        requests: 3,
        promptTokens: 7,
        completionTokens: 7,
        costUsd: 0.0002,
        cancelled: 1,
        errors: 2,
        meanTtftMs: 12.5,
      });
    } finally {
      await store.close();
    }
  });

  test("prices: set, replaced, listed", async () => {
    const store = await PostgresServiceStore.open(await server.createDatabase("prices"));
    try {
      const digest = "sha256:" + "1".repeat(64);
      await store.setPrice({ modelDigest: digest, inputPer1m: 0.1, outputPer1m: 0.2, updatedAt: now.toISOString() });
      await store.setPrice({ modelDigest: digest, inputPer1m: 0.3, outputPer1m: 0.4, updatedAt: now.toISOString() });
      assert.deepEqual(await store.getPrice(digest), { modelDigest: digest, inputPer1m: 0.3, outputPer1m: 0.4, updatedAt: now.toISOString() });
      assert.equal(await store.getPrice("sha256:" + "2".repeat(64)), undefined);
      assert.equal((await store.listPrices()).length, 1);
    } finally {
      await store.close();
    }
  });

  test("schema: reopening keeps the data; a newer schema is refused with a clear message", async () => {
    const url = await server.createDatabase("schema");
    const store = await PostgresServiceStore.open(url);
    await keyWith(store, {});
    await store.close();
    const reopened = await PostgresServiceStore.open(url);
    assert.equal((await reopened.listKeys()).length, 1);
    await reopened.close();
    const database = await openPostgresDatabase(url);
    await database.query("UPDATE grove_schema SET version = 99 WHERE component = 'gateway'");
    await database.close();
    await assert.rejects(PostgresServiceStore.open(url), { code: "config_invalid", message: /gateway schema of version 99, written by a newer Grove/ });
  });

  test("bad URLs and unreachable servers fail with a message naming the setting, never the password", async () => {
    await assert.rejects(PostgresServiceStore.open("not a url"), { code: "config_invalid", message: /--database \(GROVE_DATABASE_URL\) must be a URL/ });
    await assert.rejects(PostgresServiceStore.open("mysql://x@127.0.0.1/db"), { code: "config_invalid", message: /must start with postgres:\/\// });
    const port = new URL(server.url).port;
    await assert.rejects(PostgresServiceStore.open(`postgres://grove:hunter2@127.0.0.1:${port}/missing`), (error: Error) => {
      assert.match(error.message, /Cannot connect to PostgreSQL at postgres:\/\/grove:\*\*\*@127\.0\.0\.1:\d+\/missing .*database "missing" does not exist/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    await assert.rejects(PostgresServiceStore.open("postgres://grove@127.0.0.1:1/grove"), { code: "config_invalid", message: /Cannot connect to PostgreSQL .*ECONNREFUSED/ });
  });
});
