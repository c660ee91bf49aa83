import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { metricDirection, NOT_MEASURED_FLAG, rankEntries } from "./ranking.js";

const byName = (a: string, b: string): number => a.localeCompare(b);

describe("rankEntries", () => {
  test("lower is better: ranks ascending, ties share a rank in tie order, then 1, 1, 3", () => {
    const ranked = rankEntries(
      [
        { item: "c", value: 12, flags: [] },
        { item: "b", value: 10, flags: [] },
        { item: "a", value: 10, flags: [] },
        { item: "d", value: 15, flags: [] },
      ],
      false,
      byName,
    );
    assert.deepEqual(ranked.map((entry) => [entry.item, entry.rank]), [["a", 1], ["b", 1], ["c", 3], ["d", 4]]);
  });

  test("higher is better: ranks descending", () => {
    const ranked = rankEntries([{ item: "x", value: 0.4, flags: [] }, { item: "y", value: 0.9, flags: [] }], true);
    assert.deepEqual(ranked.map((entry) => [entry.item, entry.rank, entry.value]), [["y", 1, 0.9], ["x", 2, 0.4]]);
  });

  test("flagged and unmeasured entries come last, unranked, with their flag instead of a rank", () => {
    const ranked = rankEntries(
      [
        // A flagged result with the best number is still not a score.
        { item: "flagged", value: 0.99, flags: ["below_chance"] },
        { item: "missing", value: null, flags: [] },
        { item: "nan", value: Number.NaN, flags: [] },
        { item: "scored", value: 0.3, flags: [] },
      ],
      true,
      byName,
    );
    assert.deepEqual(ranked.map((entry) => [entry.item, entry.rank, entry.flags]), [
      ["scored", 1, []],
      ["flagged", null, ["below_chance"]],
      ["missing", null, [NOT_MEASURED_FLAG]],
      ["nan", null, [NOT_MEASURED_FLAG]],
    ]);
    assert.deepEqual(ranked.map((entry) => entry.value), [0.3, null, null, null]);
  });

  test("one entry, and none", () => {
    assert.deepEqual(rankEntries([{ item: 1, value: 5, flags: [] }], false), [{ item: 1, rank: 1, value: 5, flags: [] }]);
    assert.deepEqual(rankEntries([], true), []);
  });
});

describe("metricDirection", () => {
  test("knows primary, secondary and cost metrics", () => {
    assert.equal(metricDirection("perplexity"), false);
    assert.equal(metricDirection("bitsPerByte"), false);
    assert.equal(metricDirection("klDivergence"), false);
    assert.equal(metricDirection("acc"), true);
    assert.equal(metricDirection("accNorm"), true);
    assert.equal(metricDirection("top1Agreement"), true);
    assert.equal(metricDirection("peakRssBytes"), false);
    assert.equal(metricDirection("aggregateDecodeTokensPerSecond.16"), true);
    assert.equal(metricDirection("vibes"), undefined);
  });
});
