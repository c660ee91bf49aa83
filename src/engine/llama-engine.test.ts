import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultThreadCount, SINGLE_THREAD_BELOW_BYTES } from "./llama-engine.js";

test("small models decode on one thread, large ones on every core", () => {
  assert.equal(defaultThreadCount(11_000_000, 2), 1);
  assert.equal(defaultThreadCount(SINGLE_THREAD_BELOW_BYTES - 1, 8), 1);
  assert.equal(defaultThreadCount(SINGLE_THREAD_BELOW_BYTES, 8), 8);
  assert.equal(defaultThreadCount(2_200_000_000, 2), 2);
  assert.equal(defaultThreadCount(2_200_000_000, 0), 1);
});
