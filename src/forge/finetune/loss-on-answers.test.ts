import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EvalContext, freeEvalModel, loadEvalModel, logSumExp } from "../../bench/quality/libllama-eval.js";
import { InvalidRequestError } from "../../core/errors.js";
import { generateModel } from "../generate/generate-model.js";
import { JobStore } from "../jobs/job-store.js";
import { ModelStore } from "../../store/model-store.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { recipeOf } from "../recipe/recipe.js";
import { tokenizeRecords } from "./tokenize-records.js";
import { createFinetuneJob, runFinetuneJob, type FinetuneRequest } from "./finetune-job.js";

const WORDS = ["oak", "run", "green", "slowly", "under", "river", "sing", "tall", "and", "stone"];

/** Each position's loss, -log p(next token), from llama.cpp's own forward pass over `tokens`. */
async function positionLosses(modelPath: string, tokens: Int32Array): Promise<number[]> {
  const model = await loadEvalModel(modelPath);
  const context = await EvalContext.create(model, { contextSize: tokens.length, batchSize: tokens.length, ubatchSize: tokens.length, threads: 1 });
  try {
    const count = tokens.length;
    context.decode(tokens, Array.from({ length: count }, (_, index) => index), new Array<number>(count).fill(0), new Array<boolean>(count).fill(true));
    const logits = context.logitRows(0, count);
    const vocabulary = model.vocabularySize;
    return Array.from({ length: count - 1 }, (_, position) => logSumExp(logits, position * vocabulary, vocabulary) - logits[position * vocabulary + tokens[position + 1]!]!);
  } finally {
    context.dispose();
    await freeEvalModel(model);
  }
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

describe("fine-tuning with the loss on answers (ggml trainer)", () => {
  let base: TestModel;
  let store: ModelStore;
  let jobs: JobStore;
  let chat: string;
  let parentPath: string;

  before(async () => {
    base = await createTestModel("test-tiny", 7);
    store = await ModelStore.open(join(base.directory, "home"));
    jobs = new JobStore(store.home);
    // F32, so llama.cpp's forward pass and the trainer's see the same weights.
    parentPath = join(base.directory, "tiny-f32.gguf");
    await generateModel({ preset: "test-tiny", seed: 7, dtype: "f32", outPath: parentPath });
    await store.importFile(parentPath, { name: "tiny:f32" });
    chat = join(base.directory, "chat.jsonl");
    const records = Array.from({ length: 40 }, (_, index) => {
      const word = WORDS[index % WORDS.length]!;
      return { messages: [{ role: "user", content: `What part of speech is "${word}"?` }, { role: "assistant", content: `"${word}" is a ${index % 2 === 0 ? "noun" : "verb"}.` }] };
    });
    await writeFile(chat, `${records.map((record) => JSON.stringify(record)).join("\n")}\n`);
  });
  after(async () => {
    await store.close();
    await base.cleanup();
  });

  const firstStepLoss = async (request: Omit<FinetuneRequest, "model" | "data">): Promise<{ loss: number; tokens: Int32Array; mask: Uint8Array | null }> => {
    // In the file's order: the first window this test reads by hand, where the candidate means
    // are far enough apart to tell (a shuffled window can hold them within the tolerance).
    const job = await createFinetuneJob(store, jobs, { model: "tiny:f32", data: chat, epochs: 1, threads: 1, validationSplit: 0, shuffle: false, ...request });
    const directory = jobs.directoryOf(job.id);
    const tokenBytes = await readFile(join(directory, "tokens.bin"));
    const mask = await readFile(join(directory, "loss-mask.bin")).catch(() => null);
    let loss = Number.NaN;
    await runFinetuneJob(store, jobs, job.id, { onEvent: (event) => void (event.event === "step" && event.step === 1 && (loss = event.loss)) });
    return { loss, tokens: new Int32Array(tokenBytes.buffer, tokenBytes.byteOffset, tokenBytes.length / 4), mask: mask === null ? null : new Uint8Array(mask) };
  };

  test("the first step's loss is the mean over the answer tokens of the window only, computed here from llama.cpp's logits", async (t) => {
    const answers = await firstStepLoss({});
    assert.ok(answers.mask !== null, "chat records with the default loss on answers write a mask");
    const n = 256;
    const losses = await positionLosses(parentPath, answers.tokens.subarray(0, n + 1));
    const counted = losses.filter((_, position) => answers.mask![position + 1] === 1);
    assert.ok(counted.length > 20 && counted.length < n / 2, `${counted.length} answer tokens in the first window`);
    const [overAnswers, overAll] = [mean(counted), mean(losses)];
    // The three candidates differ by more than the tolerance: a test that can tell them apart.
    const tolerance = 2e-3 * overAnswers;
    assert.ok(Math.abs(overAnswers - overAll) > 3 * tolerance, `answers ${overAnswers} vs all ${overAll}`);
    assert.ok(Math.abs(answers.loss - overAnswers) < tolerance, `ggml's masked loss ${answers.loss} vs the mean over answer tokens ${overAnswers} (over all: ${overAll}; sum over answers / n: ${(overAnswers * counted.length) / n})`);

    t.diagnostic(`masked ${answers.loss.toFixed(5)}, mean over ${counted.length} answer tokens ${overAnswers.toFixed(5)}, over all ${n} ${overAll.toFixed(5)}, sum over answers / n ${((overAnswers * counted.length) / n).toFixed(5)}`);
    const all = await firstStepLoss({ lossOn: "all" });
    assert.equal(all.mask, null);
    assert.ok(Math.abs(all.loss - overAll) < tolerance, `--loss-on all: ${all.loss} vs the mean over every token ${overAll}`);
  });

  test("the recipe records the loss on answers; a rebuild of a recipe without it trains on every token", async () => {
    const job = await createFinetuneJob(store, jobs, { model: "tiny:f32", data: chat, epochs: 1, threads: 1, name: "tiny:answers" });
    await runFinetuneJob(store, jobs, job.id);
    assert.equal((await recipeOf(store, "tiny:answers")).parameters["lossOn"], "answers");
    const allJob = await createFinetuneJob(store, jobs, { model: "tiny:f32", data: chat, epochs: 1, threads: 1, lossOn: "all", name: "tiny:all" });
    await runFinetuneJob(store, jobs, allJob.id);
    assert.equal((await recipeOf(store, "tiny:all")).parameters["lossOn"], undefined);
  });

  test("a chat fine-tune with the loss on answers learns the answers and not to echo the question", async (t) => {
    const train = async (lossOn: "answers" | "all"): Promise<string> => {
      const job = await createFinetuneJob(store, jobs, { model: "tiny:f32", data: chat, epochs: 3, learningRate: 2e-3, threads: 1, lossOn });
      const done = await runFinetuneJob(store, jobs, job.id);
      return (await store.show(done.result!.digest)).path;
    };
    /** Mean loss of `reply` as the assistant's turn after `question` (its tokens and end of turn). */
    const replyLoss = async (modelPath: string, question: string, reply: string): Promise<number> => {
      const record = { kind: "chat" as const, messages: [{ role: "user" as const, content: question }, { role: "assistant" as const, content: reply }] };
      const { tokens, lossMask } = await tokenizeRecords(modelPath, [record], { lossOn: "answers" });
      const losses = await positionLosses(modelPath, tokens);
      return mean(losses.filter((_, position) => lossMask![position + 1] === 1));
    };
    const question = 'What part of speech is "river"?';
    const answer = '"river" is a verb.';
    const scores: Record<string, { echo: number; answer: number }> = {};
    for (const [label, path] of [["parent", parentPath], ["answers", await train("answers")], ["all", await train("all")]] as const) {
      scores[label] = { echo: await replyLoss(path, question, question), answer: await replyLoss(path, question, answer) };
    }
    t.diagnostic(JSON.stringify(scores));
    const { parent, answers, all } = scores as Record<"parent" | "answers" | "all", { echo: number; answer: number }>;
    assert.ok(answers.answer < parent.answer / 2, "the answer is learnt");
    // Measured: with the loss on every token the question itself became likelier as a reply than
    // the answer (the echo: loss 1.65 for the echo, 1.92 for the answer); on answers only
    // the echo stays near the parent's (5.6 against 6.3) while the answer is learnt (1.44).
    assert.ok(answers.echo > all.echo * 2, "training on the question makes echoing it likely; training on answers does not");
    assert.ok(answers.echo > answers.answer * 2, "the answer is far likelier than an echo of the question");
  });

  test("bad values are refused before a job exists", async () => {
    const jobsBefore = (await jobs.list()).length;
    const cases: [Omit<FinetuneRequest, "model" | "data">, RegExp][] = [
      [{ lossOn: "prompt" as "all" }, /loss-on must be answers or all, got prompt/],
      [{ lossOn: "answers", trainer: "llama.cpp" }, /loss-on answers needs the ggml trainer: llama\.cpp's llama_opt_epoch writes a one-hot label for every token/],
    ];
    for (const [request, pattern] of cases) {
      await assert.rejects(createFinetuneJob(store, jobs, { model: "tiny:f32", data: chat, ...request }), (error: unknown) => error instanceof InvalidRequestError && pattern.test(error.message), String(pattern));
    }
    // A long question with its short answer past the last window: no window has anything to learn.
    const late = join(base.directory, "late-answer.jsonl");
    await writeFile(late, `${JSON.stringify({ messages: [{ role: "user", content: "Which word is the noun? ".repeat(60) }, { role: "assistant", content: "Tree." }] })}\n`);
    await assert.rejects(
      createFinetuneJob(store, jobs, { model: "tiny:f32", data: late, validationSplit: 0 }),
      (error: unknown) => error instanceof InvalidRequestError && /0 training and 0 validation windows hold an assistant token/.test(error.message),
    );
    await createFinetuneJob(store, jobs, { model: "tiny:f32", data: late, validationSplit: 0, lossOn: "all" }).then((job) => jobs.remove(job.id));
    assert.equal((await jobs.list()).length, jobsBefore, "no job created");
  });
});
