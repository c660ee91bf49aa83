import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { EvaluateOutcome } from "../../bench/quality/evaluate.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";

describe("grove eval", () => {
  let model: TestModel;
  let home: string;

  before(async () => {
    model = await createTestModel("test-tiny", 5);
    home = join(model.directory, "home");
    assert.equal((await runCli("import", model.path, "--name", "tiny:f16", "--home", home)).code, 0);
  });
  after(() => model.cleanup());

  test("measures perplexity, stores it, and reuses it on a rerun", async () => {
    const first = await runCli("eval", "tiny:f16", "--task", "perplexity", "--ctx", "128", "--threads", "1", "--home", home, "--json");
    assert.equal(first.code, 0, first.stderr);
    const [outcome] = JSON.parse(first.stdout) as EvaluateOutcome[];
    assert.equal(outcome?.reused, false);
    assert.ok((outcome?.result.metrics.perplexity ?? 0) > 1);
    const again = await runCli("eval", "tiny:f16", "--task", "perplexity", "--ctx", "128", "--threads", "1", "--home", home);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /perplexity\s+perplexity [\d.]+ ±[\d.]+\s+bitsPerByte [\d.]+ ±[\d.]+.*stored result from/);
  });

  test("bad flags are refused with a clear message", async () => {
    const cases: [string[], RegExp][] = [
      [["eval", "tiny:f16", "--home", home], /Name what to measure with --task/],
      [["eval", "tiny:f16", "--task", "perplexity", "--ctx", "0", "--home", home], /--ctx must be a positive integer/],
      [["eval", "--task", "perplexity", "--home", home], /Name the model to evaluate/],
      [["eval", "--endpoint", "http://127.0.0.1:9/v1", "--task", "x.jsonl", "--home", home], /--endpoint needs --model NAME/],
      [["eval", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--task", "perplexity", "--home", home], /needs raw logits/],
      [["eval", "nope:model", "--task", "perplexity", "--home", home], /nope:model/],
      [["eval", "tiny:f16", "--task", "t.yaml", "--num-fewshot", "-1", "--home", home], /--num-fewshot must be an integer from 0 to 64/],
      [["eval", "tiny:f16", "--task", "missing.yaml", "--fewshot-as-multiturn", "--home", home], /--fewshot-as-multiturn needs --apply-chat-template/],
      [["eval", "tiny:f16", "--task", "missing.yaml", "--home", home], /missing\.yaml/],
      [["eval", "tiny:f16", "--task", "perplexity.txt", "--home", home], /or of an lm-evaluation-harness task config \(\.yaml\)/],
      [["eval", "tiny:f16", "--task", "x.jsonl", "--apply-chat-template", "--home", home], /apply to lm-eval task configs/],
      [["eval", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--task", "t.yaml", "--apply-chat-template", "--home", home], /needs the model's template/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCliInProcess(...args);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, pattern, args.join(" "));
    }
  });
});
