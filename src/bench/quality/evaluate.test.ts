import assert from "node:assert/strict";
import { createServer } from "node:http";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { InvalidRequestError } from "../../core/errors.js";
import { CORPUS } from "../../forge/generate/corpus.js";
import { SeededRandom } from "../../forge/generate/seeded-random.js";
import { quantizeFork } from "../../forge/quantize/quantize-fork.js";
import { startGrove } from "../../services.js";
import { loadConfig } from "../../config/config.js";
import { ModelStore } from "../../store/model-store.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { ResultStore } from "../../results/result-store.js";
import { httpBackend, MissingLogprobsError } from "./backends.js";
import { evaluateModel } from "./evaluate.js";
import { runEvalWorker } from "./run-eval-worker.js";
import { readTask, scoreTask } from "./tasks.js";

/**
 * Perplexity by llama-perplexity's method computed here, independently of Grove's evaluator:
 * node-llama-cpp's next-token probabilities, one chunk at a time.
 */
async function referencePerplexity(modelPath: string, text: string, contextSize: number): Promise<number> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize, threads: 1 });
  try {
    const tokens = [model.tokens.bos!, ...model.tokenize(text, false)];
    const first = contextSize / 2;
    const sequence = context.getSequence();
    let nll = 0;
    let count = 0;
    for (let chunk = 0; chunk < Math.floor(tokens.length / contextSize); chunk++) {
      const slice = tokens.slice(chunk * contextSize, (chunk + 1) * contextSize);
      slice[0] = model.tokens.bos!;
      await sequence.clearHistory();
      const outputs = await sequence.controlledEvaluate(
        slice.map((token, index) => (index >= first ? ([token, { generateNext: { probabilities: true } }] as [Token, { generateNext: { probabilities: true } }]) : token)),
      );
      for (let index = first; index < contextSize - 1; index++) {
        const probability = outputs[index]?.next?.probabilities?.get(slice[index + 1]!) ?? 0;
        nll -= Math.log(probability);
        count++;
      }
    }
    return Math.exp(nll / count);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

describe("grove eval: quality through llama.cpp's logits", () => {
  let tiny: TestModel;
  let small: TestModel;
  let store: ModelStore;
  let results: ResultStore;

  before(async () => {
    tiny = await createTestModel("test-tiny", 7);
    small = await createTestModel("small", 3);
    store = await ModelStore.open(join(small.directory, "home"));
    results = await ResultStore.open(store.home);
    await store.importFile(tiny.path, { name: "tiny:f16" });
    await store.importFile(small.path, { name: "small:f16" });
  });
  after(async () => {
    await results.close();
    await store.close();
    await tiny.cleanup();
    await small.cleanup();
  });

  test("perplexity agrees with one computed independently from node-llama-cpp's probabilities, and is stored", async () => {
    const outcome = await evaluateModel(store, results, "tiny:f16", { task: "perplexity", contextSize: 128, threads: 1 });
    const expected = await referencePerplexity(tiny.path, CORPUS, 128);
    const measured = outcome.result.metrics.perplexity!;
    assert.ok(Math.abs(measured - expected) / expected < 1e-3, `Grove ${measured}, reference ${expected}`);
    assert.ok(outcome.result.metrics.bitsPerByte! > 0);
    assert.equal(outcome.reused, false);
    const again = await evaluateModel(store, results, "tiny:f16", { task: "perplexity", contextSize: 128, threads: 1 });
    assert.equal(again.reused, true, "a rerun reuses the stored result");
    assert.equal((await evaluateModel(store, results, "tiny:f16", { task: "perplexity", contextSize: 128, threads: 1, force: true })).reused, false);
  });

  test("KL divergence is 0 for a model against itself and grows from Q8_0 to Q4_0 to Q2_K", async () => {
    const self = await evaluateModel(store, results, "small:f16", { task: "kl-divergence", reference: "small:f16", contextSize: 256, threads: 2 });
    assert.equal(self.result.metrics.klDivergence, 0);
    assert.equal(self.result.metrics.top1Agreement, 1);
    const divergence: number[] = [];
    for (const type of ["Q8_0", "Q4_0", "Q2_K"]) {
      await quantizeFork(store, { model: "small:f16", type, name: `small:${type.toLowerCase()}` });
      const outcome = await evaluateModel(store, results, `small:${type.toLowerCase()}`, { task: "kl-divergence", contextSize: 256, threads: 2 });
      assert.equal(outcome.result.settings.reference, (await store.resolve("small:f16")).digest, "the parent is the default reference");
      divergence.push(outcome.result.metrics.klDivergence!);
    }
    assert.ok(divergence[0]! > 0 && divergence[0]! < divergence[1]! && divergence[1]! < divergence[2]!, `KL Q8_0 ${divergence[0]}, Q4_0 ${divergence[1]}, Q2_K ${divergence[2]}`);
  });

  test("a multiple-choice task built from the model's own greedy continuations scores 1.0; shuffled answers score near chance and are flagged", async () => {
    // Contexts of four words; the model's greedy 3-token continuation of each, kept where it
    // survives the round trip through text (a random model also emits partial UTF-8 bytes).
    const sentences = CORPUS.split(/(?<=[.!?])\s+/).filter((sentence) => sentence.split(" ").length > 6).slice(0, 120);
    const contexts = [...new Set(sentences.map((sentence) => sentence.split(" ").slice(0, 4).join(" ")))];
    const generated = await runEvalWorker<string[]>({ op: "generate", model: tiny.path, contextSize: 256, threads: 1, requests: contexts.map((context) => ({ context, until: [], maxTokens: 3 })) });
    const checked = await runEvalWorker<{ isGreedy: boolean }[]>({ op: "loglikelihood", model: tiny.path, contextSize: 256, threads: 1, requests: contexts.map((context, index) => ({ context, continuation: generated[index]! })) });
    const pairs = contexts.map((context, index) => ({ context, own: generated[index]! })).filter((pair, index) => checked[index]!.isGreedy && pair.own.trim() !== "" && !pair.own.includes("\uFFFD"));
    // Distractors: other contexts' continuations that this model finds less likely here (a random
    // model's greedy path is not always the likeliest text: a shorter one can beat it).
    const candidates = pairs.map((pair, index) => ({ pair, options: [...new Set(pairs.map((other) => other.own).filter((text) => text !== pair.own))].slice(index % 5, (index % 5) + 8) }));
    const scored = await runEvalWorker<{ logLikelihood: number }[]>({
      op: "loglikelihood",
      model: tiny.path,
      contextSize: 256,
      threads: 1,
      requests: candidates.flatMap(({ pair, options }) => [pair.own, ...options].map((continuation) => ({ context: pair.context, continuation }))),
    });
    const random = new SeededRandom(11);
    const docs: { context: string; choices: string[]; right: number }[] = [];
    let at = 0;
    for (const { pair, options } of candidates) {
      const own = scored[at]!.logLikelihood;
      const lower = options.filter((_, index) => scored[at + 1 + index]!.logLikelihood < own).slice(0, 3);
      at += 1 + options.length;
      if (lower.length < 3) continue;
      const right = Math.floor(random.nextFloat() * 4);
      const choices = [...lower];
      choices.splice(right, 0, pair.own);
      docs.push({ context: pair.context, choices, right });
    }
    assert.ok(docs.length >= 20, `enough documents (${docs.length})`);
    const write = async (name: string, answer: (doc: (typeof docs)[number]) => number): Promise<string> => {
      const path = join(tiny.directory, name);
      await writeFile(path, docs.map((doc) => JSON.stringify({ type: "multiple_choice", context: doc.context, choices: doc.choices, answer: answer(doc) })).join("\n"));
      return path;
    };
    const own = await evaluateModel(store, results, "tiny:f16", { task: await write("own.jsonl", (doc) => doc.right), threads: 1 });
    assert.equal(own.result.metrics.acc, 1);
    assert.deepEqual(own.result.flags, []);
    const shuffled = await evaluateModel(store, results, "tiny:f16", { task: await write("shuffled.jsonl", () => Math.floor(random.nextFloat() * 4)), threads: 1 });
    assert.ok(Math.abs(shuffled.result.metrics.acc! - 0.25) < 0.2, `shuffled acc ${shuffled.result.metrics.acc}`);
    assert.deepEqual(shuffled.result.flags, ["not_above_chance"]);

    // Through a server: Grove's own (prompt log-probs with echo) agrees; one without them is refused.
    const grove = await startGrove(loadConfig({ env: {}, flags: { home: join(tiny.directory, "serve-home"), model: tiny.path, port: 0, threads: 1, logLevel: "silent" } }));
    try {
      const task = await readTask(join(tiny.directory, "own.jsonl"));
      const served = await scoreTask(task, httpBackend(`${grove.url}/v1`, "test-tiny-s7"));
      assert.equal(served.metrics.acc, 1);
    } finally {
      await grove.close();
    }
    const bare = createServer((_request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ choices: [{ index: 0, text: "x", logprobs: null, finish_reason: "length" }] }));
    });
    await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = bare.address() as { port: number };
      const task = await readTask(join(tiny.directory, "own.jsonl"));
      await assert.rejects(scoreTask(task, httpBackend(`http://127.0.0.1:${port}/v1`, "m")), (error: unknown) => error instanceof MissingLogprobsError && /no log-probabilities for the prompt/.test(error.message));
    } finally {
      bare.close();
    }
  });

  test("bad input is refused, naming the problem, and nothing is stored", async () => {
    const before = (await results.list()).length;
    const bad = join(tiny.directory, "bad.jsonl");
    await writeFile(bad, '{"type":"multiple_choice","context":"a","choices":["b","c"],"answer":0}\n{"type":"multiple_choice","context":"a","choices":["b"],"answer":0}\n');
    const short = join(tiny.directory, "short.txt");
    await writeFile(short, "Too short.");
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => evaluateModel(store, results, "tiny:f16", { task: "hellaswag" }), /Unknown task 'hellaswag'/],
      [() => evaluateModel(store, results, "tiny:f16", { task: bad }), /bad.jsonl line 2: choices: needs at least 2 choices/],
      [() => evaluateModel(store, results, "tiny:f16", { task: "perplexity", text: short, contextSize: 128 }), /needs at least 256/],
      [() => evaluateModel(store, results, "tiny:f16", { task: "perplexity", text: join(tiny.directory, "none.txt") }), /Cannot read the text/],
      [() => evaluateModel(store, results, "tiny:f16", { task: "kl-divergence" }), /has no parent to compare with/],
      [() => evaluateModel(store, results, "tiny:f16", { task: "perplexity", contextSize: 3 }), /ctx must be/],
      [() => evaluateModel(store, results, "tiny:f16", { task: "kl-divergence", reference: "small:f16", contextSize: 128 }), /different vocabularies/],
    ];
    for (const [attempt, pattern] of cases) await assert.rejects(attempt(), (error: unknown) => error instanceof InvalidRequestError && pattern.test(error.message));
    assert.equal((await results.list()).length, before);
  });
});
