import assert from "node:assert/strict";
import { mkdtemp, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { GroveError } from "../core/errors.js";
import { generateAdapter } from "../forge/generate/generate-adapter.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import type { PoolReport } from "../serving/model-pool.js";
import { ModelStore } from "../store/model-store.js";
import { measureAdapterMemory } from "../bench/adapter-memory.js";

// Issue 19: eight adapter forks of one base served at once, on one load of the base. Each request
// runs with its own adapter; requests of different adapters take turns, and each answers exactly
// what it answers alone (greedy).

const FORKS = 8;
const MIB = 1024 * 1024;
let directory: string;
let grove: RunningGrove;
let client: OpenAI;
let adapterBytes = 0;
const names = Array.from({ length: FORKS }, (_, index) => `small:a${index}`);
const digests: Record<string, string> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-many-adapters-"));
  const home = join(directory, "home");
  const base = await generateModel({ preset: "small", seed: 7, outPath: join(directory, "base.gguf") });
  const other = await generateModel({ preset: "small", seed: 8, outPath: join(directory, "other.gguf") });
  const store = await ModelStore.open(home);
  digests.base = (await store.importFile(base.path, { name: "small:base" })).model.digest;
  digests.other = (await store.importFile(other.path, { name: "small:other" })).model.digest;
  for (const [index, name] of names.entries()) {
    const adapter = await generateAdapter({ basePath: base.path, seed: 100 + index, rank: 8, strong: true, outPath: join(directory, `a${index}.gguf`) });
    digests[name] = (await store.importFile(adapter.path, { name, base: "small:base" })).model.digest;
    adapterBytes = adapter.fileSize;
  }
  // One for the missing-file case: its blob is removed after import.
  const doomed = await generateAdapter({ basePath: base.path, seed: 99, rank: 8, strong: true, outPath: join(directory, "doomed.gguf") });
  digests.doomed = (await store.importFile(doomed.path, { name: "small:doomed", base: "small:base" })).model.digest;
  await store.close();
  const config = loadConfig({
    env: {},
    flags: { home, model: "small:base", port: 0, threads: 1, parallel: FORKS, contextSize: 128, logLevel: "silent" },
  });
  grove = await startGrove(config);
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

/** Greedy text of a fixed prompt: deterministic for one model and adapter. */
async function greedy(model: string): Promise<string> {
  const response = await client.completions.create({ model, prompt: "the river and the stone", max_tokens: 16, temperature: 0, seed: 1 });
  return response.choices[0]!.text;
}

async function loaded(): Promise<PoolReport> {
  return (await (await fetch(`${grove.url}/api/loaded`)).json()) as PoolReport;
}

describe("eight adapter forks on one base", () => {
  const alone: string[] = [];
  let baseText = "";

  test("each fork alone runs on the one load of the base, which grows by its adapters' size", async () => {
    baseText = await greedy("small:base");
    for (const name of names) alone.push(await greedy(name));
    const report = await loaded();
    const bases = report.models.filter((model) => model.base === undefined);
    const forks = report.models.filter((model) => model.base !== undefined);
    assert.deepEqual(bases.map((model) => model.id), [digests.base], "one model loaded: the base");
    assert.equal(forks.length, FORKS);
    for (const fork of forks) {
      assert.equal(fork.base, digests.base);
      assert.equal(fork.estimateBytes, adapterBytes, "a fork's estimate is its adapter file");
    }
    assert.equal(report.usedBytes, report.baselineBytes + bases[0]!.estimateBytes + FORKS * adapterBytes);
    // The engine: one decode thread (the base), eight forks on it.
    const infos = grove.engine.models.map((model) => model.info);
    assert.equal(infos.filter((info) => info.base === undefined).length, 1);
    assert.equal(infos.filter((info) => info.base === digests.base).length, FORKS);
    assert.ok(new Set(alone).size >= FORKS - 1, "strong adapters give distinct greedy outputs");
    assert.ok(!alone.includes(baseText), "every adapter changes the base's greedy output");
  });

  test("8 concurrent requests to 8 adapters (and the base) each answer what they answer alone", async () => {
    // Alone again, each fork's slot now holding its prompt as it will under concurrency (a reused
    // prefix changes the batches, and quantized matmuls' last bits with them).
    baseText = await greedy("small:base");
    for (const [index, name] of names.entries()) alone[index] = await greedy(name);
    const [base, ...answers] = await Promise.all([greedy("small:base"), ...names.map((name) => greedy(name))]);
    assert.equal(base, baseText);
    assert.deepEqual(answers, alone);
    // Same adapter twice at once: batched together, still its own output.
    const twice = await Promise.all([greedy(names[0]!), greedy(names[0]!), greedy(names[1]!)]);
    assert.deepEqual(twice, [alone[0], alone[0], alone[1]]);
  });

  test("an adapter fork is unloaded alone, and loads again on the base still loaded", async () => {
    await grove.engine.unload(digests[names[3]!]!);
    const ids = grove.engine.models.map((model) => model.info.id);
    assert.ok(ids.includes(digests.base!) && !ids.includes(digests[names[3]!]!));
    // The pool loads it back (its handle finds it gone).
    assert.equal(await greedy(names[3]!), alone[3]);
    assert.equal(grove.engine.models.filter((model) => model.info.base === undefined).length, 1);
  });

  test("bad adapters fail clearly and the server keeps serving", async () => {
    // A missing adapter file (its blob gone from the store).
    await unlink(join(directory, "home", "blobs", digests.doomed!.replace(":", "-")));
    await assert.rejects(greedy("small:doomed"), (error: any) => error.status === 503 && /small:doomed/.test(error.message));
    // An adapter made for another base, loaded on it directly: refused before llama.cpp sees it.
    const other = join(directory, "other.gguf");
    const adapter = join(directory, "a0.gguf");
    await assert.rejects(
      grove.engine.load({ id: "mismatch", digest: digests[names[0]!] as never, path: other, adapters: [{ path: adapter }], base: { id: digests.other!, digest: digests.other as never, path: other } }),
      (error: unknown) => error instanceof GroveError && /was made for sha256:/.test(error.message) && !error.message.includes(directory),
    );
    await assert.rejects(
      grove.engine.load({ id: "missing", digest: digests[names[0]!] as never, path: other, adapters: [{ path: join(directory, "nope.gguf") }], base: { id: digests.base!, digest: digests.base as never, path: join(directory, "base.gguf") } }),
      (error: unknown) => error instanceof GroveError && error.code === "invalid_model_file" && /nope\.gguf is missing/.test(error.message) && !error.message.includes(directory),
    );
    assert.equal(await greedy("small:base"), baseText);
    assert.equal(await greedy(names[5]!), alone[5]);
    assert.ok((await stat(adapter)).size > 0);
  });
});

describe("memory of eight adapter forks on one base", () => {
  test("a separate grove serve stays below base + 8 × adapter + 10% (the acceptance of issue 19)", async () => {
    const folder = await mkdtemp(join(tmpdir(), "grove-adapter-memory-"));
    try {
      // F32 weights and rank-32 adapters (22 MiB and 3.6 MiB): sizes at which the bound is about the
      // model, not the ~1.5 MiB each fork costs in bookkeeping (headers read, graph, JS objects).
      const result = await measureAdapterMemory({ directory: folder, preset: "small", dtype: "f32", rank: 32, adapters: FORKS });
      const mib = (bytes: number) => (bytes / MIB).toFixed(1);
      console.log(`# resident: base ${mib(result.baseBytes)} MiB, + ${FORKS} adapters ${mib(result.withAdaptersBytes)} MiB, after concurrent ${mib(result.afterConcurrentBytes)} MiB; adapter file ${mib(result.adapterFileBytes)} MiB, bound ${mib(result.limitBytes)} MiB`);
      assert.equal(result.loadedModels, 1);
      assert.equal(result.loadedForks, FORKS);
      assert.ok(result.concurrentMatchesAlone);
      assert.ok(result.afterConcurrentBytes < result.limitBytes, `resident ${result.afterConcurrentBytes} ≥ bound ${result.limitBytes}`);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
