import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidRequestError } from "../../core/errors.js";
import { float16BitsToFloat32 } from "../../gguf/float16.js";
import { GgufWriter } from "../../gguf/gguf-writer.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout } from "../../gguf/gguf-tensor-layout.js";
import { generateModel } from "../generate/generate-model.js";
import { mergeModels, type MergeModelsOptions } from "./merge-models.js";

let directory: string;
let a16: string; // test-tiny, seed 1, f16
let b16: string; // test-tiny, seed 2, f16
let a32: string; // test-tiny, seed 1, f32
let b32: string; // test-tiny, seed 2, f32

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-merge-"));
  a16 = (await generateModel({ preset: "test-tiny", seed: 1, dtype: "f16", outPath: join(directory, "a16.gguf") })).path;
  b16 = (await generateModel({ preset: "test-tiny", seed: 2, dtype: "f16", outPath: join(directory, "b16.gguf") })).path;
  a32 = (await generateModel({ preset: "test-tiny", seed: 1, dtype: "f32", outPath: join(directory, "a32.gguf") })).path;
  b32 = (await generateModel({ preset: "test-tiny", seed: 2, dtype: "f32", outPath: join(directory, "b32.gguf") })).path;
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Every tensor of a GGUF file (F32 or F16), decoded, by name. */
async function decodeTensors(path: string): Promise<Map<string, { type: string; shape: number[]; values: Float32Array }>> {
  const layout = ggufTensorLayout(await readGgufHeader(path));
  const bytes = await readFile(path);
  const tensors = new Map<string, { type: string; shape: number[]; values: Float32Array }>();
  for (const tensor of layout.tensors.values()) {
    const elements = tensor.shape.reduce((product, dim) => product * dim, 1);
    const values = new Float32Array(elements);
    for (let index = 0; index < elements; index++) {
      values[index] =
        tensor.type === "F32" ? bytes.readFloatLE(tensor.fileOffset + index * 4) : float16BitsToFloat32(bytes.readUInt16LE(tensor.fileOffset + index * 2));
    }
    tensors.set(tensor.name, { type: tensor.type, shape: tensor.shape, values });
  }
  return tensors;
}

async function assertSameTensors(actualPath: string, expectedPath: string): Promise<void> {
  const actual = await decodeTensors(actualPath);
  const expected = await decodeTensors(expectedPath);
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [name, tensor] of expected) {
    const other = actual.get(name)!;
    assert.equal(other.type, tensor.type, name);
    assert.deepEqual(other.shape, tensor.shape, name);
    assert.ok(
      other.values.every((value, index) => value === tensor.values[index]),
      `tensor '${name}' differs`,
    );
  }
}

let outputs = 0;
async function merge(options: Omit<MergeModelsOptions, "outPath">): Promise<string> {
  const outPath = join(directory, `out-${outputs++}.gguf`);
  await mergeModels({ ...options, outPath });
  return outPath;
}

