import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryRateLimiter, type RateTicket } from "./rate-limiter.js";

const minute = 60_000;
const start = 100 * minute;

test("concurrency: a slot frees when a request ends", async () => {
  const limiter = new MemoryRateLimiter();
  const first = await limiter.acquire("k", { concurrency: 1 }, 10, start);
  assert.ok(first.admitted);
  const second = await limiter.acquire("k", { concurrency: 1 }, 10, start);
  assert.deepEqual(second, { admitted: false, limit: "concurrency", retryAfterSeconds: 1 });
  await limiter.release((first as { ticket: RateTicket }).ticket, 5);
  assert.ok((await limiter.acquire("k", { concurrency: 1 }, 10, start)).admitted);
});

test("tokens per minute: the worst case is taken, then corrected to the real count; the next window starts afresh", async () => {
  const limiter = new MemoryRateLimiter();
  const limits = { tpm: 100 };
  const held = await limiter.acquire("k", limits, 80, start + 15_000);
  assert.ok(held.admitted);
  const refused = await limiter.acquire("k", limits, 30, start + 15_000);
  assert.ok(!refused.admitted && refused.limit === "tpm" && refused.retryAfterSeconds === 45);
  await limiter.release((held as { ticket: RateTicket }).ticket, 20);
  assert.ok((await limiter.acquire("k", limits, 80, start + 16_000)).admitted, "20 used + 80 fits");
  assert.ok((await limiter.acquire("k", limits, 100, start + minute)).admitted, "a new window");
  assert.ok((await limiter.acquire("other", limits, 100, start)).admitted, "keys count apart");
});

test("requests per minute", async () => {
  const limiter = new MemoryRateLimiter();
  assert.ok((await limiter.acquire("k", { rpm: 1 }, 1, start)).admitted);
  const refused = await limiter.acquire("k", { rpm: 1 }, 1, start + 59_000);
  assert.ok(!refused.admitted && refused.limit === "rpm" && refused.retryAfterSeconds === 1);
});
