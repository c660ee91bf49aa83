import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { generateAdapter } from "../forge/generate/generate-adapter.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { callApi } from "../test-support/post-json.js";

// llama-server's LoRA API over Grove's adapter forks: GET /lora-adapters lists the served base's
// adapter forks, and a request's `lora: [{id, scale}]` runs the base with them (llama-server's
// tools/server/tests/unit/test_lora.py, whose adapter cannot be downloaded here). A fork at scale
// 1 must answer exactly what the fork asked by name answers (greedy), at 0 what the base answers.

let directory: string;
let grove: RunningGrove;
let client: OpenAI;
const PROMPT = "the river and the stone";

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-lora-api-"));
  const home = join(directory, "home");
  const base = await generateModel({ preset: "small", seed: 7, outPath: join(directory, "base.gguf") });
  const other = await generateModel({ preset: "small", seed: 8, outPath: join(directory, "other.gguf") });
  const store = await ModelStore.open(home);
  await store.importFile(base.path, { name: "small:base" });
  await store.importFile(other.path, { name: "small:other" });
  for (const [index, name] of ["small:a0", "small:a1"].entries()) {
    const adapter = await generateAdapter({ basePath: base.path, seed: 100 + index, rank: 8, strong: true, outPath: join(directory, `a${index}.gguf`) });
    await store.importFile(adapter.path, { name, base: "small:base" });
  }
  // An adapter of another base: never in small:base's list.
  const foreign = await generateAdapter({ basePath: other.path, seed: 200, rank: 8, strong: true, outPath: join(directory, "foreign.gguf") });
  await store.importFile(foreign.path, { name: "small:foreign", base: "small:other" });
  await store.close();
  grove = await startGrove(loadConfig({ env: {}, flags: { home, model: "small:base", port: 0, threads: 1, parallel: 4, contextSize: 128, logLevel: "silent" } }));
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

const api = (path: string, body?: unknown, key?: string) => callApi(grove.url, path, { ...(body === undefined ? {} : { body }), ...(key === undefined ? {} : { key }) });

/** `/completion`'s greedy text for the prompt, with `extra` fields (`model`, `lora`). */
async function complete(extra: Record<string, unknown>): Promise<string> {
  const answer = await api("/completion", { prompt: PROMPT, n_predict: 12, temperature: 0, seed: 1, ...extra });
  assert.equal(answer.status, 200, answer.text);
  return answer.json.content as string;
}

