import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeEmbedding } from "./embedding-norm.js";

const close = (actual: readonly number[], expected: readonly number[]) =>
  assert.ok(actual.length === expected.length && actual.every((value, index) => Math.abs(value - expected[index]!) < 1e-9), `${actual} ≉ ${expected}`);

test("embd_normalize as llama.cpp's common_embd_normalize: none, int16 range, taxicab, Euclidean, p-norm", () => {
  const vector = [3, -4, 0];
  assert.deepEqual(normalizeEmbedding(vector, -1), [3, -4, 0]);
  close(normalizeEmbedding(vector, 0), [(3 * 32760) / 4, -32760, 0]);
  close(normalizeEmbedding(vector, 1), [3 / 7, -4 / 7, 0]);
  close(normalizeEmbedding(vector, 2), [0.6, -0.8, 0]);
  const cubed = normalizeEmbedding(vector, 3);
  assert.ok(Math.abs(cubed.reduce((sum, value) => sum + Math.abs(value) ** 3, 0) - 1) < 1e-12);
});

test("a zero vector stays zero instead of dividing by zero", () => {
  for (const norm of [0, 1, 2, 5]) assert.deepEqual(normalizeEmbedding([0, 0], norm), [0, 0]);
});
