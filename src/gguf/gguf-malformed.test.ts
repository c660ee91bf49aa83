import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { InvalidModelFileError } from "../core/errors.js";
import { GGUF_HEADER_LIMITS } from "./gguf-header-reader.js";
import {
  rawPreamble,
  rawString,
  rawTensorInfo,
  rawUint32,
  rawUint32Entry,
  rawUint64,
  walkGguf,
  writeTinyLlama,
} from "../test-support/gguf-test-fixtures.js";
import { validateGgufFile } from "./gguf-validator.js";

// Hostile files are padded with zeros to this size, so that a refusal is never just "too small".
const HOSTILE_BYTES = 1024 * 1024;
const UINT64_MAX = 2n ** 64n - 1n;

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-gguf-malformed-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Writes `parts`, zero-padded to `size` bytes (a sparse file when large). */
async function writeHostile(name: string, parts: Buffer[], size = HOSTILE_BYTES): Promise<string> {
  const path = join(directory, name);
  const bytes = Buffer.concat(parts);
  await writeFile(path, bytes);
  if (size > bytes.length) await truncate(path, size);
  return path;
}

async function assertRefused(path: string, pattern: RegExp): Promise<InvalidModelFileError> {
  let refusal: InvalidModelFileError | undefined;
  await assert.rejects(validateGgufFile(path), (error: unknown) => {
    assert.ok(error instanceof InvalidModelFileError, `expected InvalidModelFileError, got ${String(error)}`);
    assert.match(error.message, pattern);
    refusal = error;
    return true;
  });
  return refusal as InvalidModelFileError;
}

/** A file with `metadata` entries and one tensor described by `tensor`, then its data. */
function oneTensor(tensor: Buffer, metadata: Buffer[] = []): Buffer[] {
  return [rawPreamble(1, metadata.length), ...metadata, tensor];
}

