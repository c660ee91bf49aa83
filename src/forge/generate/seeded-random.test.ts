import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeededRandom } from "./seeded-random.js";

describe("SeededRandom", () => {
  it("repeats the same stream for the same seed and name", () => {
    const first = new SeededRandom(42, "blk.0.attn_q.weight");
    const second = new SeededRandom(42, "blk.0.attn_q.weight");
    const a = Array.from({ length: 8 }, () => first.nextUint32());
    const b = Array.from({ length: 8 }, () => second.nextUint32());
    assert.deepEqual(a, b);
    assert.ok(a.every((value) => Number.isInteger(value) && value >= 0 && value < 2 ** 32));
  });

  it("gives different streams for different seeds and names", () => {
    const draw = (seed: number, name: string): number[] => {
      const random = new SeededRandom(seed, name);
      return Array.from({ length: 4 }, () => random.nextUint32());
    };
    assert.notDeepEqual(draw(1, "x"), draw(2, "x"));
    assert.notDeepEqual(draw(1, "x"), draw(1, "y"));
    assert.notDeepEqual(draw(0, ""), draw(2 ** 32, "")); // the high half of the seed counts
  });

  it("pins the first values, so generated files stay byte-identical across versions", () => {
    const random = new SeededRandom(7, "token_embd.weight");
    const values = new Float32Array(3);
    random.fillNormal(values, 0.02);
    const pinned = new SeededRandom(7, "token_embd.weight");
    const again = new Float32Array(3);
    pinned.fillNormal(again, 0.02);
    assert.deepEqual(values, again);
    // fillNormal and nextUint32 walk the same xoshiro128** sequence.
    const check = new SeededRandom(7, "token_embd.weight");
    const word = check.nextUint32();
    const bytes = (word & 0xff) + ((word >>> 8) & 0xff) + ((word >>> 16) & 0xff) + (word >>> 24);
    assert.ok(Math.abs(values[0] - ((bytes - 510) * 0.02) / Math.sqrt(21845)) < 1e-9);
  });

  it("fills bell-shaped values with the requested spread", () => {
    const values = new Float32Array(1 << 18);
    new SeededRandom(3).fillNormal(values, 0.02);
    let sum = 0;
    let squares = 0;
    let within = 0;
    for (const value of values) {
      sum += value;
      squares += value * value;
      if (Math.abs(value) <= 0.02) within++;
    }
    const mean = sum / values.length;
    const std = Math.sqrt(squares / values.length - mean * mean);
    assert.ok(Math.abs(mean) < 2e-4, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.02) < 4e-4, `std ${std}`);
    // A normal distribution has 68% within one std; uniform would have 58%.
    assert.ok(Math.abs(within / values.length - 0.68) < 0.03, `within one std: ${within / values.length}`);
  });

  it("rejects bad seeds", () => {
    assert.throws(() => new SeededRandom(-1), RangeError);
    assert.throws(() => new SeededRandom(1.5), RangeError);
  });
});
