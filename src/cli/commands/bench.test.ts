import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { COST_METRICS } from "../../results/metrics.js";
import { ResultStore, type ResultRecord } from "../../results/result-store.js";
import { generateModel } from "../../forge/generate/generate-model.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";
import { formatCost } from "./bench.js";

// `grove bench` end to end on a generated test-tiny model: it serves the model with
// `grove serve` in a child process, measures, stores one cost result, reuses it, measures again
// with --force, and refuses bad input before anything starts or is stored.

let directory: string;
let home: string;
const ARGS = ["--ctx", "512", "--slots", "2", "--threads", "1", "--prompt-tokens", "64", "--output-tokens", "8", "--concurrency", "1,2,8"];

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-bench-cli-"));
  home = join(directory, "home");
  const path = join(directory, "tiny.gguf");
  await generateModel({ preset: "test-tiny", seed: 5, dtype: "f16", outPath: path });
  const store = await ModelStore.open(home);
  await store.importFile(path, { name: "tiny:f16" });
  await store.close();
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function storedResults(): Promise<ResultRecord[]> {
  const results = await ResultStore.open(home);
  try {
    return (await results.list({ kind: "cost" }));
  } finally {
    await results.close();
  }
}

test("measures through grove serve, stores one cost result, reuses it, and --force measures again", async () => {
  const first = await runCli("bench", "tiny:f16", ...ARGS, "--home", home, "--json");
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /bench: starting grove serve \(2 slots × 512 tokens, 1 thread\)/);
  const outcome = JSON.parse(first.stdout) as { result: ResultRecord; reused: boolean };
  assert.equal(outcome.reused, false);
  const result = outcome.result;
  assert.equal(result.kind, "cost");
  assert.equal(result.task, "bench");
  assert.deepEqual(result.settings, { ctx: 512, slots: 2, threads: 1 });
  assert.match(result.taskDigest, /^sha256:[0-9a-f]{64}$/);
  assert.match(result.engineVersion, /^node-llama-cpp 3\.21\.1 \/ llama\.cpp /);
  // Concurrency is capped at the slot count: 8 streams become 2.
  assert.deepEqual((result.details as { workload: unknown }).workload, { promptTokens: 64, outputTokens: 8, concurrency: [1, 2] });
  const known = new Set(COST_METRICS.map((metric) => metric.name));
  for (const name of Object.keys(result.metrics)) assert.ok(known.has(name), `unknown metric ${name}`);
  for (const name of ["promptTokensPerSecond", "decodeTokensPerSecond", "ttftMs", "peakRssBytes", "aggregateDecodeTokensPerSecond.1", "aggregateDecodeTokensPerSecond.2"]) {
    const value = result.metrics[name];
    assert.ok(typeof value === "number" && value > 0, `${name} = ${value}`);
  }
  // The serving process holds Node, the addon and the model: far more than the 0.3 MB file.
  assert.ok(result.metrics.peakRssBytes! > 50e6 && result.metrics.peakRssBytes! < 1e9);
  assert.equal((await storedResults()).length, 1);

  const second = await runCli("bench", "tiny:f16", ...ARGS, "--home", home);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /stored result from \d{4}-\d\d-\d\dT[\d:]+Z; --force to measure again/);
  assert.doesNotMatch(second.stderr, /starting grove serve/);
  assert.match(second.stdout, /decode tokens\/s, 1 stream after a 64-token prompt/);
  assert.match(second.stdout, /peak RSS \(incl\. Node runtime\)/);

  const forced = await runCli("bench", "tiny:f16", ...ARGS, "--home", home, "--force", "--json");
  assert.equal(forced.code, 0, forced.stderr);
  const again = JSON.parse(forced.stdout) as { result: ResultRecord; reused: boolean };
  assert.equal(again.reused, false);
  assert.notEqual(again.result.createdAt, result.createdAt);
  assert.equal((await storedResults()).length, 1, "the same key is replaced, not added");
});

test("bad input: a clear error, exit 1, nothing stored", async () => {
  const before = (await storedResults()).length;
  const cases: [string[], RegExp][] = [
    [["no-such:model"], /no-such:model/],
    [["tiny:f16", "--ctx", "abc"], /--ctx must be a positive integer, got 'abc'/],
    [["tiny:f16", "--slots", "0"], /--slots must be a positive integer/],
    [["tiny:f16", "--threads", "-1"], /--threads must be a positive integer/],
    [["tiny:f16", "--concurrency", "1,x"], /--concurrency must be a positive integer, got 'x'/],
    [["tiny:f16", "--output-tokens", "1"], /--output-tokens must be at least 2/],
    [["tiny:f16", "--ctx", "256", "--prompt-tokens", "512"], /do not fit a context of 256 tokens per slot/],
  ];
  for (const [args, message] of cases) {
    const run = await runCliInProcess("bench", ...args, "--home", home);
    assert.equal(run.code, 1, args.join(" "));
    assert.match(run.stderr, message);
  }
  assert.equal((await storedResults()).length, before);
});

test("the report says which prompt each decode ran after, so the 1-stream decode and the 1-stream aggregate do not look contradictory (issue 23)", () => {
  const result = {
    metrics: { promptTokensPerSecond: 900, decodeTokensPerSecond: 177.5, ttftMs: 60, "aggregateDecodeTokensPerSecond.1": 241.9, "aggregateDecodeTokensPerSecond.4": 500, peakRssBytes: 2 ** 27 },
    details: { workload: { promptTokens: 512, outputTokens: 128, concurrency: [1, 4] } },
    settings: { ctx: 2048, slots: 4, threads: 2 },
    engineVersion: "x",
  } as unknown as ResultRecord;
  const text = formatCost(result);
  assert.match(text, /decode tokens\/s, 1 stream after a 512-token prompt +177\.5\n/);
  assert.match(text, /aggregate decode tokens\/s, 1 stream at once, short prompts +241\.9\n/);
  assert.match(text, /aggregate decode tokens\/s, 4 streams at once, short prompts +500\.0\n/);
  assert.doesNotMatch(text, /1 streams/);
});
