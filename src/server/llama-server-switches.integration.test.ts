import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { postJson } from "../test-support/post-json.js";

// llama-server's per-request switches on the real server, over a generated model:
// `post_sampling_probs` (prob/top_probs after the sampler chain), `return_progress` (prompt
// progress in streams), `backend_sampling` (accepted, changes nothing), on `/completion` and
// `/v1/chat/completions`; `--kv-unified` (one shared cache) and `--backend-sampling` at start-up.

let testModel: TestModel;
let grove: RunningGrove;
let unified: RunningGrove;

const post = (path: string, body: unknown, url = grove.url) => postJson(url, path, body);

/** The JSON events of an SSE answer ([DONE] aside). */
const events = (text: string): any[] =>
  text
    .split("\n\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice(6)));

const PROMPT = "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";

before(async () => {
  testModel = await createTestModel("test-tiny", 13);
  // A 16-token batch: a prompt of some 40 tokens is evaluated in several steps.
  grove = await startTestGrove(testModel, { parallel: 1, contextSize: 256, batchSize: 16, backendSampling: "on" });
  unified = await startTestGrove({ ...testModel, directory: `${testModel.directory}/unified` }, { parallel: 2, contextSize: 256, kvUnified: "on" });
});

after(async () => {
  await grove?.close();
  await unified?.close();
  await testModel?.cleanup();
});

describe("post_sampling_probs", () => {
  test("/completion gives prob and top_probs of the distribution after the chain: none zero, all of it when fewer than asked", async () => {
    const answer = await post("/completion", { prompt: PROMPT, n_predict: 5, n_probs: 10, temperature: 1, top_k: 4, seed: 1, ignore_eos: true, post_sampling_probs: true });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.completion_probabilities.length, 5);
    for (const entry of answer.json.completion_probabilities) {
      assert.ok(!("logprob" in entry) && !("top_logprobs" in entry));
      assert.ok(entry.prob > 0 && entry.prob <= 1);
      assert.ok(entry.top_probs.length >= 1 && entry.top_probs.length <= 4, "top_k 4 leaves at most 4");
      for (const top of entry.top_probs) {
        assert.ok(top.prob > 0 && top.prob <= 1);
        assert.deepEqual(Object.keys(top).sort(), ["bytes", "id", "prob", "token"]);
      }
      const sum = entry.top_probs.reduce((total: number, top: { prob: number }) => total + top.prob, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `fewer than asked: the whole distribution (sum ${sum})`);
    }
    assert.equal(answer.json.generation_settings.post_sampling_probs, true);
  });

  test("backend_sampling changes nothing: the same seed gives the same tokens and probabilities with and without", async () => {
    const ask = (backend: boolean) => post("/completion", { prompt: PROMPT, n_predict: 12, n_probs: 10, seed: 4242, ignore_eos: true, post_sampling_probs: true, backend_sampling: backend });
    const [on, off] = [await ask(true), await ask(false)];
    assert.equal(on.status, 200, on.text);
    assert.deepEqual(on.json.completion_probabilities, off.json.completion_probabilities);
    assert.equal(on.json.content, off.json.content);
  });

  test("chat completions carry llama-server's prob/top_probs in logprobs.content, streaming too", async () => {
    const body = { model: "any", messages: [{ role: "user", content: "hello" }], max_tokens: 4, logprobs: true, top_logprobs: 3, post_sampling_probs: true, temperature: 0.8, top_k: 3, seed: 2 };
    const whole = await post("/v1/chat/completions", { ...body, model: grove.defaultModel });
    assert.equal(whole.status, 200, whole.text);
    const content = whole.json.choices[0].logprobs.content;
    assert.ok(content.length > 0);
    for (const entry of content) {
      assert.ok(entry.prob > 0 && entry.prob <= 1 && typeof entry.id === "number");
      assert.ok(entry.top_probs.length <= 3 && entry.top_probs.every((top: { prob: number }) => top.prob > 0));
    }
    const streamed = events((await post("/v1/chat/completions", { ...body, model: grove.defaultModel, stream: true })).text);
    const streamedContent = streamed.flatMap((chunk) => chunk.choices?.[0]?.logprobs?.content ?? []);
    assert.ok(streamedContent.length > 0 && streamedContent.every((entry: { prob: number; top_probs: unknown[] }) => entry.prob > 0 && Array.isArray(entry.top_probs)));
  });
});

