import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AbortedError, InvalidRequestError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout } from "../../gguf/gguf-tensor-layout.js";
import { loadConfig } from "../../config/config.js";
import { startGrove } from "../../services.js";
import { digestOfFile } from "../../store/file-digest.js";
import { ModelStore } from "../../store/model-store.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { generateModel } from "../generate/generate-model.js";
import { JobStore } from "../jobs/job-store.js";
import { bakeAdapterFork } from "../merge/merge-fork.js";
import { loadLibllama } from "../quantize/libllama-quantize.js";
import { recipeOf } from "../recipe/recipe.js";
import { rebuildFork } from "../recipe/rebuild.js";
import { createFinetuneJob, resolveFinetuneParameters, runFinetuneJob, type FinetuneRequest } from "./finetune-job.js";
import { readLoraAdapter } from "./lora.js";

const TEXT = "The grove stood at the edge of the valley, where the river turned east and the road became a path. ";

/** llama_ftype numbers of the bases made here. */
const FTYPES = { Q8_0: 7, Q4_0: 2, BF16: 32 } as const;

describe("LoRA fine-tuning in Grove's ggml trainer", () => {
  let base: TestModel;
  let store: ModelStore;
  let jobs: JobStore;
  let dataPath: string;

  before(async () => {
    base = await createTestModel("test-tiny", 7); // F16 matrices
    store = await ModelStore.open(join(base.directory, "home"));
    jobs = new JobStore(store.home);
    await store.importFile(base.path, { name: "tiny:base" });
    const f32 = await generateModel({ preset: "test-tiny", seed: 7, dtype: "f32", outPath: join(base.directory, "f32.gguf") });
    await store.importFile(f32.path, { name: "tiny:f32" });
    const quantizer = await loadLibllama();
    for (const [type, ftype] of Object.entries(FTYPES)) {
      const params = quantizer.defaultParams();
      Object.assign(params, { ftype, nthread: 1, pure: true });
      const path = join(base.directory, `${type}.gguf`);
      assert.equal(quantizer.quantize(f32.path, path, params), 0, `quantized to ${type}`);
      await store.importFile(path, { name: `tiny:${type.toLowerCase()}` });
    }
    dataPath = join(base.directory, "data.jsonl");
    const lines = Array.from({ length: 40 }, (_, index) => JSON.stringify({ text: `${TEXT}Line ${index % 4}.` }));
    await writeFile(dataPath, `${lines.join("\n")}\n`);
  });
  after(async () => {
    await store.close();
    await base.cleanup();
  });

  /** Runs a job and returns it with its training-step losses. */
  const train = async (request: Omit<FinetuneRequest, "data">): Promise<{ job: Awaited<ReturnType<typeof runFinetuneJob>>; losses: number[] }> => {
    const created = await createFinetuneJob(store, jobs, { data: dataPath, threads: 1, ...request });
    const losses: number[] = [];
    const job = await runFinetuneJob(store, jobs, created.id, { onEvent: (event) => void (event.event === "step" && !event.validation && losses.push(event.loss)) });
    return { job, losses };
  };

  test("with B = 0 the LoRA graph computes the full graph's loss, to the bit", async () => {
    const full = await train({ model: "tiny:f32", epochs: 1 });
    const lora = await train({ model: "tiny:f32", epochs: 1, lora: {} });
    assert.equal(lora.losses[0], full.losses[0], "step 1: the adapter adds exactly zero");
  });

  test("a few steps lower the loss and change only the adapter: an adapter fork in llama.cpp's format that its recipe rebuilds", async () => {
    const baseDigest = await digestOfFile(base.path);
    const { job, losses } = await train({ model: "tiny:base", epochs: 3, learningRate: 1e-2, name: "tiny:lora", lora: { rank: 4, dropout: 0.1 } });
    assert.equal(job.status, "succeeded");
    assert.ok(job.epochs![2]!.trainLoss < job.epochs![0]!.trainLoss, `loss fell: ${job.epochs!.map((epoch) => epoch.trainLoss.toFixed(3)).join(" → ")}`);
    assert.ok(losses.every(Number.isFinite));
    const fork = await store.show("tiny:lora");
    assert.equal(fork.parents[0]?.relation, "adapter");
    assert.equal(fork.parents[0]?.parent, (await store.resolve("tiny:base")).digest);
    assert.equal(fork.parents[0]?.recipe?.tool, "grove ggml-opt");
    assert.deepEqual(fork.parents[0]?.recipe?.parameters["lora"], { rank: 4, alpha: 16, dropout: 0.1, targets: ["q", "k", "v", "o", "gate", "up", "down"] });
    assert.equal(await digestOfFile(store.blobs.pathOf((await store.resolve("tiny:base")).digest)), baseDigest, "the base is untouched");

    const header = await readGgufHeader(fork.path);
    const value = (key: string): unknown => header.metadata.get(key)?.value;
    assert.deepEqual([value("general.type"), value("adapter.type"), value("general.architecture"), value("adapter.lora.alpha")], ["adapter", "lora", "llama", 16]);
    const tensors = ggufTensorLayout(header).tensors;
    assert.equal(tensors.size, 2 * 7 * 2, "an A and a B per target per block, nothing else");
    assert.deepEqual(tensors.get("blk.0.attn_q.weight.lora_a")?.shape, [64, 4]);
    assert.deepEqual(tensors.get("blk.1.ffn_down.weight.lora_b")?.shape, [4, 64]);
    const pairs = await readLoraAdapter(fork.path, 4);
    assert.ok([...pairs.values()].every((pair) => pair.b.some((x) => x !== 0)), "every B moved away from zero");

    const rebuilt = await rebuildFork(store, await recipeOf(store, "tiny:lora"), { data: [dataPath] });
    assert.equal(rebuilt.import.model.digest, fork.model.digest, "the recipe rebuilds the same adapter (seeded init and dropout)");
  });

  test("a cancelled LoRA run resumes from its adapter checkpoint", async () => {
    const created = await createFinetuneJob(store, jobs, { model: "tiny:q8_0", data: dataPath, epochs: 2, learningRate: 1e-2, threads: 1, name: "tiny:lora-resumed", lora: { rank: 2 } });
    const controller = new AbortController();
    await assert.rejects(runFinetuneJob(store, jobs, created.id, { signal: controller.signal, onEvent: (event) => void (event.event === "checkpoint" && controller.abort()) }), AbortedError);
    assert.equal((await jobs.get(created.id)).checkpointEpoch, 0);
    const checkpoint = await readLoraAdapter(join(jobs.directoryOf(created.id), "checkpoint.gguf"), 2);
    assert.ok([...checkpoint.values()].some((pair) => pair.b.some((x) => x !== 0)), "the checkpoint holds the trained adapter");
    const resumed = await runFinetuneJob(store, jobs, created.id);
    assert.deepEqual(resumed.epochs!.map((epoch) => epoch.epoch), [0, 1]);
    assert.equal((await store.show("tiny:lora-resumed")).parents[0]?.relation, "adapter");
  });

  for (const type of ["Q8_0", "Q4_0"] as const) {
    test(`a ${type} base trains as it is, without conversion`, async () => {
      const { job, losses } = await train({ model: `tiny:${type.toLowerCase()}`, epochs: 2, learningRate: 1e-2, lora: { rank: 4 } });
      assert.equal(job.status, "succeeded");
      assert.ok(losses.length >= 4 && losses.every(Number.isFinite));
      assert.ok(job.epochs![1]!.trainLoss < job.epochs![0]!.trainLoss, `loss fell: ${job.epochs!.map((epoch) => epoch.trainLoss.toFixed(3)).join(" → ")}`);
    });
  }

  test("a BF16 base is refused before a job exists, with the reason", async () => {
    const before = (await jobs.list()).length;
    await assert.rejects(
      createFinetuneJob(store, jobs, { model: "tiny:bf16", data: dataPath, lora: {} }),
      (error: unknown) => error instanceof InvalidRequestError && /BF16/.test(error.message) && /OUT_PROD/.test(error.message),
    );
    assert.equal((await jobs.list()).length, before, "no job was made");
  });

  test("bad LoRA settings are refused before any job, naming the flag", () => {
    const cases: [FinetuneRequest["lora"], string, RegExp][] = [
      [{ rank: 0 }, "lora-rank", /lora-rank must be a whole number/],
      [{ rank: 2.5 }, "lora-rank", /lora-rank/],
      [{ alpha: -1 }, "lora-alpha", /lora-alpha must be a positive number/],
      [{ dropout: 1 }, "lora-dropout", /lora-dropout must be in \[0, 1\)/],
      [{ targets: "q,x" }, "lora-targets", /Unknown lora-targets entry 'x'/],
      [{ targets: [] }, "lora-targets", /at least one/],
    ];
    for (const [lora, param, pattern] of cases) {
      assert.throws(() => resolveFinetuneParameters({ lora }), (error: unknown) => error instanceof InvalidRequestError && error.param === param && pattern.test(error.message), param);
    }
    assert.throws(() => resolveFinetuneParameters({ lora: {}, trainer: "llama.cpp" }), /LoRA needs the ggml trainer/);
    assert.deepEqual(resolveFinetuneParameters({ lora: { targets: "down, q" } }).lora, { rank: 8, alpha: 16, dropout: 0.05, targets: ["q", "down"] });
  });

  test("the trained adapter serves through Grove's engine and changes its output; merge --adapter bakes it into a full fork that answers the same", async () => {
    await train({ model: "tiny:base", epochs: 4, learningRate: 2e-2, name: "tiny:strong", lora: { rank: 8, alpha: 32, dropout: 0 } });
    const baked = await bakeAdapterFork(store, { adapter: "tiny:strong", name: "tiny:baked" });
    assert.deepEqual(baked.parents.map((edge) => edge.relation), ["merge", "merge"]);
    const rebuilt = await rebuildFork(store, await recipeOf(store, "tiny:baked"));
    assert.equal(rebuilt.import.model.digest, baked.model.digest, "the bake's recipe rebuilds it");
    await store.close();
    const grove = await startGrove(loadConfig({ env: {}, flags: { home: store.home, model: "tiny:base", port: 0, threads: 1, contextSize: 256, logLevel: "silent" } }));
    try {
      const greedy = async (model: string): Promise<string> => {
        const response = await fetch(`${grove.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model, prompt: "The grove stood at", max_tokens: 12, temperature: 0 }) });
        assert.equal(response.status, 200);
        return ((await response.json()) as { choices: { text: string }[] }).choices[0]!.text;
      };
      const adapted = await greedy("tiny:strong");
      assert.notEqual(adapted, await greedy("tiny:base"));
      assert.equal(await greedy("tiny:baked"), adapted, "W + (alpha/r)·B·A in the weights is the adapter applied at run time");
    } finally {
      await grove.close();
      store = await ModelStore.open(store.home);
      jobs = new JobStore(store.home);
    }
  });
});
