import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ResultStore, type ResultRecord } from "../results/result-store.js";
import { loadConfig } from "../config/config.js";
import type { Digest } from "../core/digest.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// `GET /api/leaderboard`, `/api/front` and `/api/front.svg` against the real server on port 0:
// the views of `grove leaderboard` and `grove front` over stored results, 400 for bad input,
// and 409 from a server of one file (no store).

let directory: string;
let grove: RunningGrove;
const digests: Record<string, Digest> = {};

function record(name: string, task: string, metrics: Record<string, number>, flags: string[] = []): ResultRecord {
  return {
    modelDigest: digests[name]!,
    kind: task === "bench" ? "cost" : "quality",
    task,
    taskDigest: `sha256:${task}`,
    settings: task === "bench" ? { ctx: 512, slots: 1, threads: 1 } : { ctx: 512 },
    engineVersion: "test",
    metrics,
    flags,
    details: {},
    createdAt: new Date().toISOString(),
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-results-routes-"));
  const home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [name, dtype] of [["tiny:f16", "f16"], ["tiny:q8", "q8_0"], ["tiny:f32", "f32"]] as const) {
    const path = join(directory, `${dtype}.gguf`);
    await generateModel({ preset: "test-tiny", seed: 9, dtype, outPath: path });
    digests[name] = (await store.importFile(path, dtype === "f16" ? { name } : { name, base: "tiny:f16", relation: "quantized" })).model.digest;
  }
  await store.close();
  const results = await ResultStore.open(home);
  await results.put(record("tiny:f16", "perplexity", { perplexity: 40, bitsPerByte: 5 }));
  await results.put(record("tiny:q8", "perplexity", { perplexity: 41, bitsPerByte: 5.1 }));
  await results.put(record("tiny:f32", "perplexity", { perplexity: 39 }, ["missing_logprobs"]));
  await results.put(record("tiny:q8", "bench", { peakRssBytes: 140e6, decodeTokensPerSecond: 900 }));
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

describe("GET /api/leaderboard", () => {
  test("lists tasks without task, ranks with it", async () => {
    const tasks = await get(grove.url, "/api/leaderboard");
    assert.equal(tasks.status, 200);
    assert.deepEqual(tasks.body.tasks.map((task: any) => [task.task, task.models]), [["bench", 1], ["perplexity", 3]]);
    const board = await get(grove.url, "/api/leaderboard?task=perplexity&tree=tiny:q8");
    assert.equal(board.status, 200);
    assert.deepEqual(board.body.metric, { name: "perplexity", higherIsBetter: false });
    assert.deepEqual(board.body.rows.map((row: any) => [row.names[0], row.rank, row.flags]), [["tiny:f16", 1, []], ["tiny:q8", 2, []], ["tiny:f32", null, ["missing_logprobs"]]]);
    assert.equal(board.body.rows[1].cost.decodeTokensPerSecond, 900);
    const byBits = await get(grove.url, "/api/leaderboard?task=perplexity&metric=bitsPerByte");
    assert.equal(byBits.body.metric.name, "bitsPerByte");
  });

  test("bad input is a 400 naming the parameter; an unknown tree a 404", async () => {
    for (const [query, param] of [
      ["task=no-such-task", "task"],
      ["task=perplexity&metric=vibes", "metric"],
      ["metric=bitsPerByte", "metric"],
      ["task=perplexity&task=bench", "task"],
    ]) {
      const { status, body } = await get(grove.url, `/api/leaderboard?${query}`);
      assert.equal(status, 400, query);
      assert.equal(body.error.param, param, query);
      assert.equal(typeof body.error.message, "string");
    }
    assert.equal((await get(grove.url, "/api/leaderboard?task=perplexity&tree=no-such:model")).status, 404);
  });
});

describe("GET /api/front", () => {
  test("the front as JSON and as an SVG chart", async () => {
    const { status, body } = await get(grove.url, "/api/front?task=perplexity&cost=size");
    assert.equal(status, 200);
    assert.deepEqual(body.front.map((model: any) => model.names[0]), ["tiny:q8", "tiny:f16"]);
    assert.deepEqual(body.unplaced.map((model: any) => model.names[0]), ["tiny:f32"]);
    const speed = await get(grove.url, "/api/front?cost=decodeTokensPerSecond");
    assert.equal(speed.body.task, "perplexity");
    assert.deepEqual(speed.body.front.map((model: any) => model.names[0]), ["tiny:q8"]);
    const response = await fetch(`${grove.url}/api/front.svg?task=perplexity`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^image\/svg\+xml/);
    const svg = await response.text();
    assert.match(svg, /^<\?xml[^>]*>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
    for (const name of ["tiny:q8", "tiny:f16"]) assert.ok(svg.includes(`>${name}</text>`), name);
  });

  test("bad input is a 400, also for the chart", async () => {
    for (const path of ["/api/front?cost=vibes", "/api/front.svg?cost=vibes", "/api/front?task=no-such-task", "/api/front?task=bench"]) {
      const { status, body } = await get(grove.url, path);
      assert.equal(status, 400, path);
      assert.ok(["cost", "task"].includes(body.error.param), path);
    }
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

  test("answers 409: leaderboards and fronts need a store", async () => {
    for (const path of ["/api/leaderboard", "/api/front", "/api/front.svg"]) {
      const { status, body } = await get(single.url, path);
      assert.equal(status, 409, path);
      assert.match(body.error.message, /need a store/);
    }
  });
});