describe("return_progress", () => {
  test("a /completion stream reports the start and every batch of the prompt, then the text; a repeat starts from the cache", async () => {
    const tokens = (await post("/tokenize", { content: PROMPT, add_special: true })).json.tokens.length as number;
    assert.ok(tokens > 32);
    const ask = async () => events((await post("/completion", { prompt: PROMPT, n_predict: 3, stream: true, return_progress: true, ignore_eos: true, temperature: 0 })).text);
    const first = await ask();
    const reports = first.filter((event) => event.prompt_progress).map((event) => event.prompt_progress);
    assert.equal(reports.length, 1 + Math.ceil(tokens / 16));
    assert.deepEqual(reports[0], { ...reports[0], total: tokens, cache: 0, processed: 0 });
    assert.equal(reports.at(-1).processed, tokens);
    assert.ok(reports.every((report: { time_ms: number }) => Number.isInteger(report.time_ms) && report.time_ms >= 0));
    const firstText = first.findIndex((event) => event.content !== "");
    assert.ok(firstText > first.findLastIndex((event) => event.prompt_progress), "progress comes before the text");
    const again = (await ask()).filter((event) => event.prompt_progress).map((event) => [event.prompt_progress.cache, event.prompt_progress.processed]);
    assert.deepEqual(again, [[tokens - 1, tokens - 1], [tokens - 1, tokens]]);
  });

  test("a chat stream carries prompt_progress on chunks that name the role; without the switch, none", async () => {
    const body = { model: grove.defaultModel, messages: [{ role: "user", content: PROMPT }], max_tokens: 2, stream: true };
    const chunks = events((await post("/v1/chat/completions", { ...body, return_progress: true })).text);
    const reports = chunks.filter((chunk) => chunk.prompt_progress);
    assert.ok(reports.length >= 3);
    assert.ok(reports.every((chunk) => chunk.choices[0].delta.role === "assistant"));
    assert.equal(reports.at(-1).prompt_progress.processed, reports.at(-1).prompt_progress.total);
    const quiet = events((await post("/v1/chat/completions", body)).text);
    assert.ok(quiet.every((chunk) => chunk.prompt_progress === undefined));
  });
});

describe("bad switches", () => {
  for (const field of ["return_progress", "post_sampling_probs", "backend_sampling"]) {
    test(`${field} must be a boolean, on /completion and chat`, async () => {
      const native = await post("/completion", { prompt: "hi", n_predict: 1, [field]: "yes" });
      assert.equal(native.status, 400, native.text);
      assert.match(native.json.error.message, new RegExp(field));
      const chat = await post("/v1/chat/completions", { model: grove.defaultModel, messages: [{ role: "user", content: "hi" }], max_tokens: 1, [field]: 1 });
      assert.equal(chat.status, 400, chat.text);
      assert.match(chat.json.error.message, new RegExp(field));
    });
  }
});

describe("--kv-unified", () => {
  test("one slot may use the whole shared context; more than fits at once fails with llama-server's message, and the server serves on", async () => {
    const models = (await (await fetch(`${unified.url}/props`)).json()) as any;
    assert.equal(models.default_generation_settings.n_ctx, 256);
    const long = await post("/completion", { prompt: "A", n_predict: 200, ignore_eos: true }, unified.url);
    assert.equal(long.status, 200, long.text);
    assert.equal(long.json.timings.predicted_n, 200, "beyond 256 / 2 slots");
    const both = await Promise.all([0, 1].map((index) => post("/completion", { prompt: index === 0 ? "A" : "B", n_predict: 200, ignore_eos: true }, unified.url)));
    for (const answer of both) {
      assert.equal(answer.status, 500, answer.text);
      assert.match(answer.json.error.message, /Context size has been exceeded\./);
    }
    const after = await post("/completion", { prompt: "A", n_predict: 4, ignore_eos: true }, unified.url);
    assert.equal(after.json.timings.predicted_n, 4);
  });

  test("a bad GROVE_KV_UNIFIED names the flag and the variable", async () => {
    const { loadConfig } = await import("../config/config.js");
    assert.throws(() => loadConfig({ env: { GROVE_KV_UNIFIED: "maybe" }, flags: { home: "/nonexistent-grove" } }), /--kv-unified.*GROVE_KV_UNIFIED|GROVE_KV_UNIFIED.*--kv-unified/);
    assert.throws(() => loadConfig({ env: { GROVE_BACKEND_SAMPLING: "yes" }, flags: { home: "/nonexistent-grove" } }), /GROVE_BACKEND_SAMPLING/);
  });
});
