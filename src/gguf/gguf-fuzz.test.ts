/**
 * Fuzz test of validateGgufFile: mutates valid generated models (test-tiny, F16 and Q8_0) with
 * a seeded PRNG — byte and bit flips, truncations, inserted and deleted bytes, header fields
 * set to extremes, splices from the other file — and requires every outcome to be either an
 * InvalidModelFileError naming the file or a summary of a file that a second, independent
 * parser (walkGguf) also finds structurally sound. Any other error, crash or hang fails.
 *
 * Defaults: 10,000 cases, seed 1, about 8 s on two cores. A longer run, reproducible by seed:
 *
 *   npm run fuzz:gguf                                    # 200,000 cases, seed 1
 *   GROVE_FUZZ_CASES=1000000 GROVE_FUZZ_SEED=7 npm run fuzz:gguf
 *
 * with the package script
 *   "fuzz:gguf": "tsc -p tsconfig.json && GROVE_FUZZ_CASES=${GROVE_FUZZ_CASES:-200000} node --test --test-reporter=spec dist/gguf/gguf-fuzz.test.js"
 * (The variables are read here rather than through config/: they are knobs of a test, not of
 * Grove.) A failure message names the case, its source file and its mutations; rerun with
 * the same seed and at least as many cases to reproduce it. Each case's bytes depend only on
 * the seed and the cases drawn before it.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidModelFileError } from "../core/errors.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { SeededRandom } from "../forge/generate/seeded-random.js";
import { ggmlTypeInfo } from "./ggml-types.js";
import { walkGguf, type WalkedGguf } from "../test-support/gguf-test-fixtures.js";
import { validateGgufFile } from "./gguf-validator.js";

const CASES = fuzzSetting("GROVE_FUZZ_CASES", 10_000);
const SEED = fuzzSetting("GROVE_FUZZ_SEED", 1);

function fuzzSetting(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got '${text}'`);
  return value;
}

interface FuzzSource {
  bytes: Buffer;
  walked: WalkedGguf;
}

let directory: string;
const sources: FuzzSource[] = [];
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-gguf-fuzz-"));
  for (const dtype of ["f16", "q8_0"] as const) {
    const outPath = join(directory, `source-${dtype}.gguf`);
    await generateModel({ preset: "test-tiny", seed: 3, dtype, outPath });
    const bytes = await readFile(outPath);
    sources.push({ bytes, walked: walkGguf(bytes) });
  }
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A mutation: a name for the failure message and the function that applies it. */
type Mutation = (bytes: Buffer, random: Fuzzer) => Buffer;

/** The PRNG with the draws the mutations need. */
class Fuzzer {
  readonly #random: SeededRandom;
  constructor(seed: number) {
    this.#random = new SeededRandom(seed, "gguf-fuzz");
  }
  /** An integer in [0, bound). */
  below(bound: number): number {
    return bound <= 0 ? 0 : Math.floor(this.#random.nextFloat() * bound);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
  bytes(count: number): Buffer {
    const bytes = Buffer.alloc(count);
    for (let index = 0; index < count; index++) bytes[index] = this.below(256);
    return bytes;
  }
  /** A position, mostly inside the header (where the parser lives), sometimes anywhere. */
  position(bytes: Buffer, headerEnd: number): number {
    return this.below(4) === 0 ? this.below(bytes.length) : this.below(Math.min(bytes.length, headerEnd + 64));
  }
}

const EXTREMES_32 = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 31, 32, 33, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const EXTREMES_64 = [0n, 1n, 2n, 63n, 64n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n];

function setField(bytes: Buffer, offset: number, size: 4 | 8, value: bigint): void {
  if (offset + size > bytes.length) return;
  if (size === 4) bytes.writeUInt32LE(Number(BigInt.asUintN(32, value)), offset);
  else bytes.writeBigUInt64LE(BigInt.asUintN(64, value), offset);
}

function mutations(source: FuzzSource, other: FuzzSource): Record<string, Mutation> {
  const headerEnd = source.walked.headerEnd;
  return {
    "byte flips": (bytes, random) => {
      for (let flips = 1 + random.below(8); flips > 0; flips--) bytes[random.position(bytes, headerEnd)] = random.below(256);
      return bytes;
    },
    "bit flip": (bytes, random) => {
      bytes[random.position(bytes, headerEnd)] ^= 1 << random.below(8);
      return bytes;
    },
    truncation: (bytes, random) => bytes.subarray(0, random.position(bytes, headerEnd)),
    insertion: (bytes, random) => {
      const at = random.position(bytes, headerEnd);
      return Buffer.concat([bytes.subarray(0, at), random.bytes(1 + random.below(32)), bytes.subarray(at)]);
    },
    deletion: (bytes, random) => {
      const at = random.position(bytes, headerEnd);
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + 1 + random.below(32)))]);
    },
    "count extreme": (bytes, random) => {
      const offset = random.pick([8, 16]);
      if (offset + 8 > bytes.length) return bytes;
      const original = bytes.readBigUInt64LE(offset);
      setField(bytes, offset, 8, random.pick([...EXTREMES_64, original + 1n, original - 1n, original * 2n, 65_536n, 65_537n, 1_048_577n]));
      return bytes;
    },
    "field extreme": (bytes, random) => {
      const field = random.pick(source.walked.fields);
      if (field.offset + field.size > bytes.length) return bytes;
      const original = field.size === 4 ? BigInt(bytes.readUInt32LE(field.offset)) : bytes.readBigUInt64LE(field.offset);
      const extremes = field.size === 4 ? EXTREMES_32.map(BigInt) : [...EXTREMES_64, BigInt(bytes.length), BigInt(bytes.length - headerEnd)];
      setField(bytes, field.offset, field.size, random.pick([...extremes, original + 1n, original - 1n, original * 2n, original + 32n]));
      return bytes;
    },
    splice: (bytes, random) => {
      const donor = random.pick([source, other]).bytes;
      const from = random.position(donor, headerEnd);
      const piece = donor.subarray(from, from + 4 + random.below(256));
      const at = random.position(bytes, headerEnd);
      if (random.below(2) === 0) return Buffer.concat([bytes.subarray(0, at), piece, bytes.subarray(at)]);
      piece.copy(bytes, at, 0, Math.max(0, Math.min(piece.length, bytes.length - at)));
      return bytes;
    },
  };
}

