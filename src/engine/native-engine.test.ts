import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EngineError, InvalidModelFileError, InvalidRequestError } from "../core/errors.js";
import { createTestModel, type TestModel } from "../test-support/grove-fixture.js";
import type { GenerateDone, GenerateEvent, GenerateOptions, LoadedModel } from "./engine.js";
import { defaultThreadCount, NativeEngine, SINGLE_THREAD_BELOW_BYTES } from "./native-engine.js";

// Grove's own decode loop against a real generated model: the loop, the worker protocol, the
// sampler chain, prefix reuse, n choices sharing a prompt, log-probabilities and embeddings.

let testModel: TestModel;
let engine: NativeEngine;
let model: LoadedModel;

before(async () => {
  testModel = await createTestModel("test-tiny", 7);
  engine = await NativeEngine.create({ models: [], threads: 1, slots: 4, contextSize: 512, gpu: false });
  model = await engine.load({ id: "tiny", path: testModel.path, digest: `sha256:${"0".repeat(64)}` });
});

after(async () => {
  await engine?.close();
  await testModel?.cleanup();
});

async function run(options: Partial<GenerateOptions> & { promptTokens: readonly number[] }): Promise<{ texts: string[]; done: GenerateDone[]; events: GenerateEvent[] }> {
  const events: GenerateEvent[] = [];
  for await (const event of model.generate({ maxTokens: 16, temperature: 0, ...options })) events.push(event);
  const texts: string[] = [];
  for (const event of events) if (event.type === "text") texts[event.choice ?? 0] = (texts[event.choice ?? 0] ?? "") + event.text;
  return { texts, done: events.filter((event): event is GenerateDone => event.type === "done"), events };
}

const prompt = () => model.applyChatTemplate([{ role: "user", content: "Tell me about the grove by the river." }]);

