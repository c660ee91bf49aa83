import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ResultStore, type ResultRecord } from "../results/result-store.js";
import type { Digest } from "../core/digest.js";
import { DigestMismatchError, InvalidRequestError, NotFoundError } from "../core/errors.js";
import { generateModel, type GenerateModelResult } from "../forge/generate/generate-model.js";
import { quantizeFork } from "../forge/quantize/quantize-fork.js";
import { ensureDefaultModel, DEFAULT_MODEL } from "../services.js";
import { ModelStore, type TreeNode } from "../store/model-store.js";
import type { Recipe } from "../store/registry.js";
import { importShippedFamily } from "./embedded.js";
import { exportFamily, type DemoManifest } from "./ship.js";

let directory: string;
let count = 0;
/** The store the family is exported from: init → (finetune) base → (quantized) q8_0. */
let source: ModelStore;
let init: GenerateModelResult;
let base: GenerateModelResult;
let quantized: Digest;
let quantizeRecipe: Recipe;
/** The exported family (base, q8_0), untouched by the tests. */
let shipped: string;
const results: ResultRecord[] = [];

function result(modelDigest: Digest, task: string, value: number): ResultRecord {
  return {
    modelDigest,
    kind: "quality",
    task,
    taskDigest: `sha256:${"7".repeat(64)}`,
    settings: { contextSize: 128, threads: 1 },
    engineVersion: "test-engine 1",
    metrics: { perplexity: value, bitsPerByte: null },
    flags: [],
    details: { windows: 3 },
    createdAt: "2025-01-02T03:04:05.000Z",
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-demo-ship-"));
  init = await generateModel({ preset: "test-tiny", seed: 5, dtype: "f16", outPath: join(directory, "init.gguf") });
  base = await generateModel({ preset: "test-tiny", seed: 1, dtype: "f16", outPath: join(directory, "base.gguf") });
  source = await openStore();
  await source.importFile(init.path, { name: "demo-t:init" });
  const trainRecipe: Recipe = { tool: "grove-forge finetune", toolVersion: "0.1.0", parameters: { epochs: 1 }, inputs: [init.digest] };
  await source.importFile(base.path, { name: "demo-t:base", base: "demo-t:init", relation: "finetune", recipe: trainRecipe, license: "mit" });
  const fork = await quantizeFork(source, { model: "demo-t:base", type: "Q8_0", name: "demo-t:q8_0", threads: 1 });
  quantized = fork.import.model.digest;
  quantizeRecipe = fork.import.parents[0]!.recipe!;
  results.push(result(base.digest, "perplexity", 40.5), result(quantized, "perplexity", 41.25), result(init.digest, "perplexity", 500));
  const store = await ResultStore.open(source.home);
  for (const row of results) await store.put(row);
  await store.close();
  shipped = join(directory, "shipped");
  const sourceResults = await ResultStore.open(source.home);
  await exportFamily(source, sourceResults, {
    names: ["demo-t:base", "demo-t:q8_0"],
    outDir: shipped,
    defaultName: "demo-t:q8_0",
    roots: { "demo-t:base": { card: { description: "the demo base" } } },
  });
  await sourceResults.close();
});
after(async () => {
  await source?.close();
  await rm(directory, { recursive: true, force: true });
});

async function openStore(): Promise<ModelStore> {
  return ModelStore.open(join(directory, `home-${++count}`));
}

/** `names relation quantization` lines, indented by depth. */
function render(nodes: TreeNode[], depth = 0): string[] {
  return nodes.flatMap((node) => [`${"  ".repeat(depth)}${node.names.join(",")} ${node.relation ?? "root"} ${node.quantization}`, ...render(node.children, depth + 1)]);
}

async function resultsOf(home: string): Promise<ResultRecord[]> {
  const store = await ResultStore.open(home);
  try {
    return (await store.list()).sort((a, b) => a.modelDigest.localeCompare(b.modelDigest));
  } finally {
    await store.close();
  }
}

/** Runs `fn` with the results of `store`'s home open (as the composition root hands them in). */
async function withResultsOf<T>(store: ModelStore, fn: (results: ResultStore) => Promise<T>): Promise<T> {
  const results = await ResultStore.open(store.home);
  try {
    return await fn(results);
  } finally {
    await results.close();
  }
}

async function readManifest(dir: string): Promise<DemoManifest> {
  return JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as DemoManifest;
}

/** A copy of the shipped family to damage. */
async function copyShipped(): Promise<string> {
  const copy = join(directory, `copy-${++count}`);
  await cp(shipped, copy, { recursive: true });
  return copy;
}

