import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidModelFileError, InvalidRequestError } from "../core/errors.js";
import { generateAdapter, type GenerateAdapterResult } from "../forge/generate/generate-adapter.js";
import { generateModel, type GenerateModelResult } from "../forge/generate/generate-model.js";
import { GgufWriter } from "../gguf/gguf-writer.js";
import { validateGgufFile } from "../gguf/gguf-validator.js";
import { checkAdapter } from "./adapter-check.js";
import { ModelStore } from "./model-store.js";

let directory: string;
let count = 0;
/** Bases: test-tiny seed 1, test-tiny seed 2 (same shapes), small seed 1 (other shapes). */
const bases = {} as Record<"tiny" | "tinyOther" | "small", GenerateModelResult>;
/** An adapter of `tiny` (pinned to its digest) and one with no recorded base digest. */
const adapters = {} as Record<"pinned" | "unpinned", GenerateAdapterResult>;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-adapter-"));
  bases.tiny = await generateModel({ preset: "test-tiny", seed: 1, outPath: join(directory, "tiny.gguf") });
  bases.tinyOther = await generateModel({ preset: "test-tiny", seed: 2, outPath: join(directory, "tiny-other.gguf") });
  bases.small = await generateModel({ preset: "small", seed: 1, outPath: join(directory, "small.gguf") });
  adapters.pinned = await generateAdapter({ basePath: bases.tiny.path, seed: 3, outPath: join(directory, "tiny-lora.gguf") });
  adapters.unpinned = await generateAdapter({ basePath: bases.tiny.path, seed: 3, rank: 2, recordBaseDigest: false, outPath: join(directory, "tiny-lora-any.gguf") });
});
after(() => rm(directory, { recursive: true, force: true }));

async function openStore(): Promise<ModelStore> {
  return ModelStore.open(join(directory, `home-${++count}`));
}

/** What a refused import must leave alone: models, names, edges, blobs and temp files. */
async function snapshot(store: ModelStore) {
  return {
    models: await store.list(),
    edges: await store.registry.listEdges(),
    blobs: (await readdir(store.blobs.blobsDirectory)).sort(),
    temp: (await readdir(store.blobs.tempDirectory)).sort(),
  };
}

describe("generateAdapter", () => {
  it("writes a LoRA GGUF the validator accepts as an adapter, deterministically", async () => {
    assert.equal(adapters.pinned.pairs, 4); // attn_q and attn_v of 2 blocks
    assert.equal(adapters.pinned.rank, 4);
    assert.equal(adapters.pinned.baseDigest, bases.tiny.digest);
    const summary = await validateGgufFile(adapters.pinned.path);
    assert.equal(summary.adapterType, "lora");
    assert.equal(summary.architecture, "llama");
    assert.equal(summary.vocabularySize, 0);
    assert.equal(summary.parameterCount, adapters.pinned.parameterCount);
    const again = await generateAdapter({ basePath: bases.tiny.path, seed: 3, outPath: join(directory, "tiny-lora-again.gguf") });
    assert.equal(again.digest, adapters.pinned.digest);
    const strong = await generateAdapter({ basePath: bases.tiny.path, seed: 3, strong: true, outPath: join(directory, "tiny-lora-strong.gguf") });
    assert.equal(strong.pairs, 14); // every linear layer of 2 blocks
  });
});