describe("llama-server's LoRA adapters over adapter forks", () => {
  const byName: Record<string, string> = {};
  /** The admin key the key test makes; later tests send it. */
  let rootKey: string;

  test("GET /lora-adapters lists the served base's adapter forks, oldest first, at scale 0", async () => {
    const listed = await api("/lora-adapters");
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json, [
      { id: 0, path: "small:a0", scale: 0 },
      { id: 1, path: "small:a1", scale: 0 },
    ]);
    // Another model by ?model= (llama-server's router mode): small:other has its own list.
    assert.deepEqual((await api("/lora-adapters?model=small:other")).json, [{ id: 0, path: "small:foreign", scale: 0 }]);
    assert.equal((await api("/lora-adapters?model=nope:nope")).status, 404);
    assert.deepEqual((await api("/props")).json.default_generation_settings.params.lora, []);
  });

  test("lora at scale 1 answers as the fork asked by name, at 0 (or left out) as the base", async () => {
    for (const name of ["small:base", "small:a0", "small:a1"]) byName[name] = await complete({ model: name });
    assert.notEqual(byName["small:a0"], byName["small:base"], "the adapters change the answer (else this test shows nothing)");
    assert.notEqual(byName["small:a1"], byName["small:a0"]);
    assert.equal(await complete({ lora: [{ id: 0, scale: 1 }] }), byName["small:a0"]);
    assert.equal(await complete({ lora: [{ id: 1, scale: 1 }] }), byName["small:a1"]);
    assert.equal(await complete({ lora: [{ id: 0, scale: 0 }] }), byName["small:base"]);
    assert.equal(await complete({ lora: [] }), byName["small:base"]);
    assert.equal(await complete({}), byName["small:base"], "no adapter applies unless a request asks");
    const settings = await api("/completion", { prompt: PROMPT, n_predict: 2, lora: [{ id: 1, scale: 0.5 }] });
    assert.deepEqual(settings.json.generation_settings.lora, [{ id: 1, scale: 0.5 }]);
  });

  test("concurrent requests with different lora each answer with their own mix", async () => {
    const mixes = [[{ id: 0, scale: 1 }], [{ id: 1, scale: 1 }], [], [{ id: 0, scale: 0 }], [{ id: 1, scale: 1 }], [{ id: 0, scale: 1 }]];
    const answers = await Promise.all(mixes.map((lora) => complete({ lora })));
    assert.deepEqual(answers, [byName["small:a0"], byName["small:a1"], byName["small:base"], byName["small:base"], byName["small:a1"], byName["small:a0"]]);
    // A mix of both at half scale is another adapter set: it runs, and differs from the base.
    assert.notEqual(await complete({ lora: [{ id: 0, scale: 0.5 }, { id: 1, scale: 0.5 }] }), byName["small:base"]);
  });

  test("a fork applied through lora stays loaded while the request runs, even when asked to unload", async () => {
    // 48 prompts take turns on 4 slots; the fork is asked to unload at once. Were it not
    // held by the request, the pool would free its adapter (after its 1 s grace) and the prompts
    // still queued would fail.
    const prompts = Array.from({ length: 48 }, () => PROMPT);
    const running = api("/completion", { prompt: prompts, n_predict: 100, temperature: 0, seed: 1, lora: [{ id: 0, scale: 1 }] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const unload = await api("/api/generate", { model: "small:a0", keep_alive: 0 });
    assert.equal(unload.status, 200, unload.text);
    const answer = await running;
    assert.equal(answer.status, 200, answer.text);
    const alone = await complete({ model: "small:a0", n_predict: 100 });
    assert.deepEqual(
      answer.json.map((result: { content: string }) => result.content),
      prompts.map(() => alone),
    );
  });

  test("the OpenAI routes take lora too, through the official client", async () => {
    const asked = (await client.completions.create({ model: "small:base", prompt: PROMPT, max_tokens: 12, temperature: 0, seed: 1, lora: [{ id: 1, scale: 1 }] } as OpenAI.CompletionCreateParamsNonStreaming)).choices[0]!.text;
    assert.equal(asked, byName["small:a1"]);
    const chat = async (model: string, extra: Record<string, unknown> = {}) =>
      (await client.chat.completions.create({ model, messages: [{ role: "user", content: "Name a river." }], max_tokens: 8, temperature: 0, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming)).choices[0]!.message.content;
    assert.equal(await chat("small:base", { lora: [{ id: 0, scale: 1 }] }), await chat("small:a0"));
  });

  test("bad lora is a 400 naming lora; setting global scales is a 501 that says why", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ lora: [{ id: 2, scale: 1 }] }, /lora names adapter 2, and small:base has 2 \(ids 0, 1;/],
      [{ lora: [{ id: 0, scale: 1 }, { id: 0, scale: 0.5 }] }, /names adapter 0 twice/],
      [{ model: "small:a0", lora: [{ id: 0, scale: 1 }] }, /small:a0 is itself an adapter fork/],
      [{ lora: [{ id: 0 }] }, /scale/],
      [{ lora: [{ id: -1, scale: 1 }] }, /lora\.0\.id|lora\[0\]\.id/],
      [{ lora: [{ id: 0, scale: "x" }] }, /scale/],
      [{ lora: { id: 0, scale: 1 } }, /lora/],
      [{ lora: [{ id: 0, scale: 1, path: "/etc/passwd" }] }, /path/],
    ];
    for (const [extra, pattern] of cases) {
      const answer = await api("/completion", { prompt: PROMPT, n_predict: 2, ...extra });
      assert.equal(answer.status, 400, `${JSON.stringify(extra)}: ${answer.text}`);
      assert.match(answer.json.error.message, pattern, JSON.stringify(extra));
    }
    // The other base's adapter is not in the list, and asking small:other lists only its own.
    const other = await callApi(grove.url, "/completion", { body: { model: "small:other", prompt: PROMPT, n_predict: 2, lora: [{ id: 1, scale: 1 }] } });
    assert.equal(other.status, 400);
    assert.match(other.json.error.message, /small:other has 1 \(ids 0;/);
    const global = await api("/lora-adapters", [{ id: 0, scale: 1 }]);
    assert.equal(global.status, 501);
    assert.match(global.json.error.message, /give each request its own lora/);
    assert.equal(await complete({}), byName["small:base"], "nothing changed for the next request");
  });

  test("a key limited to the base reaches no adapter fork through lora", async () => {
    const root = await api("/api/keys", { name: "root", admin: true });
    assert.equal(root.status, 201, root.text);
    rootKey = root.json.secret;
    const limited = await api("/api/keys", { name: "base only", models: ["small:base"] }, root.json.secret);
    assert.equal(limited.status, 201, limited.text);
    const key = limited.json.secret as string;
    const plain = await api("/completion", { prompt: PROMPT, n_predict: 2 }, key);
    assert.equal(plain.status, 200, plain.text);
    const mixed = await api("/completion", { prompt: PROMPT, n_predict: 2, lora: [{ id: 0, scale: 1 }] }, key);
    assert.equal(mixed.status, 403, mixed.text);
    assert.equal(mixed.json.error.param, "model");
    assert.equal((await api("/completion", { prompt: PROMPT, n_predict: 2, lora: [{ id: 0, scale: 0 }] }, key)).status, 200, "scale 0 applies nothing");
    // A fork's other name in the key's list is enough.
    const copied = await api("/api/copy", { source: "small:a1", destination: "small:a1-other" }, root.json.secret);
    assert.equal(copied.status, 200, copied.text);
    const otherName = await api("/api/keys", { name: "a1 by another name", models: ["small:base", "small:a1-other"] }, root.json.secret);
    assert.equal((await api("/completion", { prompt: PROMPT, n_predict: 2, lora: [{ id: 1, scale: 1 }] }, otherName.json.secret)).status, 200);

    // A priced fork is never had at its base's (free) price through lora.
    const fork = await api("/api/models/small:a0", undefined, root.json.secret);
    assert.equal(fork.status, 200, fork.text);
    await grove.gateway.store.setPrice({ modelDigest: fork.json.model.digest, inputPer1m: 1_000_000, outputPer1m: 1_000_000, updatedAt: new Date().toISOString() });
    const before = new Set((await grove.gateway.store.listUsage({})).map((row) => row.requestId));
    assert.equal((await api("/completion", { prompt: PROMPT, n_predict: 2 }, root.json.secret)).status, 200);
    assert.equal((await api("/completion", { prompt: PROMPT, n_predict: 2, lora: [{ id: 0, scale: 1 }] }, root.json.secret)).status, 200);
    const rows = (await grove.gateway.store.listUsage({})).filter((row) => !before.has(row.requestId));
    const costs = rows.map((row) => row.costUsd).sort((a, b) => a - b);
    assert.equal(costs.length, 2);
    assert.equal(costs[0], 0, "the base alone is free");
    assert.ok(costs[1]! > 1, `with the fork applied it costs the fork's price: ${costs[1]}`);
  });

  test("ids stay as given: a fork added later takes the next one, a removed one leaves a gap", async () => {
    const home = join(directory, "home");
    const store = await ModelStore.open(home);
    try {
      const adapter = await generateAdapter({ basePath: join(directory, "base.gguf"), seed: 102, rank: 8, strong: true, outPath: join(directory, "a2.gguf") });
      await store.importFile(adapter.path, { name: "small:a2", base: "small:base" });
      assert.deepEqual((await api("/lora-adapters", undefined, rootKey)).json.map((entry: { id: number; path: string }) => [entry.id, entry.path]), [[0, "small:a0"], [1, "small:a1"], [2, "small:a2"]]);
      await store.remove((await store.resolve("small:a1")).digest, { force: true });
    } finally {
      await store.close();
    }
    assert.deepEqual((await api("/lora-adapters", undefined, rootKey)).json.map((entry: { id: number; path: string }) => [entry.id, entry.path]), [[0, "small:a0"], [2, "small:a2"]]);
    const text = async (extra: Record<string, unknown>) => (await api("/completion", { prompt: PROMPT, n_predict: 12, temperature: 0, seed: 1, ...extra }, rootKey)).json.content;
    assert.equal(await text({ lora: [{ id: 2, scale: 1 }] }), await text({ model: "small:a2" }));
    const gone = await api("/completion", { prompt: PROMPT, n_predict: 2, lora: [{ id: 1, scale: 1 }] }, rootKey);
    assert.equal(gone.status, 400);
    assert.match(gone.json.error.message, /lora names adapter 1, and small:base has 2 \(ids 0, 2;/);
  });
});

describe("llama-server's --lora with a --model FILE", () => {
  const serve = (flags: Record<string, unknown>) =>
    startGrove(loadConfig({ env: {}, flags: { home: join(directory, "file-home"), model: join(directory, "base.gguf"), port: 0, threads: 1, parallel: 2, contextSize: 128, logLevel: "silent", ...flags } }));
  const completeOn = async (server: RunningGrove, extra: Record<string, unknown>): Promise<{ content: string; lora: unknown }> => {
    const answer = await callApi(server.url, "/completion", { body: { prompt: PROMPT, n_predict: 12, temperature: 0, seed: 1, ...extra } });
    assert.equal(answer.status, 200, answer.text);
    return { content: answer.json.content, lora: answer.json.generation_settings.lora };
  };

  test("--lora adapters apply to requests without lora, as llama-server's; lora overrides them; each is also a model", async () => {
    const server = await serve({ lora: join(directory, "a0.gguf"), loraScaled: `${join(directory, "a1.gguf")}:0.5` });
    try {
      const listed = await callApi(server.url, "/lora-adapters");
      assert.deepEqual(listed.json, [
        { id: 0, path: "a0", scale: 1 },
        { id: 1, path: "a1", scale: 0.5 },
      ]);
      const bare = await completeOn(server, { lora: [] });
      const a0 = await completeOn(server, { model: "a0" });
      assert.notEqual(a0.content, bare.content);
      assert.equal((await completeOn(server, { lora: [{ id: 0, scale: 1 }] })).content, a0.content, "lora chooses: a1 left out is not applied");
      const byDefault = await completeOn(server, {});
      assert.deepEqual(byDefault.lora, [{ id: 0, scale: 1 }, { id: 1, scale: 0.5 }], "the startup scales apply");
      assert.equal(byDefault.content, (await completeOn(server, { lora: [{ id: 0, scale: 1 }, { id: 1, scale: 0.5 }] })).content);
      const models = await callApi(server.url, "/v1/models");
      assert.deepEqual(models.json.data.map((model: { id: string }) => model.id).sort(), ["a0", "a1", "base"]);
    } finally {
      await server.close();
    }
  });

  test("--lora-init-without-apply starts them at 0: the base answers until a request asks", async () => {
    const server = await serve({ lora: `${join(directory, "a0.gguf")},${join(directory, "a1.gguf")}`, loraInitWithoutApply: "on" });
    try {
      assert.deepEqual((await callApi(server.url, "/lora-adapters")).json, [
        { id: 0, path: "a0", scale: 0 },
        { id: 1, path: "a1", scale: 0 },
      ]);
      assert.equal((await completeOn(server, {})).content, (await completeOn(server, { lora: [] })).content);
      assert.equal((await completeOn(server, { lora: [{ id: 1, scale: 1 }] })).content, (await completeOn(server, { model: "a1" })).content);
    } finally {
      await server.close();
    }
  });

  test("bad --lora settings stop the start with the reason", async () => {
    await copyFile(join(directory, "base.gguf"), join(directory, "plain.gguf"));
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ lora: join(directory, "missing.gguf") }, /--lora: no file .*missing\.gguf/],
      [{ lora: join(directory, "plain.gguf") }, /plain\.gguf is not an adapter/],
      [{ lora: join(directory, "foreign.gguf") }, /The adapter foreign\.gguf does not fit the base base: the adapter was made for sha256:/],
      [{ lora: join(directory, "base.gguf") }, /'base', a name already taken/],
      [{ lora: `${join(directory, "a0.gguf")},${join(directory, "a0.gguf")}` }, /'a0', a name already taken/],
      [{ loraScaled: join(directory, "a0.gguf") }, /expected FILE:SCALE/],
      [{ loraScaled: `${join(directory, "a0.gguf")}:lots` }, /expected FILE:SCALE/],
      [{ model: "small:base", home: join(directory, "home"), lora: join(directory, "a0.gguf") }, /--lora and --lora-scaled go with a --model FILE/],
    ];
    for (const [flags, pattern] of cases) {
      await assert.rejects(
        async () => {
          const server = await serve(flags);
          await server.close();
        },
        (error: unknown) => pattern.test((error as Error).message),
        JSON.stringify(flags),
      );
    }
  });
});
