import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { median, percentile } from "./percentile.js";

describe("percentile", () => {
  test("interpolates linearly between ranks", () => {
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
    assert.equal(percentile([10, 20, 30, 40, 50], 25), 20);
    assert.equal(percentile([10, 20], 90), 19);
  });

  test("p0 and p100 are the minimum and the maximum, whatever the input order", () => {
    assert.equal(percentile([3, 1, 2], 0), 1);
    assert.equal(percentile([3, 1, 2], 100), 3);
  });

  test("does not reorder its input", () => {
    const values = [3, 1, 2];
    percentile(values, 50);
    assert.deepEqual(values, [3, 1, 2]);
  });

  test("an empty sample has no percentile", () => {
    assert.equal(percentile([], 50), undefined);
  });

  test("rejects a percentile outside 0..100 and non-finite samples", () => {
    assert.throws(() => percentile([1], 101), RangeError);
    assert.throws(() => percentile([1], Number.NaN), RangeError);
    assert.throws(() => percentile([1, Number.POSITIVE_INFINITY], 50), RangeError);
  });
});

describe("median", () => {
  test("is the middle value of an odd sample and the mean of the middle two of an even one", () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.equal(median([]), undefined);
  });
});