describe("NativeEngine", () => {
  it("small models decode on one thread, large ones on every core", () => {
    assert.equal(defaultThreadCount(11_000_000, 2), 1);
    assert.equal(defaultThreadCount(SINGLE_THREAD_BELOW_BYTES - 1, 8), 1);
    assert.equal(defaultThreadCount(SINGLE_THREAD_BELOW_BYTES, 8), 8);
    assert.equal(defaultThreadCount(2_200_000_000, 0), 1);
  });

  it("reports the model and renders its ChatML template with special tokens", () => {
    assert.equal(model.info.slots, 4);
    assert.equal(model.info.contextSize, 512);
    assert.equal(model.info.trainContextSize, 1024);
    assert.ok(model.info.vocabularySize > 256);
    assert.ok(model.info.embeddingSize > 0);
    const tokens = prompt();
    assert.equal(model.tokenize("<|im_start|>", { special: true }).length, 1);
    assert.ok(model.tokenize("<|im_start|>").length > 1, "without special, the marker is spelt out");
    assert.equal(tokens.filter((token) => token === model.tokenize("<|im_start|>", { special: true })[0]).length, 2);
    assert.equal(model.detokenize(model.tokenize("the grove by the river")), "the grove by the river");
  });

  it("greedy decoding is reproducible, honours max_tokens, and counts what it generated", async () => {
    const first = await run({ promptTokens: prompt(), maxTokens: 12, ignoreEos: true });
    const second = await run({ promptTokens: prompt(), maxTokens: 12, ignoreEos: true });
    assert.equal(first.texts[0], second.texts[0]);
    assert.equal(first.done[0]!.finishReason, "length");
    assert.equal(first.done[0]!.completionTokens, 12);
    assert.equal(first.done[0]!.promptTokens, prompt().length);
    // The second request found its prompt in a slot: all but the last token were reused.
    assert.equal(second.done[0]!.cachedTokens, prompt().length - 1);
    assert.ok(first.done[0]!.timeToFirstTokenMs <= first.done[0]!.totalMs);
  });

  it("a seed makes sampling reproducible; another seed usually differs", async () => {
    const sample = (seed: number) => run({ promptTokens: prompt(), maxTokens: 24, temperature: 1.5, seed, ignoreEos: true });
    const [a, b, c] = await Promise.all([sample(1), sample(1), sample(2)]);
    assert.equal(a.texts[0], b.texts[0]);
    assert.notEqual(a.texts[0], c.texts[0]);
  });

  it("stop strings end the text before them; logit bias can force a token", async () => {
    const free = await run({ promptTokens: prompt(), maxTokens: 16, ignoreEos: true });
    const text = free.texts[0]!;
    const stop = text.slice(4, 6);
    const stopped = await run({ promptTokens: prompt(), maxTokens: 16, ignoreEos: true, stop: [stop] });
    assert.equal(stopped.texts[0] ?? "", text.slice(0, text.indexOf(stop)));
    assert.equal(stopped.done[0]!.finishReason, "stop");
    const forced = model.tokenize(" grove")[0]!;
    const biased = await run({ promptTokens: prompt(), maxTokens: 4, ignoreEos: true, logitBias: new Map([[forced, 100]]) });
    assert.equal(biased.texts[0], model.detokenize([forced, forced, forced, forced]));
  });

  it("n choices share one evaluated prompt and each end with their own done", async () => {
    const result = await run({ promptTokens: prompt(), maxTokens: 8, temperature: 1.2, seed: 5, n: 3, ignoreEos: true });
    assert.deepEqual(result.done.map((done) => done.choice).sort(), [0, 1, 2]);
    assert.equal(result.texts.length, 3);
    for (const done of result.done) assert.equal(done.completionTokens, 8);
    assert.equal(new Set(result.texts).size > 1, true, "differently seeded choices");
    await assert.rejects(run({ promptTokens: prompt(), n: 5 }), InvalidRequestError);
  });

  it("log-probabilities: each generated token's, its alternatives (the greedy pick first), and the prompt's", async () => {
    const result = await run({ promptTokens: prompt(), maxTokens: 4, ignoreEos: true, logprobs: 3, promptLogprobs: true });
    const logprobs = result.events.flatMap((event) => (event.type === "text" ? (event.logprobs ?? []) : []));
    assert.equal(logprobs.length, 4);
    for (const entry of logprobs) {
      assert.ok(entry.logprob! <= 0);
      assert.equal(entry.top.length, 3);
      assert.equal(entry.top[0]!.token, entry.token, "greedy: the chosen token is the most likely");
      assert.ok(entry.top[0]!.logprob >= entry.top[1]!.logprob);
    }
    const scored = result.done[0]!.promptLogprobs!;
    assert.equal(scored.length, prompt().length);
    assert.equal(scored[0]!.logprob, null);
    assert.ok(scored.slice(1).every((entry) => entry.logprob! <= 0 && entry.top.length === 3));
    assert.equal(result.done[0]!.cachedTokens, 0, "scoring evaluates the whole prompt");
  });

  it("JSON schema output parses and follows the schema", async () => {
    const schema = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name", "age"] };
    await model.prepareJsonGrammar(schema);
    const result = await run({ promptTokens: prompt(), maxTokens: 200, temperature: 0.8, seed: 3, json: schema });
    const value = JSON.parse(result.texts[0]!) as { name: unknown; age: unknown };
    assert.equal(typeof value.name, "string");
    assert.ok(Number.isInteger(value.age));
  });

  it("a cancelled generation ends as aborted and frees its slot", async () => {
    const controller = new AbortController();
    let chunks = 0;
    let done: GenerateDone | undefined;
    for await (const event of model.generate({ promptTokens: prompt(), maxTokens: 400, temperature: 0, ignoreEos: true, signal: controller.signal })) {
      if (event.type === "text" && ++chunks === 2) controller.abort();
      if (event.type === "done") done = event;
    }
    assert.equal(done?.finishReason, "aborted");
    assert.ok(done!.completionTokens < 400);
    for (let attempt = 0; attempt < 100 && model.stats().slotsBusy > 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(model.stats().slotsBusy, 0);
  });

  it("eight streams at once over four slots all finish, and every slot comes back", async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, index) => run({ promptTokens: model.tokenize(`stream ${index} of the grove`), maxTokens: 20, ignoreEos: true })));
    for (const result of results) assert.equal(result.done[0]!.completionTokens, 20);
    assert.equal(model.stats().slotsBusy, 0);
    assert.ok(model.stats().finished.length >= 8);
  });

  it("embeddings: one vector per input, the model's width, deterministic", async () => {
    const { vectors, promptTokens } = await model.embed(["the grove", "the river", "the grove"]);
    assert.equal(vectors.length, 3);
    assert.equal(vectors[0]!.length, model.info.embeddingSize);
    assert.deepEqual(vectors[0], vectors[2]);
    assert.notDeepEqual(vectors[0], vectors[1]);
    assert.equal(promptTokens, model.tokenize("the grove").length * 2 + model.tokenize("the river").length);
    await assert.rejects(model.embed([""]), InvalidRequestError);
  });

  it("refuses prompts that do not fit or hold tokens outside the vocabulary", async () => {
    await assert.rejects(run({ promptTokens: [] }), InvalidRequestError);
    await assert.rejects(run({ promptTokens: prompt(), maxTokens: 600 }), /context holds 512 tokens/);
    await assert.rejects(run({ promptTokens: [1, model.info.vocabularySize + 5] }), InvalidRequestError);
  });

  it("refuses files that are not models, before llama.cpp sees them", async () => {
    await assert.rejects(engine.load({ id: "nope", path: new URL(import.meta.url).pathname, digest: `sha256:${"1".repeat(64)}` }), (error: unknown) => error instanceof InvalidModelFileError || error instanceof EngineError);
  });
});
