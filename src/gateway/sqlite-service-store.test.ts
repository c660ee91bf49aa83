import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { keyWith, raceForBudget, SERVICE_TEST_NOW, usage } from "../test-support/service-store-fixtures.js";
import { generateSecret } from "./api-key.js";
import { parseKeyOptions, parseSince } from "./key-options.js";
import { SqliteServiceStore } from "./sqlite-service-store.js";
import { parseUsageOptions } from "./usage-options.js";
import type { KeyLimits } from "./service-store.js";

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-service-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

const now = SERVICE_TEST_NOW;

describe("SqliteServiceStore", () => {
  test("keys: created, found by hash only, listed, revoked; unknown id is a not_found", async () => {
    const store = SqliteServiceStore.openFile(join(directory, "keys.db"));
    try {
      assert.equal(await store.hasKeys(), false);
      const { secret, hash, prefix } = generateSecret();
      assert.match(secret, /^grove-sk-[A-Za-z0-9_-]{43}$/);
      assert.ok(secret.startsWith(prefix) && prefix.length < 20);
      const key = await store.createKey({ name: "ci", secretHash: hash, prefix, admin: true, models: ["a"], limits: { rpm: 5 } }, now);
      assert.match(key.id, /^key_[0-9a-f]{16}$/);
      assert.equal(await store.hasKeys(), true);
      assert.deepEqual((await store.findKeyByHash(hash))?.id, key.id);
      assert.equal(await store.findKeyByHash(generateSecret().hash), undefined);
      assert.deepEqual((await store.listKeys()).map((item) => item.id), [key.id]);
      const revoked = await store.revokeKey(key.id, now);
      assert.equal(revoked.revokedAt, now.toISOString());
      await assert.rejects(store.revokeKey("key_0000000000000000", now), { code: "not_found" });
    } finally {
      await store.close();
    }
  });

  test("reserve/settle: admitted spend never exceeds the budget; settled spend is what was used", async () => {
    // Two connections to one file, interleaved, as two processes would be.
    const path = join(directory, "race.db");
    const first = SqliteServiceStore.openFile(path);
    const second = SqliteServiceStore.openFile(path);
    try {
      const { limits, key, admitted } = await raceForBudget(first, second);
      let used = 0;
      for (const [index, reservationId] of admitted.entries()) {
        const tokens: [number, number] = [10, index % 7];
        used += tokens[0] + tokens[1];
        await (index % 2 === 0 ? second : first).settle(reservationId, usage(tokens, key.id));
      }
      const state = await first.budgetState(key.id, limits, now);
      assert.equal(state.reservedTokens, 0);
      assert.equal(state.spentTokens, used);
      assert.equal((await first.listUsage({ keyId: key.id })).length, admitted.length);
      // Settling twice does not count twice.
      await first.settle(admitted[0], usage([0, 0], key.id));
      assert.equal((await first.budgetState(key.id, limits, now)).spentTokens, used);
      // The next day starts afresh.
      const tomorrow = new Date(now.getTime() + 86_400_000);
      assert.equal((await first.reserve({ keyId: key.id, limits, tokens: 1000, usd: 0, now: tomorrow })).admitted, true);
      // More than the whole budget never fits, even after in-flight ones settle.
      const tooBig = await first.reserve({ keyId: key.id, limits, tokens: 1001, usd: 0, now });
      assert.ok(!tooBig.admitted && !tooBig.fitsAfterInFlight && tooBig.periodEnd === "2030-05-18T00:00:00.000Z");
    } finally {
      await first.close();
      await second.close();
    }
  });

  test("reservations from 4 threads with their own connections never overspend", async () => {
    const path = join(directory, "threads.db");
    const store = SqliteServiceStore.openFile(path);
    const limits: KeyLimits = { budgetTokens: 1000 };
    const key = await keyWith(store, limits);
    const moduleUrl = new URL("./sqlite-service-store.js", import.meta.url).href;
    // Each thread opens the file and races 100 reservations of 30 tokens against the others.
    const code = `
      const { workerData, parentPort } = require("node:worker_threads");
      import(workerData.moduleUrl).then(async ({ SqliteServiceStore }) => {
        const store = SqliteServiceStore.openFile(workerData.path);
        let admitted = 0;
        for (let index = 0; index < 100; index++) {
          const result = await store.reserve({ keyId: workerData.keyId, limits: workerData.limits, tokens: 30, usd: 0, now: new Date() });
          if (result.admitted) admitted++;
        }
        await store.close();
        parentPort.postMessage(admitted);
      });`;
    const counts = await Promise.all(
      Array.from({ length: 4 }, () => {
        const worker = new Worker(code, { eval: true, workerData: { moduleUrl, path, keyId: key.id, limits } });
        return new Promise<number>((resolve, reject) => {
          worker.once("message", resolve);
          worker.once("error", reject);
        });
      }),
    );
    const total = counts.reduce((sum, count) => sum + count, 0);
    assert.equal(total, Math.floor(1000 / 30), `admitted per thread: ${counts}`);
    assert.equal((await store.budgetState(key.id, limits, new Date())).reservedTokens, total * 30);
    await store.close();
  });

  test("USD budgets are exact in nano-dollars; usage sums by model, key, day and hour, split by key or model", async () => {
    const store = SqliteServiceStore.openFile(join(directory, "usd.db"));
    try {
      const limits: KeyLimits = { budgetUsd: 0.3 };
      const key = await keyWith(store, limits);
      const results = [];
      for (let index = 0; index < 4; index++) results.push(await store.reserve({ keyId: key.id, limits, tokens: 1, usd: 0.1, now }));
      assert.deepEqual(results.map((result) => result.admitted), [true, true, true, false]);
      assert.equal((results[3] as { limit: string }).limit, "budget_usd");
      await store.settle(undefined, usage([3, 4]));
      const groups = await store.summarizeUsage({}, "key");
      assert.deepEqual(groups.map((group) => [group.group, group.requests, group.promptTokens, group.completionTokens]), [["-", 1, 3, 4]]);
      assert.equal((await store.summarizeUsage({}, "day"))[0]!.group, "2030-05-17");
      await store.settle(undefined, { ...usage([5, 6], key.id), createdAt: "2030-05-17T13:30:00.000Z" });
      await store.settle(undefined, { ...usage([1, 1], key.id), createdAt: "2030-05-17T13:59:59.000Z" });
      const byHourAndKey = await store.summarizeUsage({}, "hour", "key");
      assert.deepEqual(byHourAndKey.map((group) => [group.group, group.split, group.requests, group.promptTokens, group.completionTokens]), [
        ["2030-05-17T12", "-", 1, 3, 4],
        ["2030-05-17T13", key.id, 2, 6, 7],
      ]);
      const byDayAndModel = await store.summarizeUsage({ keyId: key.id }, "day", "model");
      assert.deepEqual(byDayAndModel.map((group) => [group.group, group.split, group.requests]), [["2030-05-17", "sha256:" + "0".repeat(64), 2]]);
      assert.equal((await store.summarizeUsage({}, "hour"))[0]!.split, undefined, "no split unless asked");
    } finally {
      await store.close();
    }
  });
});

