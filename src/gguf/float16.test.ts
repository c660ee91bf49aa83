import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { float16BitsToFloat32, float32ToFloat16, float32ToFloat16Bits } from "./float16.js";

describe("float32ToFloat16Bits", () => {
  it("converts the edge cases exactly", () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite half
      [65519.99, 0x7bff], // below the rounding midpoint
      [65520, 0x7c00], // the midpoint rounds (to even) to infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // exactly half the smallest subnormal: ties to even (0)
      [2 ** -25 * 1.0001, 0x0001], // just above the tie
      [3 * 2 ** -25, 0x0002], // 1.5 units: ties to even (2)
      [5 * 2 ** -25, 0x0002], // 2.5 units: ties to even (2)
      [-(2 ** -24), 0x8001],
      [1e-10, 0x0000],
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1+2^-10 and 1+2^-9: even mantissa
      [0.1, 0x2e66],
      [2 ** -14 - 2 ** -25, 0x0400], // the largest subnormal rounds up into the normals
    ];
    for (const [value, expected] of cases) {
      assert.equal(float32ToFloat16Bits(value).toString(16), expected.toString(16), `${value}`);
    }
  });

  it("keeps NaN a NaN", () => {
    const half = float32ToFloat16Bits(NaN);
    assert.equal(half & 0x7c00, 0x7c00);
    assert.notEqual(half & 0x03ff, 0);
    assert.ok(Number.isNaN(float16BitsToFloat32(half)));
  });

  it("round-trips every finite half and rounds every midpoint to even", () => {
    for (let half = 0; half < 0x10000; half++) {
      if ((half & 0x7c00) === 0x7c00) continue; // infinities and NaNs
      const value = float16BitsToFloat32(half);
      assert.equal(float32ToFloat16Bits(value), half === 0x8000 ? 0x8000 : half);
      const next = half + 1;
      if ((half & 0x7fff) === 0x7bff || (next & 0x7c00) === 0x7c00) continue;
      const midpoint = (value + float16BitsToFloat32(next)) / 2;
      const expected = half % 2 === 0 ? half : next;
      if (float32ToFloat16Bits(midpoint) !== expected) {
        assert.fail(`midpoint ${midpoint} between 0x${half.toString(16)} and 0x${next.toString(16)} gave 0x${float32ToFloat16Bits(midpoint).toString(16)}`);
      }
    }
  });

  it("converts arrays like the scalar function", () => {
    const values = new Float32Array([0, -0, 1.5, 65504, 70000, 2 ** -24, -3.25]);
    const halves = new Uint16Array(values.length);
    float32ToFloat16(values, halves);
    assert.deepEqual([...halves], [...values].map(float32ToFloat16Bits));
  });
});
