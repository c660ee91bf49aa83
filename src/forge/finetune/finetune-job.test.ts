import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { AbortedError, EngineError, InvalidRequestError } from "../../core/errors.js";
import type { JobStore } from "../jobs/job-store.js";
import type { ModelStore } from "../../store/model-store.js";
import { writeTinyLlama } from "../../test-support/gguf-test-fixtures.js";
import type { TestModel } from "../../test-support/grove-fixture.js";
import { createFinetuneFixture, FINETUNE_TEXT } from "../../test-support/finetune-fixture.js";
import { recipeOf } from "../recipe/recipe.js";
import { rebuildFork } from "../recipe/rebuild.js";
import { createFinetuneJob, runFinetuneJob } from "./finetune-job.js";
import { shuffleRecords } from "./training-data.js";

const TEXT = FINETUNE_TEXT;

/** Perplexity of `text` under a model, computed here from node-llama-cpp's next-token probabilities. */
async function perplexity(modelPath: string, text: string): Promise<number> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1 });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 512, threads: 1 });
  try {
    const tokens = model.tokenize(text, false);
    const input = [model.tokens.bos!, ...tokens];
    const outputs = await context.getSequence().controlledEvaluate(input.map((token) => [token, { generateNext: { probabilities: true } }] as [Token, { generateNext: { probabilities: true } }]));
    let logSum = 0;
    for (let index = 0; index < tokens.length; index++) {
      const probability = outputs[index]?.next?.probabilities?.get(tokens[index]!) ?? 0;
      logSum += Math.log(Math.max(probability, 1e-30));
    }
    return Math.exp(-logSum / tokens.length);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

async function filesUnder(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory, { recursive: true })).map(String);
  } catch {
    return [];
  }
}