/** Hostile headers, each with what the refusal must say. */
const HOSTILE_CASES: [string, Buffer[], RegExp][] = [
  ["metadata count 2^64-1", [rawPreamble(0, UINT64_MAX)], /declares 18446744073709551615 metadata keys; Grove accepts at most 65536/],
  ["tensor count 2^64-1", [rawPreamble(UINT64_MAX, 0)], /declares 18446744073709551615 tensors; Grove accepts at most 1048576/],
  ["metadata count just above the cap", [rawPreamble(0, GGUF_HEADER_LIMITS.maxMetadataCount + 1)], /declares 65537 metadata keys; Grove accepts/],
  ["tensor count just above the cap", [rawPreamble(GGUF_HEADER_LIMITS.maxTensorCount + 1, 0)], /declares 1048577 tensors; Grove accepts/],
  ["tensor count at the cap, more than the file holds", [rawPreamble(GGUF_HEADER_LIMITS.maxTensorCount, 0)], /truncated or corrupt: it declares 0 metadata keys and 1048576 tensors, which need at least 34603008 bytes/],
  ["key length 2^64-1", [rawPreamble(0, 1), rawUint64(UINT64_MAX)], /the key of metadata entry 0 is a string of 18446744073709551615 bytes, but only 1048544 bytes are left/],
  ["key longer than the cap", [rawPreamble(0, 1), rawString("k".repeat(70_000))], /the key of metadata entry 0 is a string of 70000 bytes; Grove accepts at most 65536/],
  ["string value of 2^40 bytes", [rawPreamble(0, 1), rawString("a"), rawUint32(8), rawUint64(2n ** 40n)], /the value of metadata key 'a' is a string of 1099511627776 bytes, but only/],
  ["u32 array of 2^62 items", [rawPreamble(0, 1), rawString("a"), rawUint32(9), rawUint32(4), rawUint64(2n ** 62n)], /metadata key 'a' declares 4611686018427387904 u32 items, more than the \d+ bytes left/],
  ["string array of 2^64-1 items", [rawPreamble(0, 1), rawString("a"), rawUint32(9), rawUint32(8), rawUint64(UINT64_MAX)], /declares 18446744073709551615 str items, more than/],
  ["string array longer than the file", [rawPreamble(0, 1), rawString("a"), rawUint32(9), rawUint32(8), rawUint64(HOSTILE_BYTES / 8)], /declares 131072 str items, more than the \d+ bytes left/],
  ["unknown value type 13", [rawPreamble(0, 1), rawString("a"), rawUint32(13)], /metadata key 'a' has unknown value type 13/],
  ["unknown value type 2^32-1", [rawPreamble(0, 1), rawString("a"), rawUint32(0xffffffff)], /metadata key 'a' has unknown value type 4294967295/],
  ["array of unknown item type", [rawPreamble(0, 1), rawString("a"), rawUint32(9), rawUint32(13), rawUint64(1)], /metadata key 'a' is an array of unknown value type 13/],
  ["nested array", [rawPreamble(0, 1), rawString("a"), rawUint32(9), rawUint32(9), rawUint64(1)], /metadata key 'a' is a nested array/],
  ["duplicate metadata key", [rawPreamble(0, 2), rawUint32Entry("general.x", 1), rawUint32Entry("general.x", 2)], /has the metadata key 'general\.x' twice \(entries 0 and 1\)/],
  ["empty metadata key", [rawPreamble(0, 1), rawUint32Entry("", 1)], /metadata entry 0 has an empty key/],
  ["key that is not UTF-8", [rawPreamble(0, 1), rawString(Buffer.from([0x61, 0xff])), rawUint32(4), rawUint32(1)], /metadata entry 0 has a key that is not valid UTF-8/],
  ["alignment 0", oneTensor(rawTensorInfo("t", [32], 0, 0), [rawUint32Entry("general.alignment", 0)]), /general\.alignment 0 is not a power of two/],
  ["alignment 48", oneTensor(rawTensorInfo("t", [32], 0, 0), [rawUint32Entry("general.alignment", 48)]), /general\.alignment 48 is not a power of two/],
  ["alignment as a string", oneTensor(rawTensorInfo("t", [32], 0, 0), [Buffer.concat([rawString("general.alignment"), rawUint32(8), rawString("32")])]), /'general\.alignment' has type str, expected u32/],
  ["unknown ggml type 4", oneTensor(rawTensorInfo("t", [32], 4, 0)), /tensor t has unknown ggml type 4/],
  ["unknown ggml type 2^32-1", oneTensor(rawTensorInfo("t", [32], 0xffffffff, 0)), /tensor t has unknown ggml type 4294967295/],
  ["offset past the end", oneTensor(rawTensorInfo("t", [32], 0, 2n ** 40n)), /tensor t \(128 bytes at offset 1099511627776\) ends at byte \d+ beyond the file size 1048576/],
  ["offset 2^64-1", oneTensor(rawTensorInfo("t", [32], 0, UINT64_MAX)), /tensor t .* beyond the file size/],
  ["data past the end", oneTensor(rawTensorInfo("t", [1024, 1024], 0, 0)), /tensor t \(4194304 bytes at offset 0\) ends at byte \d+ beyond the file size/],
  ["misaligned offset", [rawPreamble(2, 0), rawTensorInfo("t", [32], 0, 0), rawTensorInfo("u", [32], 0, 136)], /tensor u has offset 136, not a multiple of the alignment 32/],
  ["tensors out of order", [rawPreamble(2, 0), rawTensorInfo("t", [32], 0, 0), rawTensorInfo("u", [32], 0, 256)], /tensor u has offset 256, expected 128/],
  ["duplicate tensor name", [rawPreamble(2, 0), rawTensorInfo("t", [32], 0, 0), rawTensorInfo("t", [32], 0, 128)], /tensor t appears twice/],
  ["tensor name over 63 bytes", oneTensor(rawTensorInfo("n".repeat(64), [32], 0, 0)), /names must be 1 to 63 bytes/],
  ["dimension of 0", oneTensor(rawTensorInfo("t", [32, 0], 0, 0)), /tensor t has a dimension of 0 \[32, 0\]/],
  ["element count overflowing int64", oneTensor(rawTensorInfo("t", [2n ** 32n, 2n ** 32n], 0, 0)), /tensor t has shape \[4294967296, 4294967296\]: 18446744073709551616 elements overflow int64/],
  ["dimension of 2^64-1", oneTensor(rawTensorInfo("t", [UINT64_MAX], 0, 0)), /elements overflow int64/],
  ["5 dimensions", oneTensor(rawTensorInfo("t", [32, 1, 1, 1, 1], 0, 0)), /tensor t has 5 dimensions \(1 to 4 allowed\)/],
  ["2^32-1 dimensions", oneTensor(rawTensorInfo("t", [], 0, 0, 0xffffffff)), /tensor t has 4294967295 dimensions/],
  ["0 dimensions", oneTensor(rawTensorInfo("t", [], 0, 0)), /tensor t has 0 dimensions/],
  ["row not a multiple of the block", oneTensor(rawTensorInfo("t", [33], 8, 0)), /tensor t of type Q8_0 has 33 elements per row, not a multiple of its block size 32/],
  ["version 1", [rawPreamble(0, 0, 1)], /has GGUF version 1; llama\.cpp reads versions 2 and 3/],
  ["big-endian", [Buffer.from("GGUF"), Buffer.from([0, 0, 0, 3])], /is big-endian/],
];

