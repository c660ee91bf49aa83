import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { generateAdapter } from "../forge/generate/generate-adapter.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";

// An adapter fork served over the store: the base loads with the LoRA applied, under the
// adapter's digest, beside (never instead of) the bare base.

let directory: string;
let grove: RunningGrove;
let client: OpenAI;
const digests: Record<string, string> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-adapter-serving-"));
  const home = join(directory, "home");
  const base = await generateModel({ preset: "test-tiny", seed: 7, outPath: join(directory, "base.gguf") });
  const adapter = await generateAdapter({ basePath: base.path, seed: 11, strong: true, outPath: join(directory, "lora.gguf") });
  const store = await ModelStore.open(home);
  digests.base = (await store.importFile(base.path, { name: "tiny:base" })).model.digest;
  digests.lora = (await store.importFile(adapter.path, { name: "tiny:lora", base: "tiny:base" })).model.digest;
  // The same kind of adapter, switched off by its card's scale.
  const muted = await generateAdapter({ basePath: base.path, seed: 12, strong: true, outPath: join(directory, "muted.gguf") });
  digests.muted = (await store.importFile(muted.path, { name: "tiny:muted", base: "tiny:base", card: { adapter_scale: 0 } })).model.digest;
  await store.close();
  const config = loadConfig({
    env: {},
    flags: { home, model: "tiny:base", port: 0, threads: 1, parallel: 2, contextSize: 256, logLevel: "silent" },
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
  const response = await client.completions.create({ model, prompt: "the forest", max_tokens: 12, temperature: 0, seed: 1 });
  assert.equal(response.choices.length, 1);
  assert.equal(response.usage?.completion_tokens, 12);
  return response.choices[0]!.text;
}

describe("serving an adapter fork", () => {
  test("gives output different from its base under greedy decoding, and the base keeps its own", async () => {
    const baseBefore = await greedy("tiny:base");
    const adapted = await greedy("tiny:lora");
    assert.notEqual(adapted, baseBefore, "the strong adapter changes greedy output");
    assert.equal(await greedy("tiny:lora"), adapted, "the adapter's output is deterministic");
    // Both loaded at once, separately: the adapter never leaks into the base's contexts.
    const [baseAgain, adaptedAgain] = await Promise.all([greedy("tiny:base"), greedy("tiny:lora")]);
    assert.equal(baseAgain, baseBefore);
    assert.equal(adaptedAgain, adapted);
  });

  test("loads under the adapter's digest, on top of the base's file", async () => {
    const loaded = new Map(grove.engine.models.map((model) => [model.info.digest as string, model.info]));
    assert.equal(loaded.size, 2);
    const lora = loaded.get(digests.lora!);
    const base = loaded.get(digests.base!);
    assert.ok(lora && base);
    assert.equal(lora.path, base.path, "the adapter fork runs on its base's blob");
    assert.equal(lora.adapters?.length, 1);
    assert.equal(lora.adapters?.[0]?.scale, 1);
    assert.equal(base.adapters, undefined);
    const models = (await client.models.list()).data.map((entry) => entry.id).sort();
    assert.deepEqual(models, ["tiny:base", "tiny:lora", "tiny:muted"]);
  });

  test("applies the scale of the adapter's card", async () => {
    assert.equal(await greedy("tiny:muted"), await greedy("tiny:base"), "scale 0 leaves the base's output");
    const muted = grove.engine.models.find((model) => model.info.digest === digests.muted);
    assert.equal(muted?.info.adapters?.[0]?.scale, 0);
  });

  test("embeddings of an adapter fork are refused rather than silently computed without it", async () => {
    await assert.rejects(client.embeddings.create({ model: "tiny:lora", input: "hi" }), (error: any) => error.status === 400);
    const embedded = await client.embeddings.create({ model: "tiny:base", input: "hi" });
    assert.equal(embedded.data.length, 1);
  });
});