describe("key and usage options", () => {
  test("valid flags parse", () => {
    const options = parseKeyOptions({ name: "n", models: "a, b", expires: "30d", rpm: "60", budgetUsd: "2.5", period: "day", admin: true }, now, "flag");
    assert.deepEqual(options.models, ["a", "b"]);
    assert.equal(options.expiresAt, "2030-06-16T12:00:00.000Z");
    assert.deepEqual(options.limits, { rpm: 60, budgetUsd: 2.5, period: "day" });
  });

  const bad: [string, Parameters<typeof parseKeyOptions>[0], RegExp][] = [
    ["bad --expires", { expires: "soon" }, /--expires must be a duration/],
    ["past --expires", { expires: "2001-01-01" }, /--expires/],
    ["zero --expires", { expires: "0d" }, /--expires/],
    ["negative budget", { budgetTokens: "-5" }, /--budget-tokens must be a whole number above 0/],
    ["fractional rpm", { rpm: "1.5" }, /--rpm must be a whole number/],
    ["NaN usd", { budgetUsd: "lots" }, /--budget-usd must be a number above 0/],
    ["bad period", { budgetTokens: "5", period: "week" }, /--period must be day or month/],
    ["period without budget", { period: "day" }, /--period needs --budget-tokens or --budget-usd/],
    ["empty models", { models: " , " }, /--models must be a non-empty list/],
  ];
  for (const [title, raw, message] of bad) {
    test(`refuses ${title} with an error naming the flag`, () => {
      assert.throws(() => parseKeyOptions(raw, now, "flag"), (error: any) => error.code === "invalid_parameter" && message.test(error.message));
    });
  }

  test("API field names in API errors; usage filters", () => {
    assert.throws(() => parseKeyOptions({ budgetTokens: -1 }, now, "field"), (error: any) => error.param === "budget_tokens");
    assert.throws(() => parseUsageOptions({ by: "week" }, now, "flag"), /--by must be one of model, key, day, hour/);
    assert.throws(() => parseUsageOptions({ by: "hour", split: "day" }, now, "field"), (error: any) => error.param === "split" && /split must be one of model, key/.test(error.message));
    assert.throws(() => parseUsageOptions({ split: "model" }, now, "field"), /split splits the groups of by again: give by as well/);
    assert.throws(() => parseUsageOptions({ by: "model", split: "model" }, now, "field"), /other than model/);
    assert.deepEqual(parseUsageOptions({ by: "hour", split: "key" }, now, "field"), { query: {}, by: "hour", split: "key" });
    assert.throws(() => parseUsageOptions({ limit: "0" }, now, "field"), /limit must be a whole number/);
    assert.throws(() => parseSince("yesterday", now, "--since"), /--since must be a duration ago/);
    assert.equal(parseSince("1d", now, "--since"), "2030-05-16T12:00:00.000Z");
  });
});
