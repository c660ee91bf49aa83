import { float16BitsToFloat32, float32ToFloat16Bits } from "./float16.js";

/** Elements per Q8_0 block (`QK8_0`). */
export const Q8_0_BLOCK_SIZE = 32;
/** Bytes per Q8_0 block: an f16 scale and 32 int8 values. */
export const Q8_0_BLOCK_BYTES = 34;

/**
 * Quantizes `source` (a multiple of 32 values) to GGML_TYPE_Q8_0 blocks in `target`, as
 * llama.cpp's `quantize_row_q8_0_ref` does: per block d = amax/127 stored as f16, then
 * round(x/d) with ties away from zero, all in float32 arithmetic.
 *
 * @param target receives `source.length / 32 * 34` bytes from offset 0
 */
export function quantizeQ8_0(source: Float32Array, target: Uint8Array): void {
  const blockCount = source.length / Q8_0_BLOCK_SIZE;
  if (!Number.isInteger(blockCount)) throw new RangeError(`Q8_0 needs a multiple of 32 values, got ${source.length}`);
  if (target.length < blockCount * Q8_0_BLOCK_BYTES) throw new RangeError("Q8_0 target buffer too small");
  const fround = Math.fround;
  for (let block = 0; block < blockCount; block++) {
    const start = block * Q8_0_BLOCK_SIZE;
    let amax = 0;
    for (let index = start; index < start + Q8_0_BLOCK_SIZE; index++) amax = Math.max(amax, Math.abs(source[index]));
    const scale = fround(amax / 127);
    const inverse = scale === 0 ? 0 : fround(1 / scale);
    const halfScale = float32ToFloat16Bits(scale);
    const out = block * Q8_0_BLOCK_BYTES;
    target[out] = halfScale & 0xff;
    target[out + 1] = halfScale >>> 8;
    for (let index = 0; index < Q8_0_BLOCK_SIZE; index++) {
      const scaled = fround(source[start + index] * inverse);
      // roundf (halves away from zero) without a sign branch: random signs mispredict and
      // made this loop 3x slower. trunc(2·fraction) is ±1 exactly when |fraction| >= 0.5.
      const whole = Math.trunc(scaled);
      target[out + 2 + index] = whole + Math.trunc((scaled - whole) * 2);
    }
  }
}

/** Expands Q8_0 blocks back to float32 values (for tests and checks). */
export function dequantizeQ8_0(source: Uint8Array, target: Float32Array): void {
  const blockCount = Math.floor(source.length / Q8_0_BLOCK_BYTES);
  for (let block = 0; block < blockCount; block++) {
    const at = block * Q8_0_BLOCK_BYTES;
    const scale = float16BitsToFloat32(source[at] | (source[at + 1] << 8));
    for (let index = 0; index < Q8_0_BLOCK_SIZE; index++) {
      const byte = source[at + 2 + index];
      target[block * Q8_0_BLOCK_SIZE + index] = scale * (byte > 127 ? byte - 256 : byte);
    }
  }
}
