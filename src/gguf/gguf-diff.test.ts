import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidModelFileError } from "../core/errors.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { diffGgufFiles, type GgufDiff } from "./gguf-diff.js";
import { TINY_TOKENS, writeTinyLlama } from "../test-support/gguf-test-fixtures.js";

let directory: string;
const files = { seed1: "", seed2: "", seed1Q8: "", seed1Copy: "" };
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-gguf-diff-"));
  const generate = async (seed: number, dtype: "f16" | "q8_0", name: string): Promise<string> =>
    (await generateModel({ preset: "test-tiny", seed, dtype, outPath: join(directory, name) })).path;
  files.seed1 = await generate(1, "f16", "s1.gguf");
  files.seed2 = await generate(2, "f16", "s2.gguf");
  files.seed1Q8 = await generate(1, "q8_0", "s1-q8.gguf");
  files.seed1Copy = join(directory, "s1-copy.gguf");
  await copyFile(files.seed1, files.seed1Copy);
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

const NORM = /_norm\.weight$/;

function statuses(diff: GgufDiff): Record<string, string[]> {
  const byStatus: Record<string, string[]> = {};
  for (const tensor of diff.tensors) (byStatus[tensor.status] ??= []).push(tensor.name);
  return byStatus;
}

describe("diffGgufFiles", () => {
  it("finds every weight matrix changed between two seeds of one preset, by data", async () => {
    const diff = await diffGgufFiles(files.seed1, files.seed2);
    assert.equal(diff.identical, false);
    assert.deepEqual(
      diff.metadata.map((entry) => [entry.status, entry.key, entry.a?.value, entry.b?.value]),
      [
        ["changed", "general.name", "grove-test-tiny-s1", "grove-test-tiny-s2"],
        ["changed", "grove.generator.seed", "1", "2"],
      ],
    );
    assert.equal(diff.tensors.length, 21);
    // Norms start at 1 whatever the seed; every other tensor holds seeded random weights.
    for (const tensor of diff.tensors) {
      assert.deepEqual(tensor.shapeA, tensor.shapeB);
      assert.equal(tensor.typeA, tensor.typeB);
      assert.match(tensor.digestA ?? "", /^[0-9a-f]{64}$/);
      if (NORM.test(tensor.name)) {
        assert.equal(tensor.status, "same", tensor.name);
        assert.equal(tensor.digestA, tensor.digestB);
      } else {
        assert.equal(tensor.status, "changed", tensor.name);
        assert.deepEqual(tensor.changes, ["data"]);
        assert.notEqual(tensor.digestA, tensor.digestB);
      }
    }
    assert.deepEqual(diff.tensorCounts, { same: 5, changed: 16, "only-in-a": 0, "only-in-b": 0 });
  });

  it("reports type changes between F16 and Q8_0 of the same seed without hashing them", async () => {
    const diff = await diffGgufFiles(files.seed1, files.seed1Q8);
    assert.deepEqual(
      diff.metadata.map((entry) => [entry.status, entry.key, entry.a?.value, entry.b?.value]),
      [
        ["changed", "general.file_type", 1, 7],
        ["added", "general.quantization_version", undefined, 2],
      ],
    );
    for (const tensor of diff.tensors) {
      if (NORM.test(tensor.name)) {
        assert.deepEqual([tensor.status, tensor.typeA, tensor.typeB], ["same", "F32", "F32"], tensor.name);
      } else {
        assert.deepEqual([tensor.status, tensor.changes, tensor.typeA, tensor.typeB], ["changed", ["type"], "F16", "Q8_0"], tensor.name);
        assert.equal(tensor.digestA, undefined);
      }
    }
    assert.deepEqual(diff.tensorCounts, { same: 5, changed: 16, "only-in-a": 0, "only-in-b": 0 });
  });

  it("finds identical files identical", async () => {
    let hashed = 0;
    const diff = await diffGgufFiles(files.seed1, files.seed1Copy, { onProgress: (done) => (hashed = done) });
    assert.equal(diff.identical, true);
    assert.deepEqual(diff.metadata, []);
    assert.deepEqual(statuses(diff), { same: diff.tensors.map((tensor) => tensor.name) });
    // Both files' tensor data: 163,840 F16 weights and 320 F32 norm values each.
    assert.equal(hashed, 2 * (163_840 * 2 + 320 * 4));
  });

  it("reports tensors and keys present on one side only, shape changes and array changes", async () => {
    const a = await writeTinyLlama(directory, "tiny-a.gguf", { omitTensors: ["blk.0.ffn_up.weight"] });
    const tokens = [...TINY_TOKENS.slice(0, -1), "z"];
    const b = await writeTinyLlama(directory, "tiny-b.gguf", {
      omit: ["general.name"],
      tokens,
      shapes: { "blk.0.attn_q.weight": [32, 64] },
    });
    const diff = await diffGgufFiles(a, b);
    const tokenRow = diff.metadata.find((entry) => entry.key === "tokenizer.ggml.tokens");
    assert.equal(tokenRow?.status, "changed");
    assert.deepEqual([tokenRow?.a?.length, tokenRow?.b?.length], [8, 8]);
    assert.notEqual(tokenRow?.a?.digest, tokenRow?.b?.digest);
    assert.deepEqual(diff.metadata.find((entry) => entry.key === "general.name")?.status, "removed");
    const byName = new Map(diff.tensors.map((tensor) => [tensor.name, tensor]));
    assert.deepEqual(byName.get("blk.0.attn_q.weight")?.changes, ["shape"]);
    assert.deepEqual(byName.get("blk.0.attn_q.weight")?.shapeB, [32, 64]);
    assert.equal(byName.get("blk.0.ffn_up.weight")?.status, "only-in-b");
    assert.equal(diff.tensors.at(-1)?.name, "blk.0.ffn_up.weight");
    assert.equal(diff.tensorCounts["only-in-b"], 1);
    assert.equal(byName.get("output_norm.weight")?.status, "same");
  });

  it("refuses files that are missing or not GGUF", async () => {
    const text = join(directory, "notes.txt");
    await writeFile(text, "not a model");
    await assert.rejects(diffGgufFiles(files.seed1, text), (error: unknown) => error instanceof InvalidModelFileError && /notes\.txt: is not a GGUF file/.test(error.message));
    await assert.rejects(diffGgufFiles(join(directory, "missing.gguf"), files.seed1), InvalidModelFileError);
  });
});
