import assert from "node:assert/strict";
import { test } from "node:test";
import { AbortedError, OverloadedError } from "../core/errors.js";
import { commonPrefixLength } from "./decode-loop.js";
import { SlotPool } from "./slot-pool.js";

interface FakeSlot {
  name: string;
  cache: number[];
}

const pool = (queueLimit: number) => {
  const slots: FakeSlot[] = [
    { name: "a", cache: [1, 2, 3] },
    { name: "b", cache: [7, 8, 9, 10] },
  ];
  return new SlotPool<FakeSlot>({ slots, queueLimit, cachedPrefixLength: (slot, prompt) => commonPrefixLength(slot.cache, prompt) });
};

test("picks the free slot sharing the longest prompt prefix", async () => {
  const slots = pool(1);
  assert.equal((await slots.acquire([7, 8, 1])).name, "b");
  assert.equal((await slots.acquire([7, 8, 1])).name, "a");
  assert.equal(slots.busy, 2);
});

test("queues FIFO up to the limit, then refuses with OverloadedError", async () => {
  const slots = pool(1);
  const first = await slots.acquire([]);
  await slots.acquire([]);
  const waiting = slots.acquire([]);
  assert.equal(slots.queued, 1);
  await assert.rejects(slots.acquire([]), OverloadedError);
  slots.release(first);
  assert.equal((await waiting).name, first.name);
  assert.equal(slots.queued, 0);
});

test("an aborted waiter leaves the queue", async () => {
  const slots = pool(2);
  await slots.acquire([]);
  await slots.acquire([]);
  const controller = new AbortController();
  const waiting = slots.acquire([], controller.signal);
  controller.abort();
  await assert.rejects(waiting, AbortedError);
  assert.equal(slots.queued, 0);
});