describe("malformed GGUF files", () => {
  for (const [name, parts, pattern] of HOSTILE_CASES) {
    it(`refuses: ${name}`, async () => {
      const path = await writeHostile(`${name.replace(/\W+/g, "-")}.gguf`, parts);
      const refusal = await assertRefused(path, pattern);
      assert.match(refusal.message, /^[\w-]+\.gguf: /);
    });
  }

  it("refuses strings and arrays over Grove's caps even when the file holds them", async () => {
    const string = GGUF_HEADER_LIMITS.maxStringBytes + 1;
    const long = await writeHostile("long-string.gguf", [rawPreamble(0, 1), rawString("a"), rawUint32(8), rawUint64(string)], string + 64);
    await assertRefused(long, /the value of metadata key 'a' is a string of 67108865 bytes; Grove accepts at most 67108864/);
    const items = GGUF_HEADER_LIMITS.maxArrayLength + 1;
    const array = await writeHostile("long-array.gguf", [rawPreamble(0, 1), rawString("a"), rawUint32(9), rawUint32(0), rawUint64(items)], items + 64);
    await assertRefused(array, /metadata key 'a' declares 16777217 u8 items; Grove accepts at most 16777216/);
  });

  it("refuses a file cut at every structural boundary", async () => {
    const source = await writeTinyLlama(directory, "whole.gguf");
    const bytes = await readFile(source);
    const walked = walkGguf(bytes);
    const cuts = new Set<number>();
    for (const field of walked.fields) cuts.add(field.offset).add(field.offset + field.size).add(field.offset + 1);
    for (const boundary of walked.boundaries) cuts.add(boundary - 1).add(boundary).add(boundary + 1);
    const path = join(directory, "cut.gguf");
    let tried = 0;
    for (const cut of [...cuts].filter((size) => size > 0 && size < bytes.length).sort((a, b) => a - b)) {
      await writeFile(path, bytes.subarray(0, cut));
      await assertRefused(path, /^cut\.gguf: (is truncated|tensor \S+ \(\d+ bytes at offset \d+\) ends at byte \d+ beyond the file size)/);
      tried++;
    }
    assert.ok(tried > 150, `${tried} cuts`);
  });

  it("refuses 1 MB hostile files in milliseconds without allocating their declared sizes", async () => {
    const paths: string[] = [];
    for (const [index, [, parts]] of HOSTILE_CASES.entries()) paths.push(await writeHostile(`timed-${index}.gguf`, parts));
    const buffersBefore = process.memoryUsage().arrayBuffers;
    let slowest = 0;
    let peak = 0;
    const started = performance.now();
    for (const path of paths) {
      const begin = performance.now();
      await validateGgufFile(path).then(
        () => assert.fail(`${path} was accepted`),
        (error: unknown) => assert.ok(error instanceof InvalidModelFileError),
      );
      slowest = Math.max(slowest, performance.now() - begin);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - buffersBefore);
    }
    const total = performance.now() - started;
    // Generous bounds for a loaded CI machine; typical is well under 1 ms a file and 64 KiB.
    assert.ok(slowest < 250, `slowest refusal took ${slowest.toFixed(1)} ms`);
    assert.ok(total < 2000, `${paths.length} refusals took ${total.toFixed(0)} ms`);
    assert.ok(peak < 32 * 1024 * 1024, `buffers grew by ${peak} bytes`);
  });

  it("never reaches node-llama-cpp or a third-party parser while validating", async () => {
    const folder = fileURLToPath(new URL(".", import.meta.url));
    for (const name of await readdir(folder)) {
      if (!name.endsWith(".js") || name.endsWith(".test.js")) continue;
      const source = await readFile(join(folder, name), "utf8");
      assert.doesNotMatch(source, /from "(node-llama-cpp|@huggingface\/gguf)"/, `${name} imports a native or third-party GGUF reader`);
    }
  });
});
