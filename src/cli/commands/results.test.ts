import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ResultRecord } from "../../results/result-store.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";

// The shape lm-eval writes (results_<date>.json): two tasks, one with two filters.
const LM_EVAL_RESULTS = {
  results: {
    hellaswag: { alias: "hellaswag", "acc,none": 0.5, "acc_stderr,none": 0.05, "acc_norm,none": 0.6, "acc_norm_stderr,none": 0.049 },
    gsm8k: { alias: "gsm8k", "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": 0.04, "exact_match,flexible-extract": 0.3, "exact_match_stderr,flexible-extract": 0.045 },
  },
  configs: { hellaswag: { task: "hellaswag", output_type: "multiple_choice" }, gsm8k: { task: "gsm8k", output_type: "generate_until" } },
  versions: { hellaswag: 1.0, gsm8k: 3.0 },
  "n-shot": { hellaswag: 0, gsm8k: 5 },
  "n-samples": { hellaswag: { original: 10042, effective: 100 }, gsm8k: { original: 1319, effective: 100 } },
  config: { model: "hf", model_args: "pretrained=EleutherAI/pythia-160m,dtype=float32" },
  date: 1765000000.5,
  lm_eval_version: "0.4.9",
};

describe("grove results import / ls", () => {
  let model: TestModel;
  let home: string;

  before(async () => {
    model = await createTestModel("test-tiny", 5);
    home = join(model.directory, "home");
    assert.equal((await runCli("import", model.path, "--name", "tiny:f16", "--home", home)).code, 0);
    await writeFile(join(model.directory, "lmeval.json"), JSON.stringify(LM_EVAL_RESULTS));
    await writeFile(join(model.directory, "broken.json"), "{ not json");
    await writeFile(join(model.directory, "other.json"), JSON.stringify({ model: "x", scores: [1] }));
  });
  after(() => model.cleanup());

  test("stores lm-eval's results with their provenance, flagged imported; listed as such, never ranked", async () => {
    const run = await runCli("results", "import", join(model.directory, "lmeval.json"), "--model", "tiny:f16", "--home", home, "--json");
    assert.equal(run.code, 0, run.stderr);
    const records = JSON.parse(run.stdout) as ResultRecord[];
    const gsm8k = records.find((record) => record.task === "gsm8k")!;
    assert.deepEqual(gsm8k.metrics, { exactMatch: 0.25, "exactMatch,flexible-extract": 0.3 }, "the first filter keeps the plain name");
    assert.deepEqual(gsm8k.flags, ["imported"]);
    assert.equal(gsm8k.engineVersion, "lm-evaluation-harness 0.4.9");
    assert.deepEqual(gsm8k.settings, { source: "lm-evaluation-harness", numFewshot: 5 });
    assert.deepEqual((gsm8k.details.source as Record<string, unknown>).modelArgs, "pretrained=EleutherAI/pythia-160m,dtype=float32");
    assert.equal((gsm8k.details.source as Record<string, unknown>).date, new Date(1765000000500).toISOString());
    assert.deepEqual(records.find((record) => record.task === "hellaswag")!.details.stderr, { acc: 0.05, accNorm: 0.049 });

    const list = await runCli("results", "ls", "--home", home);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /hellaswag.*IMPORTED: lm-evaluation-harness 0\.4\.9 \(2025-12-06\)/);
    const board = await runCliInProcess("leaderboard", "--task", "hellaswag", "--home", home);
    assert.equal(board.code, 1, "a task with only imported results is not ranked");
    assert.match(board.stderr, /only imported results/);
  });

  test("bad input is refused: unreadable JSON, not an lm-eval file, an unknown model, no --model", async () => {
    const cases: [string[], RegExp][] = [
      [["results", "import", join(model.directory, "broken.json"), "--model", "tiny:f16", "--home", home], /is not valid JSON/],
      [["results", "import", join(model.directory, "other.json"), "--model", "tiny:f16", "--home", home], /no 'results' object/],
      [["results", "import", join(model.directory, "missing.json"), "--model", "tiny:f16", "--home", home], /missing\.json|no such file|not found/i],
      [["results", "import", join(model.directory, "lmeval.json"), "--model", "nope:model", "--home", home], /nope:model/],
      [["results", "import", join(model.directory, "lmeval.json"), "--home", home], /--model/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCliInProcess(...args);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, pattern, args.join(" "));
    }
  });
});
