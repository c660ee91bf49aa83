import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startRedis, type TestRedis } from "../test-support/redis-server.js";
import type { RateDecision, RateTicket } from "./rate-limiter.js";
import { RedisRateLimiter } from "./redis-rate-limiter.js";

// The semantics of rate-limiter.test.ts (MemoryRateLimiter), against a throwaway redis-server,
// with two limiters standing for two replicas. Each test uses its own key prefix.

const minute = 60_000;
const start = 100 * minute;

let server: TestRedis;
const limiters: RedisRateLimiter[] = [];
before(async () => {
  server = await startRedis();
});
after(async () => {
  await Promise.all(limiters.map((limiter) => limiter.close()));
  await server?.stop();
});

/** Two limiters on one Redis, as two replicas would hold. */
async function replicas(prefix: string, leaseMs?: number): Promise<[RedisRateLimiter, RedisRateLimiter]> {
  const pair = await Promise.all([0, 1].map(() => RedisRateLimiter.open(server.url, { prefix, ...(leaseMs === undefined ? {} : { leaseMs }) })));
  limiters.push(...pair);
  return pair as [RedisRateLimiter, RedisRateLimiter];
}

const ticketOf = (decision: RateDecision): RateTicket => {
  assert.ok(decision.admitted, JSON.stringify(decision));
  return decision.ticket;
};

describe("RedisRateLimiter", () => {
  test("concurrency: a slot taken on one replica is taken on the other; it frees when the request ends", async () => {
    const [a, b] = await replicas("t1:");
    const first = ticketOf(await a.acquire("k", { concurrency: 1 }, 10, start));
    assert.deepEqual(await b.acquire("k", { concurrency: 1 }, 10, start), { admitted: false, limit: "concurrency", retryAfterSeconds: 1 });
    await a.release(first, 5);
    ticketOf(await b.acquire("k", { concurrency: 1 }, 10, start));
  });

  test("concurrency: a slot whose replica died frees when its lease expires", async () => {
    const [a, b] = await replicas("t2:", 300);
    ticketOf(await a.acquire("k", { concurrency: 1 }, 1, start));
    assert.ok(!(await b.acquire("k", { concurrency: 1 }, 1, start)).admitted);
    // The lease's expiry is the point here: waiting past it is the behaviour under test.
    await new Promise((resolve) => setTimeout(resolve, 400));
    ticketOf(await b.acquire("k", { concurrency: 1 }, 1, start));
  });

  test("tokens per minute: the worst case is taken, then corrected to the real count; the next window starts afresh", async () => {
    const [a, b] = await replicas("t3:");
    const limits = { tpm: 100 };
    const held = ticketOf(await a.acquire("k", limits, 80, start + 15_000));
    const refused = await b.acquire("k", limits, 30, start + 15_000);
    assert.ok(!refused.admitted && refused.limit === "tpm" && refused.retryAfterSeconds === 45);
    await a.release(held, 20);
    ticketOf(await b.acquire("k", limits, 80, start + 16_000));
    ticketOf(await a.acquire("k", limits, 100, start + minute));
    ticketOf(await b.acquire("other", limits, 100, start));
  });

  test("requests per minute, shared: 60 attempts split across replicas admit exactly rpm", async () => {
    const [a, b] = await replicas("t4:");
    const decisions = await Promise.all(Array.from({ length: 60 }, (_, index) => (index % 2 ? a : b).acquire("k", { rpm: 25 }, 1, start)));
    assert.equal(decisions.filter((decision) => decision.admitted).length, 25);
    const refused = await a.acquire("k", { rpm: 25 }, 1, start + 59_000);
    assert.ok(!refused.admitted && refused.limit === "rpm" && refused.retryAfterSeconds === 1);
  });

  test("a release after its window ended leaves the new window alone", async () => {
    const [a] = await replicas("t5:");
    const old = ticketOf(await a.acquire("k", { tpm: 100 }, 90, start));
    ticketOf(await a.acquire("k", { tpm: 100 }, 90, start + minute));
    await a.release(old, 0);
    assert.ok(!(await a.acquire("k", { tpm: 100 }, 20, start + minute)).admitted, "the new window still counts its 90");
  });

  test("bad URLs and unreachable servers fail with a message naming the setting", async () => {
    await assert.rejects(RedisRateLimiter.open("localhost:6379"), { code: "config_invalid", message: /--redis \(GROVE_REDIS_URL\) must start with redis:\/\// });
    await assert.rejects(RedisRateLimiter.open("http://127.0.0.1:1"), { code: "config_invalid", message: /must start with redis:\/\// });
    await assert.rejects(RedisRateLimiter.open("redis://:hunter2@127.0.0.1:1"), (error: Error) => {
      assert.match(error.message, /Cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 .*ECONNREFUSED/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });
});