describe("checkAdapter", () => {
  it("accepts the base it was made for and reports rank, alpha and pairs", async () => {
    const result = await checkAdapter(adapters.pinned.path, { path: bases.tiny.path, digest: bases.tiny.digest });
    assert.deepEqual(result, { architecture: "llama", alpha: 4, rank: 4, pairs: 4, recordedBaseDigest: bases.tiny.digest });
  });

  it("names the tensor and both shapes when the base has other shapes", async () => {
    await assert.rejects(
      checkAdapter(adapters.unpinned.path, { path: bases.small.path, digest: bases.small.digest, label: "small:f16" }),
      (error: unknown) =>
        error instanceof InvalidRequestError &&
        error.param === "base" &&
        /^The adapter tiny-lora-any\.gguf does not fit the base small:f16: tensor "blk\.0\.attn_q\.weight" has shapes base \[256, 256\], lora_a \[64, 2\], lora_b \[2, 64\]; expected lora_a \[256, r\] and lora_b \[r, 256\]$/.test(error.message),
    );
  });

  it("refuses a base other than the recorded one, even with the same shapes", async () => {
    await assert.rejects(
      checkAdapter(adapters.pinned.path, { path: bases.tinyOther.path, digest: bases.tinyOther.digest }),
      (error: unknown) => error instanceof InvalidRequestError && error.message.includes(`the adapter was made for ${bases.tiny.digest}`),
    );
    // Without a recorded digest, any base of the same shapes fits.
    assert.equal((await checkAdapter(adapters.unpinned.path, { path: bases.tinyOther.path, digest: bases.tinyOther.digest })).pairs, 4);
  });

  it("refuses a model file as an adapter, and an adapter as a base", async () => {
    await assert.rejects(checkAdapter(bases.tinyOther.path, { path: bases.tiny.path, digest: bases.tiny.digest }), (error: unknown) => error instanceof InvalidRequestError && error.param === "relation");
    await assert.rejects(checkAdapter(adapters.unpinned.path, { path: adapters.pinned.path, digest: adapters.pinned.digest }), /the base is itself an adapter/);
  });

  it("refuses unpaired and foreign tensors, as llama.cpp would", async () => {
    const write = async (name: string, tensors: [string, number[]][]) => {
      const writer = new GgufWriter().setString("general.architecture", "llama").setString("general.type", "adapter").setString("adapter.type", "lora");
      for (const [tensor, shape] of tensors) writer.addTensor(tensor, shape, "F32", new Float32Array(shape.reduce((a, b) => a * b, 1)));
      return (await writer.write(join(directory, name))).path;
    };
    const base = { path: bases.tiny.path, digest: bases.tiny.digest };
    const unpaired = await write("unpaired.gguf", [["blk.0.attn_q.weight.lora_a", [64, 2]]]);
    await assert.rejects(checkAdapter(unpaired, base), (error: unknown) => error instanceof InvalidModelFileError && /lora_a without its lora_b/.test(error.message));
    const foreign = await write("foreign.gguf", [["blk.0.attn_q.weight", [64, 64]]]);
    await assert.rejects(checkAdapter(foreign, base), /neither a \.lora_a nor a \.lora_b/);
    const missing = await write("missing.gguf", [["blk.9.attn_q.weight.lora_a", [64, 2]], ["blk.9.attn_q.weight.lora_b", [2, 64]]]);
    await assert.rejects(checkAdapter(missing, base), /tensor "blk\.9\.attn_q\.weight" does not exist in the base/);
    const untyped = (await new GgufWriter().setString("general.architecture", "llama").setString("general.type", "adapter").write(join(directory, "untyped.gguf"))).path;
    await assert.rejects(validateGgufFile(untyped), (error: unknown) => error instanceof InvalidModelFileError && /adapter\.type' is missing/.test(error.message));
    const ranks = await write("ranks.gguf", [["blk.0.attn_q.weight.lora_a", [64, 2]], ["blk.0.attn_q.weight.lora_b", [3, 64]]]);
    await assert.rejects(checkAdapter(ranks, base), /their ranks differ/);
  });
});

describe("importing an adapter", () => {
  it("records an adapter fork of its base, with a recipe, implying the relation", async () => {
    const store = await openStore();
    try {
      await store.importFile(bases.tiny.path, { name: "tiny:f16" });
      const result = await store.importFile(adapters.pinned.path, { name: "tiny:lora", base: "tiny:f16" });
      assert.equal(result.model.size, adapters.pinned.fileSize);
      assert.equal(result.model.architecture, "llama");
      assert.equal(result.parents.length, 1);
      assert.equal(result.parents[0]!.parent, bases.tiny.digest);
      assert.equal(result.parents[0]!.relation, "adapter");
      assert.equal(result.parents[0]!.recipe?.tool, "grove import");
      assert.deepEqual(result.parents[0]!.recipe?.inputs, [bases.tiny.digest]);
      assert.deepEqual(result.parents[0]!.recipe?.parameters, { adapterType: "lora", rank: 4, alpha: 4, pairs: 4 });
      const [tree] = await store.tree("tiny:lora");
      assert.equal(tree!.digest, bases.tiny.digest);
      assert.deepEqual(tree!.children.map((child) => [child.digest, child.relation, child.size]), [[adapters.pinned.digest, "adapter", adapters.pinned.fileSize]]);
    } finally {
      await store.close();
    }
  });

  it("refuses an adapter for another base, writing nothing", async () => {
    const store = await openStore();
    try {
      await store.importFile(bases.small.path, { name: "small:f16" });
      await store.importFile(bases.tinyOther.path, { name: "other:f16" });
      const before = await snapshot(store);
      await assert.rejects(store.importFile(adapters.unpinned.path, { name: "small:lora", base: "small:f16" }), /does not fit the base small:f16: tensor "blk\.0\.attn_q\.weight" has shapes/);
      await assert.rejects(store.importFile(adapters.pinned.path, { name: "other:lora", base: "other:f16", relation: "adapter" }), /the adapter was made for/);
      assert.deepEqual(await snapshot(store), before);
    } finally {
      await store.close();
    }
  });

  it("refuses an adapter without a base, or with another relation, and a model as an adapter", async () => {
    const store = await openStore();
    try {
      await store.importFile(bases.tiny.path, { name: "tiny:f16" });
      const before = await snapshot(store);
      await assert.rejects(store.importFile(adapters.pinned.path, { name: "tiny:lora" }), (error: unknown) => error instanceof InvalidRequestError && /is a LoRA adapter, not a model: import it with the base it adapts/.test(error.message));
      await assert.rejects(store.importFile(adapters.pinned.path, { base: "tiny:f16", relation: "finetune" }), /its relation to the base must be 'adapter', not 'finetune'/);
      await assert.rejects(store.importFile(bases.tinyOther.path, { base: "tiny:f16", relation: "adapter" }), /tiny-other\.gguf is not an adapter/);
      assert.deepEqual(await snapshot(store), before);
    } finally {
      await store.close();
    }
  });
});
