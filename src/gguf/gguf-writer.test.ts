import assert from "node:assert/strict";
import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gguf } from "@huggingface/gguf";
import { digestOfFile } from "../store/file-digest.js";
import { float16BitsToFloat32 } from "./float16.js";
import { GgufWriter } from "./gguf-writer.js";
import { dequantizeQ8_0 } from "./quantize-q8-0.js";

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-gguf-writer-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function readTensorBytes(path: string, name: string, byteLength: number): Promise<Buffer> {
  const parsed = await gguf(path, { allowLocalFile: true });
  const info = parsed.tensorInfos.find((tensor) => tensor.name === name);
  assert.ok(info, `tensor ${name} is in the file`);
  const handle = await open(path, "r");
  try {
    const bytes = Buffer.alloc(byteLength);
    await handle.read(bytes, 0, byteLength, Number(parsed.tensorDataOffset + info.offset));
    return bytes;
  } finally {
    await handle.close();
  }
}

describe("GgufWriter", () => {
  it("round-trips every metadata type and the tensor infos", async () => {
    const path = join(directory, "metadata.gguf");
    const writer = new GgufWriter()
      .setValue("test.uint8", "uint8", 255)
      .setValue("test.int8", "int8", -128)
      .setValue("test.uint16", "uint16", 65535)
      .setValue("test.int16", "int16", -32768)
      .setValue("test.uint32", "uint32", 4294967295)
      .setValue("test.int32", "int32", -2147483648)
      .setValue("test.float32", "float32", 0.5)
      .setValue("test.bool", "bool", true)
      .setValue("test.string", "string", "héllo ✓ 日本")
      .setValue("test.uint64", "uint64", 2n ** 64n - 1n)
      .setValue("test.int64", "int64", -(2n ** 63n))
      .setValue("test.float64", "float64", Math.PI)
      .setArray("test.strings", "string", ["a", "", "ĠThe"])
      .setArray("test.int32s", "int32", [1, -2, 3])
      .setArray("test.float32s", "float32", [0.25, -1.5])
      .setArray("test.empty", "uint8", []);
    writer.addTensor("a.weight", [64, 3], "F32", new Float32Array(192).fill(2));
    writer.addTensor("b.weight", [32], "F16", new Float32Array(32).fill(-1));
    writer.addTensor("c.weight", [32, 2, 2], "Q8_0", new Float32Array(128).fill(0.5));
    const result = await writer.write(path);

    const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
    const typed = parsed.typedMetadata as unknown as Record<string, { value: unknown; type: number; subType?: number }>;
    assert.equal(parsed.metadata.version, 3);
    assert.equal(parsed.metadata.kv_count, 16n);
    assert.equal(parsed.metadata.tensor_count, 3n);
    const expected: [string, unknown, number][] = [
      ["test.uint8", 255, 0],
      ["test.int8", -128, 1],
      ["test.uint16", 65535, 2],
      ["test.int16", -32768, 3],
      ["test.uint32", 4294967295, 4],
      ["test.int32", -2147483648, 5],
      ["test.float32", 0.5, 6],
      ["test.bool", true, 7],
      ["test.string", "héllo ✓ 日本", 8],
      ["test.uint64", 2n ** 64n - 1n, 10],
      ["test.int64", -(2n ** 63n), 11],
      ["test.float64", Math.PI, 12],
    ];
    for (const [key, value, type] of expected) {
      assert.deepEqual([typed[key]?.value, typed[key]?.type], [value, type], key);
    }
    assert.deepEqual(typed["test.strings"], { value: ["a", "", "ĠThe"], type: 9, subType: 8 });
    assert.deepEqual(typed["test.int32s"], { value: [1, -2, 3], type: 9, subType: 5 });
    assert.deepEqual(typed["test.float32s"], { value: [0.25, -1.5], type: 9, subType: 6 });
    assert.deepEqual(typed["test.empty"], { value: [], type: 9, subType: 0 });
    assert.deepEqual(
      parsed.tensorInfos.map((info) => [info.name, info.shape.map(Number), info.dtype, Number(info.offset)]),
      [
        ["a.weight", [64, 3], 0, 0],
        ["b.weight", [32], 1, 768],
        ["c.weight", [32, 2, 2], 8, 832], // 64 bytes of F16, already aligned
      ],
    );
    assert.equal(Number(parsed.tensorDataOffset) % 32, 0);
    // Every tensor is padded to the alignment, the last one too (as gguf-py and ggml write).
    assert.equal(result.fileSize, Number(parsed.tensorDataOffset) + 832 + 160);
    assert.equal(result.digest, await digestOfFile(path));
    const floats = await readTensorBytes(path, "a.weight", 768);
    assert.deepEqual(new Float32Array(floats.buffer, floats.byteOffset, 192), new Float32Array(192).fill(2));
  });

  it("writes F16 edge cases bit-exactly", async () => {
    const path = join(directory, "f16.gguf");
    const values = [0, -0, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -14, 65504, 65520, 1e6, -Infinity, NaN, 0.1];
    const expected = [0x0000, 0x8000, 0x0001, 0x0000, 0x0002, 0x0400, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7e00, 0x2e66];
    const data = new Float32Array(32);
    data.set(values);
    await new GgufWriter().addTensor("edge", [32], "F16", data).write(path);
    const bytes = await readTensorBytes(path, "edge", 64);
    const halves = [...new Uint16Array(bytes.buffer, bytes.byteOffset, 32)].slice(0, values.length);
    assert.deepEqual(
      halves.map((half) => half.toString(16)),
      expected.map((half) => half.toString(16)),
    );
    assert.ok(Number.isNaN(float16BitsToFloat32(halves[10])));
  });

  it("writes Q8_0 blocks that dequantize within half a step", async () => {
    const path = join(directory, "q8.gguf");
    const elements = 32 * 64;
    const values = Float32Array.from({ length: elements }, (_, index) => Math.sin(index * 0.37) * (1 + (index % 97) / 10));
    values.fill(0, 64, 96); // an all-zero block: scale 0, no division by zero
    // Streamed through a fill callback, as generated models are.
    await new GgufWriter().addTensor("q", [64, 32], "Q8_0", (target, offset) => target.set(values.subarray(offset, offset + target.length))).write(path);
    const bytes = await readTensorBytes(path, "q", (elements / 32) * 34);
    const restored = new Float32Array(elements);
    dequantizeQ8_0(bytes, restored);
    for (let block = 0; block < elements / 32; block++) {
      const slice = values.subarray(block * 32, block * 32 + 32);
      const amax = Math.max(...slice.map(Math.abs));
      for (let index = 0; index < 32; index++) {
        const error = Math.abs(restored[block * 32 + index] - slice[index]);
        assert.ok(error <= amax / 127 / 2 + amax * 1e-3, `block ${block} index ${index}: error ${error}`);
      }
    }
    assert.deepEqual([...restored.subarray(64, 96)], new Array(32).fill(0));
  });

  it("honours general.alignment", async () => {
    const path = join(directory, "aligned.gguf");
    await new GgufWriter()
      .setUint32("general.alignment", 64)
      .addTensor("x", [3], "F32", new Float32Array(3))
      .addTensor("y", [5], "F32", new Float32Array(5).fill(7))
      .write(path);
    const parsed = await gguf(path, { allowLocalFile: true });
    assert.equal(Number(parsed.tensorDataOffset) % 64, 0);
    assert.deepEqual(
      parsed.tensorInfos.map((info) => Number(info.offset)),
      [0, 64],
    );
    const y = await readTensorBytes(path, "y", 20);
    assert.deepEqual([...new Float32Array(y.buffer, y.byteOffset, 5)], [7, 7, 7, 7, 7]);
  });

  it("leaves no file behind when writing fails, and keeps an existing file", async () => {
    const sub = await mkdtemp(join(directory, "failure-"));
    const path = join(sub, "model.gguf");
    await writeFile(path, "old contents");
    const writer = new GgufWriter().addTensor("bad", [32 * 1024 * 1024], "F16", (_target, offset) => {
      if (offset > 0) throw new Error("generator failed");
    });
    await assert.rejects(writer.write(path), /generator failed/);
    assert.deepEqual(await readdir(sub), ["model.gguf"]);
    assert.equal(await readFile(path, "utf8"), "old contents");
    const verified = new GgufWriter().addTensor("x", [1], "F32", new Float32Array(1));
    await assert.rejects(verified.write(path, { verify: async () => Promise.reject(new Error("rejected")) }), /rejected/);
    assert.deepEqual(await readdir(sub), ["model.gguf"]);
  });

  it("rejects invalid declarations", () => {
    const writer = new GgufWriter();
    assert.throws(() => writer.setValue("k", "uint8", 256), RangeError);
    assert.throws(() => writer.setValue("k", "int32", 1.5), RangeError);
    assert.throws(() => writer.setValue("k", "string", 3), RangeError);
    assert.throws(() => writer.setValue("", "bool", true), RangeError);
    assert.throws(() => writer.addTensor("t", [33], "Q8_0", new Float32Array(33)), RangeError);
    assert.throws(() => writer.addTensor("t", [0], "F32", new Float32Array(0)), RangeError);
    assert.throws(() => writer.addTensor("t", [4], "F32", new Float32Array(3)), RangeError);
    assert.throws(() => writer.addTensor("x".repeat(64), [1], "F32", new Float32Array(1)), RangeError);
    writer.addTensor("t", [1], "F32", new Float32Array(1));
    assert.throws(() => writer.addTensor("t", [1], "F32", new Float32Array(1)), /Duplicate/);
  });
});
