import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EngineError } from "../core/errors.js";
import { createTestModel, type TestModel } from "../test-support/grove-fixture.js";
import { CONTEXT_EXCEEDED_MESSAGE } from "./decode-loop.js";
import type { GenerateDone, GenerateEvent, GenerateOptions, GenerateProgress, LoadedModel, TokenLogprob } from "./engine.js";
import { NativeEngine } from "./native-engine.js";

// Three behaviours of llama-server's slots that Grove's decode loop copies, on a real generated
// model: probabilities after the sampler chain (`post_sampling_probs`), prompt progress reports
// (`return_progress`), and one KV cache shared by all slots (`--kv-unified`).

let testModel: TestModel;
let engine: NativeEngine;
let unifiedEngine: NativeEngine;
let model: LoadedModel;
let unified: LoadedModel;

before(async () => {
  testModel = await createTestModel("test-tiny", 11);
  // A small batch, so a prompt takes several steps and each reports its progress.
  engine = await NativeEngine.create({ models: [], threads: 1, slots: 2, contextSize: 512, batchSize: 16, prefillChunk: 16, gpu: false });
  model = await engine.load({ id: "tiny", path: testModel.path, digest: `sha256:${"0".repeat(64)}` });
  // llama.cpp pads a context to 256 cells: 256 is then exactly the shared cache's size.
  unifiedEngine = await NativeEngine.create({ models: [], threads: 1, slots: 2, contextSize: 256, unifiedKv: true, gpu: false });
  unified = await unifiedEngine.load({ id: "tiny-unified", path: testModel.path, digest: `sha256:${"1".repeat(64)}` });
});

after(async () => {
  await engine?.close();
  await unifiedEngine?.close();
  await testModel?.cleanup();
});

async function run(on: LoadedModel, options: Partial<GenerateOptions> & { promptTokens: readonly number[] }) {
  const events: GenerateEvent[] = [];
  for await (const event of on.generate({ maxTokens: 8, temperature: 0, ...options })) events.push(event);
  return {
    events,
    tokens: events.flatMap((event) => (event.type === "text" ? [...(event.tokens ?? [])] : [])),
    logprobs: events.flatMap((event): TokenLogprob[] => (event.type === "text" ? [...(event.logprobs ?? [])] : [])),
    progress: events.filter((event): event is GenerateProgress => event.type === "progress"),
    done: events.filter((event): event is GenerateDone => event.type === "done"),
  };
}

const prompt = (text = "Tell me about the grove by the river and the birds that live there.") => model.tokenize(text, { addSpecial: true });

describe("post-sampling probabilities", () => {
  it("are the distribution left after the chain: at most top_k candidates, none of probability 0, summing to 1", async () => {
    const result = await run(model, { promptTokens: prompt(), maxTokens: 6, temperature: 1, topK: 5, seed: 9, ignoreEos: true, logprobs: 10, postSamplingProbs: true });
    assert.equal(result.logprobs.length, 6);
    for (const entry of result.logprobs) {
      assert.ok(entry.top.length >= 1 && entry.top.length <= 5, `top-k 5 leaves at most 5, got ${entry.top.length}`);
      const probabilities = entry.top.map((top) => Math.exp(top.logprob));
      assert.ok(probabilities.every((p) => p > 0 && p <= 1));
      assert.ok(probabilities.every((p, index) => index === 0 || p <= probabilities[index - 1]!), "best first");
      // Fewer than asked: what came is the whole distribution.
      assert.ok(Math.abs(probabilities.reduce((sum, p) => sum + p, 0) - 1) < 1e-5);
      assert.ok(entry.top.some((top) => top.token === entry.token), "the sampled token is a candidate");
      assert.ok(Math.exp(entry.logprob!) > 0);
    }
  });

  it("draw the same tokens as plain sampling with the same seed; greedy gives its pick probability 1", async () => {
    const options = { promptTokens: prompt("The birds of the grove"), maxTokens: 10, temperature: 0.9, topK: 40, topP: 0.95, minP: 0.05, seed: 4242, ignoreEos: true, logprobs: 3 };
    const [post, raw] = await Promise.all([run(model, { ...options, postSamplingProbs: true }), run(model, options)]);
    assert.deepEqual(post.tokens, raw.tokens);
    // The raw logits' alternatives are never cut to zero; after the chain they may be.
    assert.ok(raw.logprobs.every((entry) => entry.top.length === 3));
    const greedy = await run(model, { promptTokens: prompt(), maxTokens: 3, ignoreEos: true, logprobs: 5, postSamplingProbs: true });
    for (const entry of greedy.logprobs) {
      assert.equal(entry.logprob, 0);
      assert.deepEqual(entry.top.map((top) => [top.token, top.logprob]), [[entry.token, 0]]);
    }
  });
});