/** The oracle for an accepted file: an independent parse finds nothing structurally wrong. */
function assertStructurallySound(bytes: Buffer, tensorCount: number, label: string): void {
  let walked: WalkedGguf;
  try {
    walked = walkGguf(bytes);
  } catch (error) {
    return assert.fail(`${label}: accepted, but an independent parse fails: ${String(error)}`);
  }
  assert.equal(walked.tensors.length, tensorCount, `${label}: tensor count`);
  assert.equal(new Set(walked.keys).size, walked.keys.length, `${label}: duplicate keys accepted`);
  assert.equal(new Set(walked.tensors.map((tensor) => tensor.name)).size, tensorCount, `${label}: duplicate tensor names accepted`);
  const dataStart = Math.ceil(walked.headerEnd / walked.alignment) * walked.alignment;
  for (const tensor of walked.tensors) {
    const type = ggmlTypeInfo(tensor.type);
    assert.ok(type, `${label}: tensor ${tensor.name} of unknown type ${tensor.type} accepted`);
    assert.ok(tensor.shape.length >= 1 && tensor.shape.length <= 4 && tensor.shape.every((dim) => dim > 0n), `${label}: shape [${tensor.shape.join(", ")}] accepted`);
    const elements = tensor.shape.reduce((product, dim) => product * dim, 1n);
    const end = BigInt(dataStart) + tensor.offset + (elements / BigInt(type.blockSize)) * BigInt(type.blockBytes);
    assert.ok(end <= BigInt(bytes.length), `${label}: tensor ${tensor.name} ends at ${end}, past ${bytes.length}`);
  }
}

const PARALLEL_CASES = 4;

interface FuzzCase {
  bytes: Buffer;
  label: string;
  /** The first mutation applied, for the tally. */
  kind: string;
}

function drawCase(index: number, random: Fuzzer, tables: Record<string, Mutation>[]): FuzzCase {
  const which = random.below(2);
  const table = tables[which];
  const names = Object.keys(table);
  let bytes: Buffer = Buffer.from(sources[which].bytes);
  const applied: string[] = [];
  for (let count = 1 + (random.below(4) === 0 ? random.below(3) : 0); count > 0; count--) {
    const name = random.pick(names);
    applied.push(name);
    bytes = table[name](bytes, random);
  }
  return { bytes, label: `case ${index} (seed ${SEED}, ${which === 0 ? "F16" : "Q8_0"}: ${applied.join(" + ")})`, kind: applied[0] };
}

async function checkCase(fuzzCase: FuzzCase, path: string, outcomes: Map<string, { refused: number; accepted: number }>): Promise<void> {
  const { bytes, label } = fuzzCase;
  await writeFile(path, bytes);
  const outcome = outcomes.get(fuzzCase.kind) ?? { refused: 0, accepted: 0 };
  outcomes.set(fuzzCase.kind, outcome);
  try {
    const summary = await validateGgufFile(path);
    assertStructurallySound(bytes, summary.tensorCount, label);
    outcome.accepted++;
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.ok(error instanceof InvalidModelFileError, `${label}: threw ${error instanceof Error ? error.stack : String(error)}`);
    assert.match(error.message, /^fuzz-\d\.gguf: \S/, label);
    outcome.refused++;
  }
}

describe("validateGgufFile under fuzzing", () => {
  it(`refuses or soundly accepts ${CASES} mutated files (seed ${SEED})`, { timeout: Math.max(300_000, CASES * 30) }, async (context) => {
    const random = new Fuzzer(SEED);
    const tables = [mutations(sources[0], sources[1]), mutations(sources[1], sources[0])];
    const outcomes = new Map<string, { refused: number; accepted: number }>();
    const started = performance.now();
    // Cases are drawn one after another (so a seed always yields the same cases) and checked
    // a few at a time, so that one case's file I/O overlaps another's parsing.
    for (let first = 0; first < CASES; first += PARALLEL_CASES) {
      const batch: FuzzCase[] = [];
      for (let index = first; index < Math.min(CASES, first + PARALLEL_CASES); index++) batch.push(drawCase(index, random, tables));
      await Promise.all(batch.map((fuzzCase, slot) => checkCase(fuzzCase, join(directory, `fuzz-${slot}.gguf`), outcomes)));
    }
    const seconds = (performance.now() - started) / 1000;
    let refused = 0;
    for (const [name, outcome] of outcomes) {
      refused += outcome.refused;
      context.diagnostic(`${name}: ${outcome.refused} refused, ${outcome.accepted} accepted`);
    }
    context.diagnostic(`${CASES} cases in ${seconds.toFixed(1)} s, ${refused} refused`);
    // Most mutations break something; if nearly none are refused, the fuzzer lost its teeth.
    assert.ok(refused > CASES / 2, `only ${refused} of ${CASES} refused`);
  });
});
