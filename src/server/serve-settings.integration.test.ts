import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../core/errors.js";
import type { RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { runCli, runCliInProcess } from "../test-support/run-cli.js";

// llama-server's serving flags that mean something in Grove (issue 18: its test suite starts its
// server with them): --seed, --alias, a batch as small as 16, and its /completions path.

let model: TestModel;
let seeded: RunningGrove;
let unseeded: RunningGrove;
let aliased: RunningGrove;

const post = async (server: RunningGrove, path: string, body: unknown) => {
  const response = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as any };
};
const props = async (server: RunningGrove) => (await (await fetch(`${server.url}/props`)).json()) as any;

before(async () => {
  model = await createTestModel();
  const at = (name: string): TestModel => ({ ...model, directory: join(model.directory, name) });
  seeded = await startTestGrove(at("seeded"), { contextSize: 256, parallel: 2, batchSize: 16, ubatchSize: 16, seed: 42 });
  unseeded = await startTestGrove(at("unseeded"), { contextSize: 256, parallel: 1 });
  aliased = await startTestGrove(at("aliased"), { contextSize: 256, parallel: 1, alias: "tinyllama-2,fim,code" });
});

after(async () => {
  await seeded?.close();
  await unseeded?.close();
  await aliased?.close();
  await model?.cleanup();
});

describe("--seed", () => {
  test("seeds every generation that sets no seed, as /props says; a request's own seed still wins", async () => {
    assert.equal((await props(seeded)).default_generation_settings.params.seed, 42);
    assert.equal((await props(unseeded)).default_generation_settings.params.seed, -1);
    const ask = (server: RunningGrove, extra: Record<string, unknown> = {}) =>
      post(server, "/completion", { prompt: "Once upon a time", n_predict: 12, temperature: 1, top_k: 0, top_p: 1, min_p: 0, ...extra });
    const first = await ask(seeded);
    const second = await ask(seeded);
    assert.equal(first.status, 200);
    assert.equal(first.json.content, second.json.content, "the same request gives the same text");
    const chat = (server: RunningGrove, seed?: number) =>
      post(server, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 12, temperature: 1, ...(seed === undefined ? {} : { seed }) });
    assert.equal((await chat(seeded)).json.choices[0].message.content, (await chat(seeded, 42)).json.choices[0].message.content, "the OpenAI routes too: no seed means 42");
    // Without --seed, each request draws its own: 12 tokens at temperature 1 from a random model agree by chance ~never.
    assert.notEqual((await ask(unseeded)).json.content, (await ask(unseeded)).json.content);
    assert.notEqual((await ask(seeded, { seed: 7 })).json.content, first.json.content);
  });
});

describe("--alias", () => {
  test("the model answers every alias and is listed under the first in alphabetical order, as llama-server lists it", async () => {
    const models = (await (await fetch(`${aliased.url}/v1/models`)).json()) as any;
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0].id, "code");
    assert.deepEqual(models.data[0].aliases, ["code", "fim", "tinyllama-2"]);
    assert.equal((await props(aliased)).model_alias, "code");
    for (const name of ["code", "fim", "tinyllama-2"]) {
      const answer = await post(aliased, "/v1/chat/completions", { model: name, messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
      assert.equal(answer.status, 200, name);
      assert.equal(answer.json.model, name);
    }
    const other = await post(aliased, "/v1/chat/completions", { model: "test-tiny-s7", messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
    assert.equal(other.status, 404, "the file's own name is replaced");
  });

  test("names a --model FILE only: a store model keeps its names", async () => {
    await assert.rejects(
      startTestGrove({ ...model, directory: join(model.directory, "store") }, { model: "tiny:none", alias: "x" }),
      (error: unknown) => error instanceof ConfigError && /--alias/.test(error.message),
    );
  });
});

describe("--batch-size", () => {
  test("16 serves (llama.cpp takes any batch); below the slots it is refused, naming both", async () => {
    const answer = await post(seeded, "/completion", { prompt: "a ".repeat(40), n_predict: 4 });
    assert.equal(answer.status, 200, "a 41-token prompt in batches of 16");
    assert.equal(answer.json.tokens_evaluated > 16, true);
    await assert.rejects(
      startTestGrove({ ...model, directory: join(model.directory, "small-batch") }, { contextSize: 256, parallel: 4, batchSize: 2 }),
      (error: unknown) => error instanceof Error && /--batch-size 2 is below the 4 slots/.test(error.message),
    );
  });
});

describe("/completions", () => {
  test("is llama-server's /completion (its clients read `content`); /v1/completions stays OpenAI's", async () => {
    const native = await post(seeded, "/completions", { prompt: "hi", n_predict: 2 });
    assert.equal(native.status, 200);
    assert.equal(typeof native.json.content, "string");
    assert.equal(native.json.choices, undefined);
    const openai = await post(seeded, "/v1/completions", { prompt: "hi", max_tokens: 2 });
    assert.equal(openai.json.object, "text_completion");
  });
});

describe("grove serve's flags", () => {
  test("--help lists them; a bad value exits naming the flag (a negative seed is a value, not a flag)", async () => {
    const help = await runCli("serve", "--help");
    for (const flag of ["--pooling", "--seed", "--alias"]) assert.match(help.stdout, new RegExp(`${flag} <`), flag);
    const seed = await runCliInProcess("serve", "--model", model.path, "--home", join(model.directory, "cli"), "--port", "0", "--seed", "-5");
    assert.equal(seed.code, 1);
    assert.match(seed.stderr, /Invalid value "-5" for seed.*--seed/);
    const pooling = await runCliInProcess("serve", "--model", model.path, "--home", join(model.directory, "cli"), "--port", "0", "--pooling", "rank");
    assert.equal(pooling.code, 1);
    assert.match(pooling.stderr, /--pooling.*no \/rerank/);
  });
});
