import assert from "node:assert/strict";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../../config/config.js";
import type { JobRecord } from "../../forge/jobs/job-store.js";
import { startGrove } from "../../services.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";

describe("grove finetune", () => {
  let base: TestModel;
  let home: string;
  let data: string;

  before(async () => {
    base = await createTestModel("test-tiny", 7);
    home = join(base.directory, "home");
    data = join(base.directory, "data.jsonl");
    const record = { messages: [{ role: "user", content: "Name a tree." }, { role: "assistant", content: "An oak grows in the grove." }] };
    await writeFile(data, `${Array.from({ length: 40 }, () => JSON.stringify(record)).join("\n")}\n`);
    assert.equal((await runCli("import", base.path, "--name", "tiny:base", "--home", home)).code, 0);
  });
  after(() => base.cleanup());

  test("fine-tunes, stores the fork with its lineage, lists the job, and the fork serves chat", async () => {
    const run = await runCli("finetune", "tiny:base", "--data", data, "--epochs", "3", "--lr", "2e-3", "--threads", "1", "--name", "tiny:chat", "--home", home, "--json");
    assert.equal(run.code, 0, run.stderr);
    const job = JSON.parse(run.stdout) as JobRecord;
    assert.equal(job.status, "succeeded");
    assert.equal(job.parameters.shuffleSeed, 0, "records shuffled by the default seed");
    assert.match(run.stderr, /epoch 3: train loss [\d.]+, validation loss [\d.]+/);

    const tree = await runCli("tree", "tiny:base", "--home", home);
    assert.match(tree.stdout, /finetune\s+tiny:chat/);
    // The card's training curve: a line per epoch, the per-step losses left to --json.
    const show = await runCli("show", "tiny:chat", "--home", home);
    assert.match(show.stdout, new RegExp(`card training  job ${job.id}, data sha256:[0-9a-f]{12}…?, \\d+ records, \\d+ tokens, \\d+ steps recorded \\(--json\\)\n\\s+epoch 1  train loss [\\d.]+  validation [\\d.]+\n\\s+epoch 2 .*\n\\s+epoch 3 `));
    assert.doesNotMatch(show.stdout, /"step":/);
    assert.equal((JSON.parse((await runCli("show", "tiny:chat", "--home", home, "--json")).stdout) as { model: { card: { training: { records: number } } } }).model.card.training.records, 40);
    const jobs = await runCli("jobs", "--home", home);
    assert.match(jobs.stdout, new RegExp(`${job.id}\\s+finetune\\s+succeeded\\s+100%\\s+tiny:chat`));

    const grove = await startGrove(loadConfig({ env: {}, flags: { home, model: "tiny:chat", port: 0, threads: 1, contextSize: 256, logLevel: "silent" } }));
    try {
      const client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: "user", content: "Name a tree." }], max_tokens: 12, temperature: 0 });
      const [fork, parent] = [await ask("tiny:chat"), await ask("tiny:base")];
      assert.equal(fork.usage?.completion_tokens, 12);
      // A 0.1M-parameter model learns token statistics, not the answer; what it says changed.
      assert.notEqual(fork.choices[0]?.message.content, parent.choices[0]?.message.content);
    } finally {
      await grove.close();
    }
  });

  test("bad flags and data are refused, naming the problem, and nothing is written", async () => {
    const before = await readdir(join(home, "jobs"));
    const cases: [string[], RegExp][] = [
      [["finetune", "tiny:base", "--home", home], /--data FILE.jsonl is required/],
      [["finetune", "--home", home, "--data", data], /Name the model to fine-tune/],
      [["finetune", "tiny:base", "--data", data, "--ctx", "abc", "--home", home], /--ctx must be a number/],
      [["finetune", "tiny:base", "--data", data, "--val-split", "0.9", "--home", home], /val-split must be in \[0, 0.5\]/],
      [["finetune", "missing:model", "--data", data, "--home", home], /missing:model/],
      [["finetune", "tiny:base", "--data", data, "--trainer", "torch", "--home", home], /trainer must be ggml or llama\.cpp, got torch/],
      [["finetune", "tiny:base", "--data", data, "--trainer", "llama.cpp", "--accumulate", "4", "--home", home], /accumulate needs the ggml trainer/],
      [["finetune", "tiny:base", "--data", data, "--accumulate", "x", "--home", home], /--accumulate must be a number/],
      [["finetune", "tiny:base", "--data", data, "--no-packing", "--stride", "64", "--home", home], /stride must be left out/],
      [["finetune", "tiny:base", "--data", data, "--shuffle", "x", "--home", home], /--shuffle must be a number, got 'x'/],
      [["finetune", "tiny:base", "--data", data, "--shuffle", "1.5", "--home", home], /shuffle seed must be a whole number from 0 to 2147483647, got 1.5/],
      [["finetune", "tiny:base", "--data", data, "--loss-on", "prompts", "--home", home], /loss-on must be answers or all, got prompts/],
      [["finetune", "tiny:base", "--data", data, "--loss-on", "answers", "--trainer", "llama.cpp", "--home", home], /loss-on answers needs the ggml trainer: llama\.cpp's llama_opt_epoch/],
      [["finetune", "tiny:base", "--data", data, "--lora-rank", "4", "--home", home], /--lora-rank needs --lora/],
      [["finetune", "tiny:base", "--data", data, "--lora", "--lora-rank", "0", "--home", home], /lora-rank must be a whole number from 1/],
      [["finetune", "tiny:base", "--data", data, "--lora", "--lora-alpha", "x", "--home", home], /--lora-alpha must be a number/],
      [["finetune", "tiny:base", "--data", data, "--lora", "--lora-dropout", "1.5", "--home", home], /lora-dropout must be in \[0, 1\)/],
      [["finetune", "tiny:base", "--data", data, "--lora", "--lora-targets", "q,attn", "--home", home], /Unknown lora-targets entry 'attn'; valid: q, k, v, o, gate, up, down/],
      [["finetune", "tiny:base", "--data", data, "--lora", "--trainer", "llama.cpp", "--home", home], /LoRA needs the ggml trainer: llama\.cpp's \(llama_opt_epoch\) trains the model's own tensors only/],
      [["finetune", "--resume", "job-nothere", "--home", home], /is not a job id/],
      [["finetune", "--resume", "job-000000000000", "--home", home], /No job 'job-000000000000'/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCliInProcess(...args);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, pattern, args.join(" "));
    }
    assert.deepEqual(await readdir(join(home, "jobs")), before);
  });
});