describe("fine-tuning through llama.cpp's optimizer", () => {
  let base: TestModel;
  let store: ModelStore;
  let jobs: JobStore;
  let dataPath: string;

  before(async () => {
    ({ base, store, jobs, dataPath } = await createFinetuneFixture("test-tiny", "tiny:base"));
  });
  after(async () => {
    await store.close();
    await base.cleanup();
  });

  for (const trainer of ["ggml", "llama.cpp"] as const) {
  test(`${trainer} trainer: training loss falls, the fork serves and its perplexity on the training text is below its parent's`, async () => {
    const name = `tiny:ft-${trainer.replace(".", "")}`;
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 4, learningRate: 2e-3, threads: 1, name, trainer });
    const steps: number[] = [];
    const finished = await runFinetuneJob(store, jobs, job.id, { onEvent: (event) => void (event.event === "step" && !event.validation && steps.push(event.loss)) });
    assert.equal(finished.status, "succeeded");
    const epochs = finished.epochs!;
    assert.equal(epochs.length, 4);
    assert.ok(epochs[3]!.trainLoss < epochs[0]!.trainLoss * 0.7, `loss fell from ${epochs[0]!.trainLoss} to ${epochs[3]!.trainLoss}`);
    assert.ok(epochs.every((epoch) => epoch.validationLoss !== null && Number.isFinite(epoch.validationLoss)));
    assert.ok(steps.length >= 3 && steps.every(Number.isFinite), "every step reports a loss");

    const fork = await store.show(name);
    assert.equal(fork.parents[0]?.relation, "finetune");
    assert.equal(fork.parents[0]?.recipe?.tool, trainer === "ggml" ? "grove ggml-opt" : "llama.cpp llama_opt_epoch");
    assert.deepEqual(fork.parents[0]?.recipe?.inputs, [(await store.resolve("tiny:base")).digest, job.parameters.dataDigest]);
    assert.equal(fork.model.quantization, "F32");
    assert.equal(fork.model.contextLength, (await store.resolve("tiny:base")).contextLength, "the parent's context length, not the training context");
    assert.equal(fork.model.chatTemplate, (await store.resolve("tiny:base")).chatTemplate, "the chat template survives");
    assert.equal((fork.model.card.training as { epochs: unknown[] }).epochs.length, 4);
    const untrained = finished.untrainedTensors ?? [];
    if (trainer === "ggml") {
      // Grove's graph has a backward pass for every tensor.
      assert.deepEqual(untrained, [], "every tensor trained");
    } else {
      // What this llama.cpp's trainer cannot update, found by comparing the fork with its parent:
      // token_embd (a FIXME in llama_opt_init) and each block's attn_k/attn_v (they reach the loss
      // only through the KV cache, which has no backward pass); everything else moved.
      assert.ok(untrained.includes("token_embd.weight") && untrained.includes("blk.0.attn_k.weight") && untrained.includes("blk.0.attn_v.weight"), untrained.join(", "));
      assert.ok(!untrained.some((tensor) => /attn_q|attn_output|ffn_|output\.weight/.test(tensor)), untrained.join(", "));
      assert.deepEqual((fork.model.card.training as { untrainedTensors: string[] }).untrainedTensors, untrained);
    }

    const sample = `${TEXT}Line 1.`;
    const [parentPerplexity, forkPerplexity] = [await perplexity(base.path, sample), await perplexity(fork.path, sample)];
    assert.ok(forkPerplexity < parentPerplexity / 2, `perplexity ${forkPerplexity} (fork) vs ${parentPerplexity} (parent)`);
    assert.deepEqual(await filesUnder(jobs.directoryOf(job.id)), ["job.json"], "working files removed");
  });
  }

  test("Grove's ggml graph computes llama.cpp's loss: the first step of both trainers, same model and data", async () => {
    const first = async (trainer: "ggml" | "llama.cpp"): Promise<number> => {
      const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 1, threads: 1, trainer });
      let loss = Number.NaN;
      await runFinetuneJob(store, jobs, job.id, { onEvent: (event) => void (event.event === "step" && event.step === 1 && !event.validation && (loss = event.loss)) });
      return loss;
    };
    const [ggml, llama] = [await first("ggml"), await first("llama.cpp")];
    // Before any update the two compute the same forward pass; float sums in another order differ in the last digits.
    assert.ok(Math.abs(ggml - llama) < 1e-3 * llama, `first-step loss ${ggml} (ggml) vs ${llama} (llama.cpp)`);
  });

  test("rebuilding from the recipe gives the same digest, whatever the thread count", async () => {
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 1, learningRate: 1e-3, accumulate: 2, threads: 1, name: "tiny:ft1" });
    const made = await runFinetuneJob(store, jobs, job.id);
    const recipe = await recipeOf(store, "tiny:ft1");
    assert.deepEqual(recipe.inputs.map((input) => input.role), ["model", "data"]);
    await assert.rejects(rebuildFork(store, recipe), /needs data input/);
    const rebuilt = await rebuildFork(store, recipe, { data: [dataPath], threads: 2 });
    assert.equal(rebuilt.matches, true);
    assert.equal(rebuilt.import.model.digest, made.result?.digest);
  });

  test("a cancelled job leaves no model and no partial file; resumed, it finishes from its checkpoint", async () => {
    const modelsBefore = (await store.list()).length;
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 3, learningRate: 1e-3, threads: 1, name: "tiny:resumed" });
    const controller = new AbortController();
    await assert.rejects(
      runFinetuneJob(store, jobs, job.id, { signal: controller.signal, onEvent: (event) => void (event.event === "checkpoint" && controller.abort()) }),
      AbortedError,
    );
    const cancelled = await jobs.get(job.id);
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.checkpointEpoch, 0);
    assert.equal((await store.list()).length, modelsBefore, "no model stored");
    const files = [...(await filesUnder(jobs.directoryOf(job.id))), ...(await filesUnder(store.blobs.tempDirectory))];
    assert.deepEqual(files.filter((name) => name.includes("partial") || name.startsWith("trained")), [], "no partial file");

    const resumed = await runFinetuneJob(store, jobs, job.id);
    assert.equal(resumed.status, "succeeded");
    assert.deepEqual(resumed.epochs!.map((epoch) => epoch.epoch), [0, 1, 2], "epoch 1 came from before the cancel, 2 and 3 after");
    assert.equal((await store.resolve("tiny:resumed")).digest, resumed.result?.digest);
  });

  test("an epoch interrupted mid-way resumes from its mid-epoch checkpoint, at the step after it", async () => {
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 2, learningRate: 1e-3, threads: 1, name: "tiny:mid-epoch" });
    const controller = new AbortController();
    let trainWindows = 0;
    await assert.rejects(
      runFinetuneJob(store, jobs, job.id, {
        signal: controller.signal,
        checkpointIntervalMs: 1, // after every step
        onEvent: (event) => {
          if (event.event === "ready") trainWindows = event.trainWindows;
          if (event.event === "checkpoint" && event.step !== undefined && event.step >= 2) controller.abort();
        },
      }),
      AbortedError,
    );
    const cancelled = await jobs.get(job.id);
    assert.ok(trainWindows >= 4, `enough windows to stop mid-epoch (${trainWindows})`);
    assert.equal(cancelled.checkpointEpoch, 0);
    const step = cancelled.checkpointStep!;
    assert.ok(step >= 2 && step < trainWindows, `a mid-epoch checkpoint (${step} of ${trainWindows})`);

    const firstSteps: number[] = [];
    const resumed = await runFinetuneJob(store, jobs, job.id, {
      onEvent: (event) => void (event.event === "step" && !event.validation && firstSteps.length < 1 && firstSteps.push(event.step)),
    });
    assert.equal(resumed.status, "succeeded");
    assert.deepEqual(firstSteps, [step + 1], "training went on at the step after the checkpoint");
    assert.deepEqual(resumed.epochs!.map((epoch) => epoch.epoch), [0, 1]);
    assert.equal(resumed.checkpointStep, undefined, "the finished epoch's checkpoint replaced the mid-epoch one");
    const epochZero = resumed.steps!.filter((record) => record.epoch === 0 && !record.validation).map((record) => record.step);
    assert.deepEqual(epochZero, Array.from({ length: trainWindows }, (_, index) => index + 1), "each window of epoch 1 trained once in the record");
    assert.equal((await store.resolve("tiny:mid-epoch")).digest, resumed.result?.digest);
  });

  test("a job left running by a process that died is resumed; one owned by a live process is refused", async () => {
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 1, threads: 1, name: "tiny:orphan" });
    const child = spawn(process.execPath, ["-e", ""]);
    const deadPid = await new Promise<number>((resolve) => child.on("exit", () => resolve(child.pid!)));
    const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      // Written as the owning process would have left them (save() stamps this process's pid).
      const directory = jobs.directoryOf(job.id);
      const record = JSON.parse(await readFile(join(directory, "job.json"), "utf8"));
      await writeFile(join(directory, "job.json"), JSON.stringify({ ...record, status: "running", pid: live.pid }));
      await assert.rejects(runFinetuneJob(store, jobs, job.id), (error: unknown) => error instanceof InvalidRequestError && new RegExp(`already running \\(process ${live.pid}\\)`).test(error.message));
      await writeFile(join(directory, "job.json"), JSON.stringify({ ...record, status: "running", pid: deadPid }));
      const resumed = await runFinetuneJob(store, jobs, job.id);
      assert.equal(resumed.status, "succeeded");
      assert.equal((await store.resolve("tiny:orphan")).digest, resumed.result?.digest);
    } finally {
      live.kill();
    }
  });

  test("a worker that dies fails the job clearly and stores nothing", async () => {
    const crash = join(base.directory, "crash-job.mjs");
    await writeFile(crash, "export async function run() { process.kill(process.pid, 'SIGABRT'); await new Promise(() => {}); }\n");
    const modelsBefore = (await store.list()).length;
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 1, threads: 1 });
    await assert.rejects(runFinetuneJob(store, jobs, job.id, { jobModule: pathToFileURL(crash) }), (error: unknown) => error instanceof EngineError && /killed by SIGABRT/.test(error.message));
    assert.equal((await jobs.get(job.id)).status, "failed");
    assert.equal((await store.list()).length, modelsBefore);
  });

  test("chat records train through the model's chat template", async () => {
    const chat = join(base.directory, "chat.jsonl");
    const record = { messages: [{ role: "user", content: "What is a grove?" }, { role: "assistant", content: "A small group of trees." }] };
    await writeFile(chat, `${Array.from({ length: 30 }, () => JSON.stringify(record)).join("\n")}\n`);
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: chat, epochs: 1, threads: 1, learningRate: 1e-3, learningRateMin: 1e-4, warmupSteps: 2 });
    assert.equal(job.parameters.chatFormat, "ChatML");
    const done = await runFinetuneJob(store, jobs, job.id);
    assert.equal(done.status, "succeeded");
    // A per-step schedule: the epoch reports the rate it ended at (the minimum), not its first step's (5e-4).
    assert.ok(Math.abs(done.epochs![0]!.learningRate - 1e-4) < 1e-12, String(done.epochs![0]!.learningRate));
  });

  test("without packing each record starts a window of its own, padded with EOS, and the recipe says so", async () => {
    const chat = join(base.directory, "chat-unpacked.jsonl");
    const records = Array.from({ length: 12 }, (_, index) => ({ messages: [{ role: "user", content: `What is grove ${index}?` }, { role: "assistant", content: "A small group of trees." }] }));
    await writeFile(chat, `${records.map((record) => JSON.stringify(record)).join("\n")}\n`);
    // In the file's order, so the rebuild below also shows a recipe without shuffleSeed keeps it.
    const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data: chat, epochs: 1, threads: 1, packing: false, shuffle: false, validationSplit: 0.1, name: "tiny:unpacked" });
    assert.equal(job.parameters.stride, 256);
    assert.equal(job.parameters.windows, 12, "one window per record");
    const bytes = await readFile(join(jobs.directoryOf(job.id), "tokens.bin"));
    const tokens = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    assert.equal(tokens.length, 13 * 256 + 1, "12 record windows, then a window and a token of padding");
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const vocab = await llama.loadModel({ modelPath: base.path, vocabOnly: true });
    const eos = vocab.tokens.eos!;
    await vocab.dispose();
    for (let record = 0; record < 12; record++) {
      const window = Array.from(tokens.subarray(record * 256, (record + 1) * 256));
      assert.equal(window[0], tokens[0], `record ${record} starts its window`);
      assert.equal(window.at(-1), eos, `record ${record}'s window ends in EOS padding`);
      assert.ok(window.filter((token) => token !== eos).length > 10, `record ${record} holds its conversation`);
    }
    const done = await runFinetuneJob(store, jobs, job.id);
    assert.equal(done.status, "succeeded");
    const recipe = await recipeOf(store, "tiny:unpacked");
    assert.equal(recipe.parameters["packing"], false);
    assert.equal(recipe.parameters["shuffleSeed"], undefined, "trained in the file's order");
    const rebuilt = await rebuildFork(store, recipe, { data: [chat] });
    assert.equal(rebuilt.matches, true, "the rebuild pads the records the same way");
    await assert.rejects(rebuildFork(store, { ...recipe, parameters: { ...recipe.parameters, packing: true } }, { data: [chat] }), /parameters\.packing/);
  });

  test("records are shuffled by a seed before they are packed; shuffle false keeps the file's order", async () => {
    const records = Array.from({ length: 24 }, (_, index) => JSON.stringify({ text: `Record ${index}: ${TEXT}` }));
    const inOrder = join(base.directory, "order.jsonl");
    await writeFile(inOrder, `${records.join("\n")}\n`);
    const tokensOf = async (data: string, shuffle?: number | false): Promise<{ seed: unknown; tokens: number[] }> => {
      const job = await createFinetuneJob(store, jobs, { model: "tiny:base", data, epochs: 1, threads: 1, packing: false, validationSplit: 0.1, ...(shuffle === undefined ? {} : { shuffle }) });
      const bytes = await readFile(join(jobs.directoryOf(job.id), "tokens.bin"));
      await jobs.remove(job.id);
      return { seed: job.parameters.shuffleSeed, tokens: Array.from(new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)) };
    };
    const byDefault = await tokensOf(inOrder);
    const fileOrder = await tokensOf(inOrder, false);
    // The same records written in seed 0's order, then read in the file's order.
    const preShuffled = join(base.directory, "pre-shuffled.jsonl");
    await writeFile(preShuffled, `${shuffleRecords(records, 0).join("\n")}\n`);
    assert.equal(byDefault.seed, 0, "the default seed is recorded");
    assert.equal(fileOrder.seed, undefined);
    assert.deepEqual(byDefault.tokens, (await tokensOf(preShuffled, false)).tokens, "seed 0 packs the records in shuffleRecords' order");
    assert.notDeepEqual(byDefault.tokens, fileOrder.tokens, "and that is not the file's order");
    assert.notDeepEqual((await tokensOf(inOrder, 7)).tokens, byDefault.tokens, "another seed, another order");
    assert.deepEqual([...shuffleRecords(records, 0)].sort(), [...records].sort(), "every record kept once");
  });

  test("bad input is refused before anything is written", async () => {
    // A parent of another architecture: llama.cpp's trainer may take it, Grove's graph cannot.
    await store.importFile(await writeTinyLlama(base.directory, "phi3.gguf", { architecture: "phi3" }), { name: "tiny:phi3" });
    const modelsBefore = (await store.list()).length;
    const jobsBefore = (await jobs.list()).length;
    const write = async (name: string, text: string): Promise<string> => {
      const path = join(base.directory, name);
      await writeFile(path, text);
      return path;
    };
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ["bad JSON", async () => createFinetuneJob(store, jobs, { model: "tiny:base", data: await write("bad.jsonl", '{"text": "ok"}\n{"text": oops}\n') }), /line 2 is not valid JSON/],
      ["empty", async () => createFinetuneJob(store, jobs, { model: "tiny:base", data: await write("empty.jsonl", "\n\n") }), /holds no records/],
      [
        "no assistant turn",
        async () => createFinetuneJob(store, jobs, { model: "tiny:base", data: await write("noassistant.jsonl", '{"messages": [{"role": "user", "content": "hi"}]}\n') }),
        /line 1: the conversation has no assistant turn/,
      ],
      ["unknown shape", async () => createFinetuneJob(store, jobs, { model: "tiny:base", data: await write("shape.jsonl", '{"prompt": "x"}\n') }), /line 1: expected an object with "text"/],
      ["too small", async () => createFinetuneJob(store, jobs, { model: "tiny:base", data: await write("small.jsonl", '{"text": "one short line"}\n') }), /too small/],
      ["missing file", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: join(base.directory, "nope.jsonl") }), /Cannot read the training data/],
      ["bad ctx", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, contextSize: 100 }), /multiple of 256/],
      ["bad lr", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, learningRate: -1 }), /lr must be/],
      ["bad epochs", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, epochs: 0.5 }), /epochs must be/],
      [
        "a record longer than its window without packing",
        async () => createFinetuneJob(store, jobs, { model: "tiny:base", data: await write("long.jsonl", `${JSON.stringify({ text: TEXT.repeat(30) })}\n${JSON.stringify({ text: "short" })}\n`), packing: false }),
        /Record 1 of the data is \d+ tokens, longer than a window of 256/,
      ],
      ["an unknown trainer", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, trainer: "pytorch" as "ggml" }), /trainer must be ggml or llama\.cpp/],
      ["accumulate on llama.cpp's trainer", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, trainer: "llama.cpp", accumulate: 4 }), /accumulate needs the ggml trainer/],
      ["a parent Grove's trainer cannot train", () => createFinetuneJob(store, jobs, { model: "tiny:phi3", data: dataPath }), /knows the llama, qwen2, qwen3 architectures; "tiny:phi3" is "phi3" — use --trainer llama\.cpp/],
      ["a fractional accumulate", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, accumulate: 1.5 }), /accumulate must be a whole number/],
      ["a negative shuffle seed", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, shuffle: -1 }), /shuffle seed must be a whole number from 0/],
      ["a fractional shuffle seed", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, shuffle: 1.5 }), /shuffle seed must be a whole number from 0/],
      ["a stride without packing", () => createFinetuneJob(store, jobs, { model: "tiny:base", data: dataPath, packing: false, stride: 128 }), /without packing .* stride must be left out/],
    ];
    for (const [label, attempt, pattern] of cases) {
      await assert.rejects(attempt(), (error: unknown) => error instanceof InvalidRequestError && pattern.test(error.message), label);
    }
    assert.equal((await store.list()).length, modelsBefore);
    assert.equal((await jobs.list()).length, jobsBefore, "no job created");
  });
});
