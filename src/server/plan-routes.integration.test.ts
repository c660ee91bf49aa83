import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { currentMachine } from "../results/machine.js";
import { ResultStore, type ResultRecord } from "../results/result-store.js";
import { loadConfig } from "../config/config.js";
import type { Digest } from "../core/digest.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// `GET /api/plan` and `GET /api/results` against the real server on port 0: the plan of
// `grove plan` as JSON, stored results filtered by model, task and kind, 400 for bad input,
// and 409 from a server of one file (no store).

let directory: string;
let home: string;
let grove: RunningGrove;
const digests: Record<string, Digest> = {};

function record(name: string, kind: "quality" | "cost", metrics: Record<string, number>): ResultRecord {
  return {
    modelDigest: digests[name]!,
    kind,
    task: kind === "cost" ? "bench" : "perplexity",
    taskDigest: kind === "cost" ? "sha256:workload" : "sha256:text",
    settings: kind === "cost" ? { ctx: 512, slots: 2, threads: 1 } : { ctx: 512 },
    engineVersion: "test",
    metrics,
    flags: [],
    details: {},
    createdAt: new Date().toISOString(),
    machine: kind === "cost" ? currentMachine() : null,
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-plan-routes-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [name, dtype] of [["tiny:f16", "f16"], ["tiny:q8", "q8_0"]] as const) {
    const path = join(directory, `${dtype}.gguf`);
    await generateModel({ preset: "test-tiny", seed: 9, dtype, outPath: path });
    digests[name] = (await store.importFile(path, dtype === "f16" ? { name } : { name, base: "tiny:f16", relation: "quantized" })).model.digest;
  }
  await store.close();
  const results = await ResultStore.open(home);
  await results.put(record("tiny:f16", "quality", { perplexity: 40 }));
  await results.put(record("tiny:q8", "quality", { perplexity: 41 }));
  await results.put(record("tiny:q8", "cost", { peakRssBytes: 140e6, decodeTokensPerSecond: 900 }));
  await results.close();
  const config = loadConfig({ env: {}, flags: { home, model: "tiny:f16", port: 0, threads: 1, contextSize: 256, logLevel: "silent" } });
  grove = await startGrove(config);
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

async function get(url: string, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}${path}`);
  return { status: response.status, body: await response.json() };
}

describe("GET /api/plan", () => {
  test("plans over the store's results", async () => {
    const { status, body } = await get(grove.url, "/api/plan?memory=1GiB&ctx=512&slots=2&task=perplexity");
    assert.equal(status, 200);
    assert.deepEqual(body.limits, { memoryBytes: 2 ** 30, contextSize: 512, slots: 2, p50TokenMs: null, minTokensPerSecond: null, task: "perplexity" });
    assert.equal(body.choice.names[0], "tiny:f16");
    assert.deepEqual(body.ranked.map((candidate: any) => candidate.names[0]), ["tiny:f16", "tiny:q8"]);
    const latency = await get(grove.url, "/api/plan?memory=1GiB&ctx=512&slots=2&task=perplexity&p50_token_ms=10");
    assert.equal(latency.status, 200);
    assert.equal(latency.body.choice.names[0], "tiny:q8");
    assert.match(latency.body.excluded[0].reason, /not measured: run grove bench tiny:f16 --ctx 512 --slots 2/);
  });

  test("bad input is a 400 naming the parameter", async () => {
    for (const [query, param] of [
      ["memory=lots", "memory"],
      ["", "memory"],
      ["memory=1GiB&ctx=-1", "ctx"],
      ["memory=1GiB&slots=two", "slots"],
      ["memory=1GiB&p50_token_ms=0", "p50_token_ms"],
      ["memory=1GiB&min_tps=-4", "min_tps"],
      ["memory=1GiB&memory=2GiB", "memory"],
      ["memory=1GiB&task=no-such-task", "task"],
    ]) {
      const { status, body } = await get(grove.url, `/api/plan?${query}`);
      assert.equal(status, 400, query);
      assert.equal(body.error.param, param, query);
      assert.equal(typeof body.error.message, "string");
    }
  });
});

describe("GET /api/results", () => {
  test("lists stored results, filtered by model, task and kind", async () => {
    const all = await get(grove.url, "/api/results");
    assert.equal(all.status, 200);
    assert.equal(all.body.results.length, 3);
    const q8 = await get(grove.url, "/api/results?model=tiny:q8");
    assert.equal(q8.body.results.length, 2);
    for (const result of q8.body.results) assert.equal(result.modelDigest, digests["tiny:q8"]);
    const cost = await get(grove.url, "/api/results?kind=cost");
    assert.deepEqual(cost.body.results.map((result: ResultRecord) => result.task), ["bench"]);
    const perplexity = await get(grove.url, "/api/results?task=perplexity&kind=quality");
    assert.equal(perplexity.body.results.length, 2);
  });

  test("a bad kind is a 400, an unknown model a 404", async () => {
    const kind = await get(grove.url, "/api/results?kind=speed");
    assert.equal(kind.status, 400);
    assert.equal(kind.body.error.param, "kind");
    const model = await get(grove.url, "/api/results?model=no-such:model");
    assert.equal(model.status, 404);
  });
});

describe("a server of one file", () => {
  let model: TestModel;
  let single: RunningGrove;
  before(async () => {
    model = await createTestModel();
    single = await startTestGrove(model, { contextSize: 256 });
  });
  after(async () => {
    await single?.close();
    await model?.cleanup();
  });

  test("answers 409: plans and results need a store", async () => {
    for (const path of ["/api/plan?memory=1GiB", "/api/results"]) {
      const { status, body } = await get(single.url, path);
      assert.equal(status, 409, path);
      assert.match(body.error.message, /need a store/);
    }
  });
});