describe("prompt progress", () => {
  it("reports the start, then each step's share of the prompt; a repeated prompt starts from its cache", async () => {
    const tokens = prompt("One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty.");
    assert.ok(tokens.length > 32, "a prompt of several 16-token batches");
    const first = await run(model, { promptTokens: tokens, maxTokens: 2, progress: true });
    assert.equal(first.progress.length, 1 + Math.ceil(tokens.length / 16));
    assert.deepEqual(first.progress.map((report) => report.processed), [0, ...Array.from({ length: Math.ceil(tokens.length / 16) }, (_, index) => Math.min(tokens.length, (index + 1) * 16))]);
    assert.ok(first.progress.every((report) => report.total === tokens.length && report.cache === 0 && report.timeMs >= 0));
    // Every report comes before the first text.
    assert.ok(first.events.findIndex((event) => event.type === "text") > first.events.findLastIndex((event) => event.type === "progress"));
    const again = await run(model, { promptTokens: tokens, maxTokens: 2, progress: true });
    assert.deepEqual(again.progress.map((report) => [report.cache, report.processed]), [[tokens.length - 1, tokens.length - 1], [tokens.length - 1, tokens.length]]);
    const quiet = await run(model, { promptTokens: tokens, maxTokens: 2 });
    assert.equal(quiet.progress.length, 0, "only when asked");
  });
});

describe("one KV cache shared by the slots", () => {
  it("lets one slot use the whole context", async () => {
    assert.equal(unified.info.contextSize, 256);
    assert.equal(unified.info.unifiedKv, true);
    const tokens = unified.tokenize("A", { addSpecial: true });
    const result = await run(unified, { promptTokens: tokens, maxTokens: 256 - tokens.length, ignoreEos: true });
    assert.equal(result.done[0]!.completionTokens, 256 - tokens.length);
  });

  it("drops an idle slot's cache when the shared one is full, so a long generation beside a finished one completes", async () => {
    const tokens = unified.tokenize("A", { addSpecial: true });
    // 60 + 220 cells do not fit in 256 together: the finished one's cache is dropped for the other.
    const [short, long] = await Promise.all([
      run(unified, { promptTokens: tokens, maxTokens: 60, ignoreEos: true }),
      run(unified, { promptTokens: unified.tokenize("B", { addSpecial: true }), maxTokens: 220, ignoreEos: true }),
    ]);
    assert.equal(short.done[0]!.completionTokens, 60);
    assert.equal(long.done[0]!.completionTokens, 220);
  });

  it("fails every running generation clearly when the running ones fill it, and serves on afterwards", async () => {
    const tokens = unified.tokenize("A", { addSpecial: true });
    const outcomes = await Promise.allSettled([
      run(unified, { promptTokens: tokens, maxTokens: 200, ignoreEos: true }),
      run(unified, { promptTokens: unified.tokenize("B", { addSpecial: true }), maxTokens: 200, ignoreEos: true }),
    ]);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      const reason = (outcome as PromiseRejectedResult).reason as Error;
      assert.ok(reason instanceof EngineError);
      assert.match(reason.message, new RegExp(CONTEXT_EXCEEDED_MESSAGE.replace(".", "\\.")));
    }
    assert.equal(unified.stats().slotsBusy, 0);
    const after = await run(unified, { promptTokens: tokens, maxTokens: 4, ignoreEos: true });
    assert.equal(after.done[0]!.completionTokens, 4);
  });
});
