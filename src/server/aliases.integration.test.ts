import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { NativeEngine } from "../engine/native-engine.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { SeededRandom } from "../forge/generate/seeded-random.js";
import { ResultStore } from "../results/result-store.js";
import { ModelStore } from "../store/model-store.js";
import { createServer } from "./server.js";
import { StoreCatalog } from "../serving/store-catalog.js";

// Aliases served by the catalog and managed through the admin API, in-process (fastify inject)
// with a real engine and two generated models. The catalog's alias picks come from a seeded
// generator here, so the canary count below is the same on every run.

let directory: string;
let store: ModelStore;
let engine: NativeEngine;
let catalog: StoreCatalog;
let app: FastifyInstance;
const digests: Record<string, string> = {};

let results: ResultStore;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-aliases-"));
  store = await ModelStore.open(join(directory, "home"));
  for (const [name, seed] of [["tiny:a", 7], ["tiny:b", 8]] as const) {
    const path = join(directory, `${seed}.gguf`);
    await generateModel({ preset: "test-tiny", seed, dtype: "f16", outPath: path });
    digests[name] = (await store.importFile(path, { name })).model.digest;
  }
  engine = await NativeEngine.create({ models: [], threads: 1, slots: 2, contextSize: 256, gpu: false });
  const random = new SeededRandom(2026, "canary");
  catalog = new StoreCatalog({ store, engine, contextSize: 256, slots: 2, random: () => random.nextFloat() });
  results = await ResultStore.open(store.home);
  app = createServer({ engine, catalog, store, results, pool: catalog.pool });
});

after(async () => {
  await app?.close();
  catalog?.close();
  await engine?.close();
  await store?.close();
  await results?.close();
  await rm(directory, { recursive: true, force: true });
});

const api = async (method: "GET" | "PUT" | "POST" | "DELETE", url: string, payload?: unknown) => {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.json() as any };
};

const chat = (model: string) => api("POST", "/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }], max_tokens: 1 });

describe("aliases over HTTP", () => {
  test("a canary alias with weights 90/10 sends 200 requests within a binomial bound, each answered under the alias's name", async () => {
    const set = await api("PUT", "/api/aliases/canary", { targets: [{ model: "tiny:a", weight: 90 }, { model: "tiny:b", weight: 10 }] });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.alias.targets.map((target: { names: string[]; share: number }) => [target.names[0], target.share]).sort(), [["tiny:a", 0.9], ["tiny:b", 0.1]]);
    const counts = new Map<string, number>();
    for (let index = 0; index < 200; index++) {
      const response = await chat("canary");
      assert.equal(response.status, 200, JSON.stringify(response.body));
      assert.equal(response.body.model, "canary");
      counts.set(response.body.system_fingerprint, (counts.get(response.body.system_fingerprint) ?? 0) + 1);
    }
    const toA = counts.get(digests["tiny:a"]!.slice(7, 19)) ?? 0;
    const toB = counts.get(digests["tiny:b"]!.slice(7, 19)) ?? 0;
    assert.equal(toA + toB, 200);
    // Binomial(200, 0.9): mean 180, σ = √(200·0.9·0.1) ≈ 4.24; four σ either side.
    assert.ok(Math.abs(toA - 180) <= 4 * Math.sqrt(200 * 0.9 * 0.1), `tiny:a got ${toA} of 200, tiny:b ${toB}`);
    const loaded = await api("GET", "/api/loaded");
    assert.equal(loaded.status, 200);
    assert.deepEqual(loaded.body.models.map((model: { id: string }) => model.id).sort(), [digests["tiny:a"], digests["tiny:b"]].sort());
  });

  test("bad input gives clear errors and changes nothing", async () => {
    const before = await api("GET", "/api/aliases");
    const cases: [string, "PUT" | "POST", unknown, number, RegExp][] = [
      ["/api/aliases/canary", "PUT", { targets: [{ model: "tiny:zzz", weight: 1 }] }, 404, /tiny:zzz/],
      ["/api/aliases/canary", "PUT", { targets: [{ model: "tiny:a", weight: 0 }] }, 400, /positive number/],
      ["/api/aliases/canary", "PUT", { targets: [{ model: "tiny:a", weight: -1 }] }, 400, /positive number/],
      ["/api/aliases/canary", "PUT", { targets: [] }, 400, /at least one model/],
      ["/api/aliases/tiny:b", "PUT", { targets: [{ model: "tiny:a" }] }, 409, /already a model name/],
      ["/api/aliases/canary/migrate", "POST", { to: "tiny:b", tasks: [] }, 400, /at least one task/],
      ["/api/aliases/canary/migrate", "POST", { to: "tiny:zzz", tasks: ["perplexity"] }, 404, /tiny:zzz/],
      ["/api/aliases/nope/migrate", "POST", { to: "tiny:b", tasks: ["perplexity"] }, 404, /No alias/],
    ];
    for (const [url, method, payload, status, message] of cases) {
      const response = await api(method, url, payload);
      assert.equal(response.status, status, `${method} ${url}: ${JSON.stringify(response.body)}`);
      assert.match(response.body.error.message, message);
    }
    assert.deepEqual(await api("GET", "/api/aliases"), before);
  });

  test("history, delete and rollback through the admin API", async () => {
    assert.equal((await api("PUT", "/api/aliases/canary", { targets: [{ model: "tiny:b" }] })).status, 200);
    const rollback = await api("POST", "/api/aliases/canary/rollback");
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    assert.equal((await api("GET", "/api/aliases/canary")).body.targets.length, 2, "back to the 90/10 canary");
    assert.equal((await api("DELETE", "/api/aliases/canary")).status, 200);
    assert.equal((await api("GET", "/api/aliases/canary")).status, 404);
    assert.equal((await chat("canary")).status, 404);
    const history = await api("GET", "/api/aliases/canary/history");
    assert.deepEqual(history.body.history.map((event: { action: string }) => event.action), ["set", "set", "rollback", "remove"]);
  });
});
