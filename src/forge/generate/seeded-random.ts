/**
 * A fast, seeded, platform-independent random source for generated weights: xoshiro128**
 * (Blackman & Vigna) seeded through splitmix32. Same seed and stream name → same numbers on
 * every machine and Node version, which makes generated files byte-identical.
 */

// Irwin–Hall of four uniform bytes: mean 4·127.5 = 510, variance 4·(256²−1)/12 = 21845.
const BYTE_SUM_MEAN = 510;
const BYTE_SUM_STD = Math.sqrt(21845);

/** splitmix32 step: a well-mixed 32-bit value from a 32-bit counter. */
function splitmix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a stream name. */
function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < name.length; index++) {
    hash = Math.imul(hash ^ name.charCodeAt(index), 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A seeded xoshiro128** generator. Independent streams come from the same seed and a name
 * (e.g. the tensor name), so a tensor's values do not depend on the order tensors are made in.
 */
export class SeededRandom {
  readonly #state = new Uint32Array(4);

  /**
   * @param seed a non-negative integer below 2^53
   * @param stream a name mixed into the seed for an independent stream
   */
  constructor(seed: number, stream = "") {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`Seed must be a non-negative safe integer, got ${seed}`);
    let mix = splitmix32((seed % 0x100000000) ^ splitmix32(Math.floor(seed / 0x100000000)));
    mix = splitmix32(mix ^ hashName(stream));
    for (let index = 0; index < 4; index++) {
      mix = splitmix32(mix + index);
      this.#state[index] = mix;
    }
    if ((this.#state[0] | this.#state[1] | this.#state[2] | this.#state[3]) === 0) this.#state[0] = 1;
  }

  /** The next 32-bit unsigned value. */
  nextUint32(): number {
    const state = this.#state;
    const result = Math.imul(rotateLeft(Math.imul(state[1], 5), 7), 9) >>> 0;
    const shifted = state[1] << 9;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= shifted;
    state[3] = rotateLeft(state[3], 11);
    return result;
  }

  /** A uniform number in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 0x100000000;
  }

  /**
   * Fills `target` with bell-shaped values of mean 0 and standard deviation `std`: the sum
   * of the four bytes of one 32-bit draw (Irwin–Hall, bounded at ±3.46 std). One draw per
   * value and no transcendental functions: this loop makes a 1B-parameter file in seconds.
   */
  fillNormal(target: Float32Array, std: number): void {
    const state = this.#state;
    let s0 = state[0] | 0;
    let s1 = state[1] | 0;
    let s2 = state[2] | 0;
    let s3 = state[3] | 0;
    const scale = std / BYTE_SUM_STD;
    const length = target.length;
    for (let index = 0; index < length; index++) {
      const product = Math.imul(s1, 5);
      const random = Math.imul((product << 7) | (product >>> 25), 9);
      const shifted = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= shifted;
      s3 = (s3 << 11) | (s3 >>> 21);
      const sum = (random & 0xff) + ((random >>> 8) & 0xff) + ((random >>> 16) & 0xff) + (random >>> 24);
      target[index] = (sum - BYTE_SUM_MEAN) * scale;
    }
    state[0] = s0;
    state[1] = s1;
    state[2] = s2;
    state[3] = s3;
  }
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/**
 * The items in a seeded random order (Fisher–Yates): the same seed and stream give the same
 * order on every machine.
 */
export function seededShuffle<T>(items: readonly T[], seed: number, stream: string): T[] {
  const random = new SeededRandom(seed, stream);
  const result = [...items];
  for (let index = result.length - 1; index > 0; index--) {
    const other = Math.floor(random.nextFloat() * (index + 1));
    [result[index], result[other]] = [result[other]!, result[index]!];
  }
  return result;
}
