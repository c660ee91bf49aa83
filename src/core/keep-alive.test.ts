import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatKeepAlive, KEEP_FOREVER, parseKeepAlive } from "./keep-alive.js";

describe("parseKeepAlive: Ollama's keep_alive", () => {
  test("Go durations, numbers of seconds, zero and negatives", () => {
    const cases: [string | number, number | undefined][] = [
      ["5m", 300_000],
      ["1h30m", 5_400_000],
      ["1.5h", 5_400_000],
      ["250ms", 250],
      ["90s", 90_000],
      ["0", 0],
      ["0s", 0],
      [0, 0],
      [30, 30_000],
      [2.5, 2_500],
      ["300", 300_000],
      [-1, KEEP_FOREVER],
      ["-1", KEEP_FOREVER],
      ["-1m", KEEP_FOREVER],
      ["1000000h", KEEP_FOREVER],
    ];
    for (const [value, expected] of cases) assert.equal(parseKeepAlive(value), expected, JSON.stringify(value));
  });

  test("what is not a duration is refused", () => {
    for (const value of ["", "later", "5 m", "m5", "5d", "1h-30m", "--1", "NaN", Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(parseKeepAlive(value), undefined, JSON.stringify(value));
    }
  });

  test("formats back as people write it", () => {
    assert.equal(formatKeepAlive(KEEP_FOREVER), "forever");
    assert.equal(formatKeepAlive(0), "0s");
    assert.equal(formatKeepAlive(5_400_000), "1h30m");
    assert.equal(formatKeepAlive(1_500), "1.5s");
  });
});