describe("exportFamily", () => {
  it("writes one file per model and a manifest, parents first, with lineage, recipe, card and results", async () => {
    assert.deepEqual((await readdir(shipped)).sort(), ["demo-t-base.gguf", "demo-t-q8_0.gguf", "manifest.json"]);
    const manifest = await readManifest(shipped);
    assert.equal(manifest.grove_demo, 1);
    assert.equal(manifest.default, "demo-t:q8_0");
    const [root, fork] = manifest.models;
    assert.deepEqual(
      { name: root.name, file: root.file, digest: root.digest, bytes: root.bytes, relation: root.relation, parents: root.parents, license: root.license },
      { name: "demo-t:base", file: "demo-t-base.gguf", digest: base.digest, bytes: base.fileSize, relation: undefined, parents: undefined, license: "mit" },
    );
    // Its parent is not shipped: the lineage survives as card fields only.
    assert.equal(root.card?.trained_from, init.digest);
    assert.deepEqual(root.card?.recipe, { tool: "grove-forge finetune", toolVersion: "0.1.0", parameters: { epochs: 1 }, inputs: [init.digest] });
    assert.equal(root.card?.description, "the demo base");
    assert.deepEqual({ name: fork.name, digest: fork.digest, relation: fork.relation, parents: fork.parents, recipe: fork.recipe }, {
      name: "demo-t:q8_0",
      digest: quantized,
      relation: "quantized",
      parents: [base.digest],
      recipe: quantizeRecipe,
    });
    assert.deepEqual(
      manifest.results.map((row) => row.modelDigest).sort(),
      [base.digest, quantized].sort(),
      "the results of the shipped models, not of the parent left behind",
    );
  });

  it("refuses an unknown name and a fork listed before its parent, leaving the directory as it was", async () => {
    const before = await readFile(join(shipped, "manifest.json"), "utf8");
    await assert.rejects(
      withResultsOf(source, (results) => exportFamily(source, results, { names: ["demo-t:base", "demo-t:nope"], outDir: shipped, defaultName: "demo-t:base" })),
      (error: unknown) => error instanceof InvalidRequestError && /demo-t:nope/.test(error.message),
    );
    await assert.rejects(
      withResultsOf(source, (results) => exportFamily(source, results, { names: ["demo-t:q8_0", "demo-t:base"], outDir: shipped, defaultName: "demo-t:base" })),
      (error: unknown) => error instanceof InvalidRequestError && /demo-t:q8_0 is listed before its parent demo-t:base/.test(error.message),
    );
    assert.equal(await readFile(join(shipped, "manifest.json"), "utf8"), before);
    assert.deepEqual((await readdir(directory)).filter((name) => name.includes("shipped")), ["shipped"], "no temp directory left beside it");
  });

  it("replaces an existing directory whole", async () => {
    const outDir = join(directory, "replaced");
    await mkdir(outDir);
    await writeFile(join(outDir, "stale.gguf"), "old");
    await withResultsOf(source, (results) => exportFamily(source, results, { names: ["demo-t:base"], outDir, defaultName: "demo-t:base" }));
    assert.deepEqual((await readdir(outDir)).sort(), ["demo-t-base.gguf", "manifest.json"]);
  });
});

