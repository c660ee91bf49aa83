import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ResultStore } from "../results/result-store.js";
import type { Digest } from "../core/digest.js";
import { quantizeFork } from "../forge/quantize/quantize-fork.js";
import type { RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// The endpoints the web app's Models page reads besides the store's own: every fork tree of
// the store (`GET /api/tree`) and one model's evaluation results (`GET /api/models/:ref/results`),
// against the real server serving a store of a generated model and its Q8_0 fork.

let model: TestModel;
let grove: RunningGrove;
let baseDigest: string;
let forkDigest: string;

before(async () => {
  model = await createTestModel();
  const store = await ModelStore.open(join(model.directory, "home"));
  baseDigest = (await store.importFile(model.path, { name: "tiny:base" })).model.digest;
  forkDigest = (await quantizeFork(store, { model: "tiny:base", type: "Q8_0", name: "tiny:q8", threads: 1 })).import.model.digest;
  await store.close();
  const results = await ResultStore.open(join(model.directory, "home"));
  await results.put({
    modelDigest: baseDigest as Digest, kind: "quality", task: "arith-mc", taskDigest: "sha256:task", settings: { ctx: 512 },
    engineVersion: "test", metrics: { acc: 0.5 }, flags: [], details: {}, createdAt: new Date().toISOString(),
  });
  await results.close();
  grove = await startTestGrove(model, { model: "tiny:base", contextSize: 512 });
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${grove.url}${path}`);
  return { status: response.status, body: await response.json() };
}

describe("the Models page's API", () => {
  test("GET /api/tree answers every tree of the store: the root with its fork, relation, size and quantization", async () => {
    const { status, body } = await getJson("/api/tree");
    assert.equal(status, 200);
    assert.equal(body.tree.length, 1, "one root");
    const [root] = body.tree;
    assert.equal(root.digest, baseDigest);
    assert.deepEqual(root.names, ["tiny:base"]);
    assert.equal(root.relation, null);
    assert.equal(root.quantization, "F16");
    assert.equal(root.children.length, 1);
    const [fork] = root.children;
    assert.equal(fork.digest, forkDigest);
    assert.equal(fork.relation, "quantized");
    assert.equal(fork.quantization, "Q8_0");
    assert.ok(fork.size > 0 && fork.size < root.size, "the fork is smaller than its F16 parent");
  });

  test("GET /api/models/:ref/results answers the model's results only", async () => {
    const base = await getJson("/api/models/tiny:base/results");
    assert.equal(base.status, 200);
    assert.equal(base.body.results.length, 1);
    assert.equal(base.body.results[0].task, "arith-mc");
    assert.equal(base.body.results[0].metrics.acc, 0.5);
    const fork = await getJson(`/api/models/${encodeURIComponent(forkDigest)}/results`);
    assert.equal(fork.status, 200);
    assert.deepEqual(fork.body.results, []);
  });

  test("GET /api/models/:ref/results refuses an unknown model with 404 and a malformed reference with 400, naming it", async () => {
    const unknown = await getJson("/api/models/tiny:nothing/results");
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /tiny:nothing/);
    const malformed = await getJson(`/api/models/${encodeURIComponent("Bad Name!")}/results`);
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.param, "model");
    assert.match(malformed.body.error.message, /Bad Name!/);
  });
});
