import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { benchModel } from "../bench/cost/bench-model.js";
import { ResultStore } from "../results/result-store.js";
import { InvalidRequestError } from "../core/errors.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { readGgufHeader } from "../gguf/gguf-header-reader.js";
import { ModelStore } from "../store/model-store.js";
import { estimateMemory, estimateModelMemory, SERVING_BASELINE_BYTES } from "./memory-estimate.js";

// The memory estimate against llama.cpp's own buffer sizes (as its log reports them for these
// files) and against the measured peak RSS of `grove serve` for the generated presets at two
// context sizes (issue 5's acceptance: within 15%).

const MiB = 2 ** 20;
let directory: string;
const paths: Record<string, string> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-memory-"));
  for (const preset of ["test-tiny", "small"]) {
    paths[preset] = join(directory, `${preset}.gguf`);
    await generateModel({ preset, seed: 1, dtype: "f16", outPath: paths[preset]! });
  }
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("estimateMemory", () => {
  test("KV cache and compute buffer match what llama.cpp allocates for the small preset", async () => {
    const estimate = await estimateModelMemory(paths.small!, { contextSize: 2048, slots: 4 });
    // llama.cpp: "KV buffer size = 24.00 MiB", "compute buffer size = 8.51 MiB", "output buffer size = 0.03 MiB".
    assert.equal(estimate.kvCacheBytes, 24 * MiB);
    assert.ok(Math.abs(estimate.computeBytes - (8.51 + 0.03) * MiB) < 0.02 * MiB, `compute ${estimate.computeBytes / MiB} MiB`);
    assert.equal(estimate.shape.cacheCells, 8192);
    assert.equal(estimate.baselineBytes, SERVING_BASELINE_BYTES);
    assert.equal(estimate.totalBytes, estimate.weightsBytes + estimate.kvCacheBytes + estimate.computeBytes + estimate.baselineBytes);
    // F16 weights: 2 bytes per parameter, a little under the file size.
    assert.ok(estimate.weightsBytes > 11 * MiB && estimate.weightsBytes < 11.1 * MiB, `weights ${estimate.weightsBytes}`);
  });

  test("pads the context as llama.cpp does: 100 tokens × 3 slots is 3 streams of 256 cells", async () => {
    const estimate = estimateMemory(await readGgufHeader(paths["test-tiny"]!), { contextSize: 100, slots: 3 });
    assert.equal(estimate.shape.cacheCells, 768);
    // llama.cpp: "KV buffer size = 0.19 MiB" (2 layers × 768 cells × (32 + 32) × 2 bytes).
    assert.equal(estimate.kvCacheBytes, 2 * 768 * 64 * 2);
  });

  test("the cache type scales the KV cache; bad settings are refused", async () => {
    const header = await readGgufHeader(paths.small!);
    const f16 = estimateMemory(header, { contextSize: 1024, slots: 2 });
    const f32 = estimateMemory(header, { contextSize: 1024, slots: 2, cacheType: "f32" });
    assert.equal(f32.kvCacheBytes, 2 * f16.kvCacheBytes);
    assert.throws(() => estimateMemory(header, { contextSize: 0, slots: 2 }), InvalidRequestError);
    assert.throws(() => estimateMemory(header, { contextSize: 512, slots: -1 }), InvalidRequestError);
    assert.throws(() => estimateMemory(header, { contextSize: 512, slots: 1, cacheType: "q3" }), InvalidRequestError);
  });
});

describe("estimate against the measured peak of grove serve", () => {
  let home: string;
  let store: ModelStore;
  let results: ResultStore;

  before(async () => {
    home = join(directory, "home");
    store = await ModelStore.open(home);
    results = await ResultStore.open(home);
    for (const preset of ["test-tiny", "small"]) await store.importFile(paths[preset]!, { name: `${preset === "test-tiny" ? "tiny" : preset}:f16` });
  });

  after(async () => {
    await results.close();
    await store.close();
  });

  for (const [name, preset] of [["tiny:f16", "test-tiny"], ["small:f16", "small"]] as const) {
    for (const contextSize of [512, 2048]) {
      test(`${preset} at ${contextSize} tokens × 4 slots: within 15%`, async (t) => {
        const { result } = await benchModel(store, results, name, {
          contextSize,
          slots: 4,
          threads: 1,
          promptTokens: 200,
          outputTokens: 16,
          concurrency: [4],
        });
        const peak = result.metrics.peakRssBytes;
        assert.equal(typeof peak, "number", "peak RSS measured (Linux /proc)");
        const estimate = await estimateModelMemory(paths[preset]!, { contextSize, slots: 4 });
        const error = (estimate.totalBytes - peak!) / peak!;
        t.diagnostic(`${preset} ctx ${contextSize}×4: estimate ${(estimate.totalBytes / MiB).toFixed(1)} MiB, peak ${(peak! / MiB).toFixed(1)} MiB, ${(error * 100).toFixed(1)}%`);
        assert.ok(Math.abs(error) <= 0.15, `estimate ${estimate.totalBytes} vs peak ${peak}: ${(error * 100).toFixed(1)}%`);
      });
    }
  }
});
