import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dominates, paretoFront, type FrontAxes } from "./pareto-front.js";

const perplexityBySize: FrontAxes = { qualityHigherIsBetter: false, costHigherIsBetter: false };
const accuracyBySpeed: FrontAxes = { qualityHigherIsBetter: true, costHigherIsBetter: true };

describe("paretoFront", () => {
  test("lower-is-better quality and cost: a bigger, worse model is dominated by the models better on both", () => {
    const front = paretoFront(
      [
        { item: "f32", quality: 10.0, cost: 400 },
        { item: "q8", quality: 10.1, cost: 110 },
        { item: "q4", quality: 11.0, cost: 60 },
        { item: "bad", quality: 12.0, cost: 120 },
      ],
      perplexityBySize,
    );
    assert.deepEqual(front.map((point) => [point.item, point.onFront, point.dominatedBy]), [
      ["f32", true, []],
      ["q8", true, []],
      ["q4", true, []],
      ["bad", false, [1, 2]],
    ]);
  });

  test("higher-is-better on both axes", () => {
    const front = paretoFront(
      [
        { item: "fast", quality: 0.5, cost: 100 },
        { item: "good", quality: 0.9, cost: 20 },
        { item: "both", quality: 0.9, cost: 100 },
      ],
      accuracyBySpeed,
    );
    assert.deepEqual(front.map((point) => [point.item, point.onFront, point.dominatedBy]), [
      ["fast", false, [2]],
      ["good", false, [2]],
      ["both", true, []],
    ]);
  });

  test("equal points do not dominate each other; a tie on one axis is decided by the other", () => {
    const front = paretoFront(
      [
        { item: "a", quality: 10, cost: 100 },
        { item: "b", quality: 10, cost: 100 },
        { item: "c", quality: 10, cost: 90 },
      ],
      perplexityBySize,
    );
    assert.deepEqual(front.map((point) => [point.item, point.onFront, point.dominatedBy]), [
      ["a", false, [2]],
      ["b", false, [2]],
      ["c", true, []],
    ]);
    assert.equal(dominates({ item: 0, quality: 1, cost: 1 }, { item: 1, quality: 1, cost: 1 }, perplexityBySize), false);
  });

  test("one point is the front; no points, no front", () => {
    assert.deepEqual(paretoFront([{ item: "only", quality: 3, cost: 3 }], perplexityBySize), [{ item: "only", quality: 3, cost: 3, onFront: true, dominatedBy: [] }]);
    assert.deepEqual(paretoFront([], perplexityBySize), []);
  });
});