describe("mergeModels", () => {
  it("linear 0.5/0.5 of a model with itself gives back its tensors exactly, and records the merge", async () => {
    const out = await merge({ inputs: [a16, a16], method: "linear", weights: [0.5, 0.5], name: "tiny-self" });
    await assertSameTensors(out, a16);
    const metadata = (await readGgufHeader(out)).metadata;
    assert.equal(metadata.get("general.name")?.value, "tiny-self");
    assert.equal(metadata.get("grove.merge.method")?.value, "linear");
    assert.deepEqual(metadata.get("grove.merge.weights")?.value, [0.5, 0.5]);
  });

  it("linear 1/0 of two models equals the first, and is deterministic", async () => {
    const out = await merge({ inputs: [a32, b32], method: "linear", weights: [1, 0] });
    await assertSameTensors(out, a32);
    const again = await merge({ inputs: [a32, b32], method: "linear", weights: [1, 0] });
    assert.ok((await readFile(out)).equals(await readFile(again)));
  });

  it("slerp of identical models gives the model; of different ones, a tensor between them", async () => {
    await assertSameTensors(await merge({ inputs: [a16, a16], method: "slerp" }), a16);
    const between = await decodeTensors(await merge({ inputs: [a32, b32], method: "slerp", weights: [0.5, 0.5] }));
    const [first, second] = [await decodeTensors(a32), await decodeTensors(b32)];
    const name = "blk.0.attn_q.weight";
    const values = between.get(name)!.values;
    assert.ok(values.some((value, index) => value !== first.get(name)!.values[index] && value !== second.get(name)!.values[index]));
  });

  it("task-arithmetic with zero weights gives the base", async () => {
    await assertSameTensors(await merge({ inputs: [a16, b16], method: "task-arithmetic", base: a16, weights: [0, 0] }), a16);
  });

  it("computes the weighted mean and base + Σ wᵢ(inputᵢ − base) on F32 tensors", async () => {
    const [first, second] = [await decodeTensors(a32), await decodeTensors(b32)];
    const mean = await decodeTensors(await merge({ inputs: [a32, b32], method: "linear", weights: [3, 1] }));
    const moved = await decodeTensors(await merge({ inputs: [b32], method: "task-arithmetic", base: a32, weights: [0.5] }));
    for (const [name, tensor] of first) {
      const other = second.get(name)!.values;
      tensor.values.forEach((value, index) => {
        assert.ok(Math.abs(mean.get(name)!.values[index] - (0.75 * value + 0.25 * other[index])) <= 1e-6, name);
        assert.ok(Math.abs(moved.get(name)!.values[index] - (value + 0.5 * (other[index] - value))) <= 1e-6, name);
      });
    }
  });

  it("refuses what it cannot merge, naming the reason", async () => {
    const small = (await generateModel({ preset: "small", seed: 3, dtype: "f16", outPath: join(directory, "small.gguf") })).path;
    const q8 = (await generateModel({ preset: "test-tiny", seed: 4, dtype: "q8_0", outPath: join(directory, "q8.gguf") })).path;
    const gpt2 = join(directory, "gpt2.gguf");
    await new GgufWriter().setString("general.architecture", "gpt2").addTensor("output_norm.weight", [64], "F32", new Float32Array(64)).write(gpt2);
    const partial = join(directory, "partial.gguf");
    await new GgufWriter().setString("general.architecture", "llama").addTensor("output_norm.weight", [64], "F32", new Float32Array(64)).write(partial);
    const cases: [Omit<MergeModelsOptions, "outPath">, RegExp][] = [
      [{ inputs: [a16, gpt2], method: "linear" }, /Different architectures: a16\.gguf is 'llama', gpt2\.gguf is 'gpt2'/],
      [{ inputs: [a16, partial], method: "linear" }, /Different tensor sets: partial\.gguf lacks 'token_embd\.weight', .* and \d+ more compared with a16\.gguf/],
      [{ inputs: [a16, small], method: "linear" }, /Shape mismatch in tensor '[^']+': \[\d+(, \d+)*\] in a16\.gguf, \[\d+(, \d+)*\] in small\.gguf/],
      [{ inputs: [a16, q8], method: "linear" }, /q8\.gguf: tensor '[^']+' is Q8_0;.*dequantization of Q types is not supported yet/],
      [{ inputs: [a16, b16, a16], method: "slerp" }, /slerp merges exactly 2 models, got 3/],
      [{ inputs: [a16, b16], method: "linear", weights: [1] }, /Got 1 weights for 2 input models/],
      [{ inputs: [a16, b16], method: "linear", weights: [1, Number.NaN] }, /must be finite numbers, got NaN/],
      [{ inputs: [a16, b16], method: "task-arithmetic" }, /task-arithmetic needs a base model/],
    ];
    for (const [options, pattern] of cases) {
      await assert.rejects(merge(options), (error: unknown) => {
        assert.ok(error instanceof InvalidRequestError, String(error));
        assert.match(error.message, pattern);
        return true;
      });
    }
  });
});