describe("importShippedFamily", () => {
  it("imports names, digests, lineage, recipe, card and results into a fresh store; a rerun imports nothing", async () => {
    const store = await openStore();
    try {
      const first = await withResultsOf(store, (results) => importShippedFamily(store, results, shipped));
      assert.deepEqual(first, { defaultName: "demo-t:q8_0", imported: ["demo-t:base", "demo-t:q8_0"] });
      assert.equal((await store.resolve("demo-t:base")).digest, base.digest);
      assert.equal((await store.resolve("demo-t:q8_0")).digest, quantized);
      assert.deepEqual(render(await store.tree()), ["demo-t:base root F16", "  demo-t:q8_0 quantized Q8_0"]);
      const fork = await store.show("demo-t:q8_0");
      assert.deepEqual(fork.parents, [{ child: quantized, parent: base.digest, relation: "quantized", recipe: quantizeRecipe }]);
      const root = await store.show("demo-t:base");
      assert.equal(root.model.license, "mit");
      assert.equal(root.model.card.trained_from, init.digest);
      assert.equal(root.model.card.description, "the demo base");
      assert.deepEqual((await resultsOf(store.home)), (await resultsOf(source.home)).filter((row) => row.modelDigest !== init.digest));

      const second = await withResultsOf(store, (results) => importShippedFamily(store, results, shipped));
      assert.deepEqual(second, { defaultName: "demo-t:q8_0", imported: [] });
      assert.equal((await store.list()).length, 2);
      assert.equal((await resultsOf(store.home)).length, 2);
    } finally {
      await store.close();
    }
  });

  const damages: { name: string; damage: (dir: string) => Promise<void>; repair: (dir: string) => Promise<void>; expected: (error: unknown) => boolean }[] = [
    {
      name: "a corrupted manifest",
      damage: (dir) => writeFile(join(dir, "manifest.json"), '{"grove_demo": 1, "models": ['),
      repair: (dir) => cp(join(shipped, "manifest.json"), join(dir, "manifest.json")),
      expected: (error) => error instanceof InvalidRequestError && /manifest\.json: not valid JSON/.test(error.message),
    },
    {
      name: "another format version",
      damage: async (dir) => writeFile(join(dir, "manifest.json"), JSON.stringify({ ...(await readManifest(dir)), grove_demo: 2 })),
      repair: (dir) => cp(join(shipped, "manifest.json"), join(dir, "manifest.json")),
      expected: (error) => error instanceof InvalidRequestError && /manifest\.json: format version 2; this Grove reads version 1/.test(error.message),
    },
    {
      name: "a missing field",
      damage: async (dir) => {
        const manifest = await readManifest(dir);
        delete (manifest.models[1] as Partial<DemoManifest["models"][number]>).digest;
        await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
      },
      repair: (dir) => cp(join(shipped, "manifest.json"), join(dir, "manifest.json")),
      expected: (error) => error instanceof InvalidRequestError && /manifest\.json: field 'models\[1\]\.digest': missing/.test(error.message),
    },
    {
      // The fork's file: its base is imported first, so this proves the base's rows are undone.
      name: "a file whose digest differs",
      damage: async (dir) => {
        const file = await open(join(dir, "demo-t-q8_0.gguf"), "r+");
        const { size } = await file.stat();
        const byte = Buffer.alloc(1);
        await file.read(byte, 0, 1, size - 7);
        byte[0] = byte[0]! ^ 0xff;
        await file.write(byte, 0, 1, size - 7);
        await file.close();
      },
      repair: (dir) => cp(join(shipped, "demo-t-q8_0.gguf"), join(dir, "demo-t-q8_0.gguf")),
      expected: (error) => error instanceof DigestMismatchError && /demo-t-q8_0\.gguf \(demo-t:q8_0\)/.test(error.message),
    },
    {
      name: "a missing file",
      damage: (dir) => rm(join(dir, "demo-t-q8_0.gguf")),
      repair: (dir) => cp(join(shipped, "demo-t-q8_0.gguf"), join(dir, "demo-t-q8_0.gguf")),
      expected: (error) => error instanceof NotFoundError && /models\[1\] \(demo-t:q8_0\) is the file .*demo-t-q8_0\.gguf, which is missing/.test(error.message),
    },
    {
      name: "an unknown parent",
      damage: async (dir) => {
        const manifest = await readManifest(dir);
        manifest.models[1]!.parents = [`sha256:${"ab".repeat(32)}`];
        await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
      },
      repair: (dir) => cp(join(shipped, "manifest.json"), join(dir, "manifest.json")),
      expected: (error) => error instanceof InvalidRequestError && /models\[1\] \(demo-t:q8_0\): its parent sha256:abab.* is neither earlier in the manifest nor in the store/.test(error.message),
    },
  ];
  for (const { name, damage, repair, expected } of damages) {
    it(`refuses ${name} with a clear error, leaves no rows of the family, and succeeds once repaired`, async () => {
      const dir = await copyShipped();
      await damage(dir);
      const store = await openStore();
      try {
        await assert.rejects(withResultsOf(store, (results) => importShippedFamily(store, results, dir)), expected);
        assert.deepEqual(await store.names(), []);
        assert.deepEqual(await store.list(), []);
        assert.deepEqual(await store.edges(), []);
        assert.deepEqual(await resultsOf(store.home), []);
        await repair(dir);
        assert.deepEqual((await withResultsOf(store, (results) => importShippedFamily(store, results, dir))).imported, ["demo-t:base", "demo-t:q8_0"]);
        assert.deepEqual(render(await store.tree()), ["demo-t:base root F16", "  demo-t:q8_0 quantized Q8_0"]);
      } finally {
        await store.close();
      }
    });
  }
});

describe("ensureDefaultModel", () => {
  it("imports the shipped family and returns its default, once", async () => {
    const store = await openStore();
    try {
      assert.equal(await withResultsOf(store, (results) => ensureDefaultModel(store, results, undefined, { shippedDir: shipped })), "demo-t:q8_0");
      assert.equal((await store.resolve("demo-t:q8_0")).digest, quantized);
      assert.equal(await withResultsOf(store, (results) => ensureDefaultModel(store, results, undefined, { shippedDir: shipped })), "demo-t:q8_0");
      assert.equal((await store.list()).length, 2);
      await assert.rejects(store.resolve(DEFAULT_MODEL.name), "no generated model beside the shipped family");
    } finally {
      await store.close();
    }
  });

  it("falls back to the generated model when the directory has no manifest", async () => {
    const store = await openStore();
    try {
      assert.equal(await withResultsOf(store, (results) => ensureDefaultModel(store, results, undefined, { shippedDir: join(directory, "no-such-family") })), DEFAULT_MODEL.id);
      assert.equal((await store.list()).length, 1);
      await store.resolve(DEFAULT_MODEL.name);
    } finally {
      await store.close();
    }
  });
});
