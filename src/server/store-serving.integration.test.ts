import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { AliasBook } from "../store/alias-book.js";
import { ModelStore } from "../store/model-store.js";

// `grove serve` over a real store: names, digests, prefixes and aliases resolve through the
// SQLite registry, models load on first use, and the admin API returns the fork tree.

let directory: string;
let grove: RunningGrove;
let client: OpenAI;
const digests: Record<string, string> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-store-serving-"));
  const home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [name, seed, dtype] of [["tiny:a", 7, "f16"], ["tiny:b", 8, "f16"], ["tiny:a-q8", 7, "q8_0"]] as const) {
    const path = join(directory, `${seed}-${dtype}.gguf`);
    await generateModel({ preset: "test-tiny", seed, dtype, outPath: path });
    const base = name === "tiny:a-q8" ? { base: "tiny:a", relation: "quantized" as const } : {};
    digests[name] = (await store.importFile(path, { name, ...base })).model.digest;
  }
  await new AliasBook(store).set("tiny:canary", [{ ref: digests["tiny:b"]! }]);
  await store.close();
  const config = loadConfig({
    env: {},
    flags: { home, model: "tiny:a", port: 0, threads: 1, parallel: 2, contextSize: 256, logLevel: "silent" },
  });
  grove = await startGrove(config);
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

const ask = (model: string) =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });

describe("serving the store", () => {
  test("lists every name and alias; only the requested model is loaded at start", async () => {
    const page = await client.models.list();
    const ids = page.data.map((entry) => entry.id).sort();
    assert.deepEqual(ids, ["tiny:a", "tiny:a-q8", "tiny:b", "tiny:canary"]);
    // The model the server was started with is marked, so the web chat starts there.
    const marked = (page.data as unknown as { id: string; default?: boolean }[]).filter((entry) => entry.default === true).map((entry) => entry.id);
    assert.deepEqual(marked, ["tiny:a"]);
    assert.deepEqual(grove.engine.models.map((model) => model.info.digest), [digests["tiny:a"]]);
  });

  test("a model loads on first use, under its digest, and the response echoes the name asked for", async () => {
    const response = await ask("tiny:b");
    assert.equal(response.model, "tiny:b");
    assert.ok(grove.engine.models.some((model) => model.info.digest === digests["tiny:b"]));
    // A second name of the same file would share the load; a digest prefix resolves too.
    const byPrefix = await ask(digests["tiny:b"]!.slice(7, 19));
    assert.equal(byPrefix.choices.length, 1);
    assert.equal(grove.engine.models.filter((model) => model.info.digest === digests["tiny:b"]).length, 1);
  });

  test("an alias routes to its target", async () => {
    const response = await ask("tiny:canary");
    assert.equal(response.model, "tiny:canary");
    assert.equal(response.system_fingerprint, digests["tiny:b"]!.slice(7, 19));
  });

  test("unknown and malformed names are 404 model_not_found", async () => {
    for (const name of ["tiny:zzz", "../etc/passwd", "a\\b"]) {
      await assert.rejects(ask(name), (error: any) => error.status === 404 && error.code === "model_not_found");
    }
    assert.equal((await ask("tiny:a")).choices.length, 1, "still serving");
  });

  test("the admin API lists models and returns a model's fork tree", async () => {
    const list = (await (await fetch(`${grove.url}/api/models`)).json()) as { models: { digest: string; names: string[] }[] };
    assert.equal(list.models.length, 3);
    const tree = (await (await fetch(`${grove.url}/api/models/tiny:a-q8/tree`)).json()) as { tree: any[] };
    assert.equal(tree.tree.length, 1);
    assert.equal(tree.tree[0].digest, digests["tiny:a"]);
    assert.equal(tree.tree[0].children[0].digest, digests["tiny:a-q8"]);
    assert.equal(tree.tree[0].children[0].relation, "quantized");
    const missing = await fetch(`${grove.url}/api/models/nothing-here/tree`);
    assert.equal(missing.status, 404);
    const details = (await (await fetch(`${grove.url}/api/models/tiny:a`)).json()) as Record<string, unknown>;
    assert.ok(!("path" in details), "no server paths leak");
  });
});
