import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { currentMachine } from "../../results/machine.js";
import { ResultStore, type ResultRecord } from "../../results/result-store.js";
import type { FrontResult } from "../../results/views/front.js";
import type { LeaderboardResult, TaskSummary } from "../../results/views/leaderboard.js";
import type { Digest } from "../../core/digest.js";
import { generateModel } from "../../forge/generate/generate-model.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli, runCliInProcess, runCliJson } from "../../test-support/run-cli.js";

// `grove leaderboard` and `grove front` over a store of generated test-tiny models (f32 with
// f16 and q8 forks, and an unrelated model) and synthetic results put straight into results.db.

let directory: string;
let home: string;
const digests: Record<string, Digest> = {};
const ENGINE = "node-llama-cpp 3.21.1 / llama.cpp v0.4.0";

function result(name: string, task: string, metrics: Record<string, number>, extra: Partial<ResultRecord> = {}): ResultRecord {
  const cost = task === "bench";
  return {
    modelDigest: digests[name] ?? (name as Digest),
    kind: cost ? "cost" : "quality",
    task,
    taskDigest: `sha256:${task}`,
    settings: cost ? { ctx: 512, slots: 1, threads: 1 } : { ctx: 512 },
    engineVersion: ENGINE,
    metrics,
    flags: [],
    details: {},
    createdAt: "2026-01-02T00:00:00.000Z",
    // Speeds are measured on a machine: this one, where the CLI runs too.
    machine: cost ? currentMachine() : null,
    ...extra,
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-leaderboard-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [name, dtype, seed] of [["tiny:f32", "f32", 9], ["tiny:f16", "f16", 9], ["tiny:q8", "q8_0", 9], ["other:f16", "f16", 4]] as const) {
    const path = join(directory, `${name.replace(":", "-")}.gguf`);
    await generateModel({ preset: "test-tiny", seed, dtype, outPath: path });
    const fork = name === "tiny:f16" || name === "tiny:q8";
    digests[name] = (await store.importFile(path, fork ? { name, base: "tiny:f32", relation: "quantized" } : { name })).model.digest;
  }
  await store.close();
  const results = await ResultStore.open(home);
  await results.put(result("tiny:f32", "perplexity", { perplexity: 40, bitsPerByte: 5 }));
  await results.put(result("tiny:f16", "perplexity", { perplexity: 40, bitsPerByte: 5 }));
  await results.put(result("tiny:q8", "perplexity", { perplexity: 41, bitsPerByte: 5.1 }));
  // Older, other settings: not shown.
  await results.put(result("tiny:q8", "perplexity", { perplexity: 50, bitsPerByte: 6 }, { settings: { ctx: 256 }, createdAt: "2026-01-01T00:00:00.000Z" }));
  // Flagged: listed with its flag, never ranked, however good the number.
  await results.put(result("other:f16", "perplexity", { perplexity: 1, bitsPerByte: 0.1 }, { flags: ["missing_logprobs"] }));
  // A model no longer in the store.
  await results.put(result(`sha256:${"0".repeat(64)}`, "perplexity", { perplexity: 2, bitsPerByte: 1 }));
  await results.put(result("tiny:q8", "kl-divergence", { klDivergence: 0.01, top1Agreement: 0.98 }, { settings: { ctx: 512, reference: digests["tiny:f32"] } }));
  await results.put(result("tiny:f16", "kl-divergence", { klDivergence: 0.0001, top1Agreement: 1 }, { settings: { ctx: 512, reference: digests["tiny:f32"] } }));
  await results.put(result("tiny:f32", "arith", { acc: 0.9, accNorm: 0.8 }));
  await results.put(result("tiny:q8", "arith", { acc: 0.95, accNorm: 0.7 }));
  await results.put(result("tiny:f16", "arith", { acc: 0.2, accNorm: 0.2 }, { flags: ["below_chance"] }));
  await results.put(result("tiny:f32", "bench", { decodeTokensPerSecond: 500, peakRssBytes: 300e6 }));
  await results.put(result("tiny:f16", "bench", { decodeTokensPerSecond: 600, peakRssBytes: 200e6 }));
  await results.put(result("tiny:q8", "bench", { decodeTokensPerSecond: 900, peakRssBytes: 150e6 }));
  await results.close();
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

const json = <T>(...args: string[]): Promise<T> => runCliJson<T>(home, ...args);

const names = (rows: readonly { names: string[] }[]): string[] => rows.map((row) => row.names[0]!);

describe("grove leaderboard", () => {
  test("without --task lists the tasks with results and their model counts", async () => {
    const { tasks } = await json<{ tasks: TaskSummary[] }>("leaderboard");
    assert.deepEqual(
      tasks.map((task) => [task.task, task.kind, task.models, task.results]),
      [["arith", "quality", 3, 3], ["bench", "cost", 3, 3], ["kl-divergence", "quality", 2, 2], ["perplexity", "quality", 4, 5]],
    );
  });

  test("ranks by the primary metric, lower is better; ties share a rank; flagged last; newest settings", async () => {
    const board = await json<LeaderboardResult>("leaderboard", "--task", "perplexity");
    assert.deepEqual(board.metric, { name: "perplexity", higherIsBetter: false });
    assert.deepEqual(names(board.rows), ["tiny:f16", "tiny:f32", "tiny:q8", "other:f16"]);
    assert.deepEqual(board.rows.map((row) => row.rank), [1, 1, 3, null]);
    assert.deepEqual(board.rows[3]!.flags, ["missing_logprobs"]);
    assert.equal(board.rows[3]!.value, null);
    const q8 = board.rows[2]!;
    assert.deepEqual(q8.settings, { ctx: 512 });
    assert.equal(q8.olderResults, 1);
    assert.deepEqual(q8.metrics, { perplexity: 41, bitsPerByte: 5.1 });
    assert.equal(q8.klDivergence!.value, 0.01);
    assert.equal(q8.klDivergence!.reference, digests["tiny:f32"]);
    assert.equal(q8.cost!.decodeTokensPerSecond, 900);
    assert.equal(board.rows[1]!.klDivergence, null); // the root has no parent to diverge from
    assert.ok(q8.size < board.rows[1]!.size);
  });

  test("the table shows metrics, KL, cost and the flag instead of a rank", async () => {
    const run = await runCli("leaderboard", "--task", "perplexity", "--home", home);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split("\n");
    assert.match(lines[0]!, /perplexity: ranked by perplexity \(lower is better, ± one standard error\)/);
    assert.match(lines[1]!, /^RANK\s+MODEL\s+QUANT\s+SIZE\s+perplexity\s+bitsPerByte\s+WITHIN NOISE\s+KL\s+DECODE T\/S\s+PEAK RSS\s+FLAGS$/);
    assert.match(lines[4]!, /^\s*3\s+tiny:q8\s+Q8_0\s.*41\.00\s+5\.100\s+(\S+\s+)?0\.01000\s+900\.0\s+150\.0 MB/);
    assert.match(lines[5]!, /^\s*-\s+other:f16\s.*FLAGGED: missing_logprobs \(not a score\)/);
    assert.match(run.stdout, /note: 1 model has older results with other settings/);
  });

  test("higher-is-better tasks, --metric, and --tree", async () => {
    const arith = await json<LeaderboardResult>("leaderboard", "--task", "arith");
    assert.deepEqual(names(arith.rows), ["tiny:q8", "tiny:f32", "tiny:f16"]);
    assert.deepEqual(arith.rows.map((row) => row.flags), [[], [], ["below_chance"]]);
    const byNorm = await json<LeaderboardResult>("leaderboard", "--task", "arith", "--metric", "accNorm");
    assert.deepEqual(byNorm.metric, { name: "accNorm", higherIsBetter: true });
    assert.deepEqual(names(byNorm.rows), ["tiny:f32", "tiny:q8", "tiny:f16"]);
    const tree = await json<LeaderboardResult>("leaderboard", "--task", "perplexity", "--tree", "other:f16");
    assert.deepEqual(names(tree.rows), ["other:f16"]);
  });

  test("bad input is a clear error", async () => {
    for (const [args, message] of [
      [["--task", "no-such-task"], /No results for task 'no-such-task'; tasks with results: arith, bench, kl-divergence, perplexity/],
      [["--task", "perplexity", "--metric", "acc"], /Unknown metric 'acc' for task 'perplexity': its results hold perplexity, bitsPerByte/],
      [["--metric", "acc"], /--metric needs --task/],
      [["--task", "perplexity", "--tree", "no-such:model"], /no-such:model/],
    ] as const) {
      const run = await runCliInProcess("leaderboard", ...args, "--home", home);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, message);
    }
  });
});

describe("grove front", () => {
  test("by size: a bigger model no better than a smaller one is dominated; the chart is written", async () => {
    const out = join(directory, "front.svg");
    const front = await json<FrontResult>("front", "--task", "perplexity", "--out", out);
    assert.deepEqual(front.cost, { metric: "size", higherIsBetter: false });
    assert.deepEqual(names(front.front), ["tiny:q8", "tiny:f16"]);
    assert.deepEqual(names(front.dominated), ["tiny:f32"]);
    assert.deepEqual(names(front.dominated[0]!.dominatedBy), ["tiny:f16"]);
    assert.deepEqual(names(front.unplaced), ["other:f16"]);
    assert.match(front.unplaced[0]!.reason, /missing_logprobs/);
    const svg = await readFile(out, "utf8");
    assert.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const name of ["tiny:q8", "tiny:f16", "tiny:f32"]) assert.ok(svg.includes(`>${name}</text>`), name);
    assert.ok(!svg.includes(">other:f16<"));
    assert.ok(svg.trimEnd().endsWith("</svg>"));
  });

  test("by decode speed (higher is better), as a table", async () => {
    const run = await runCli("front", "--task", "perplexity", "--cost", "decodeTokensPerSecond", "--home", home);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /perplexity: perplexity \(lower is better\) vs decodeTokensPerSecond \(higher is better\)/);
    assert.match(run.stdout, /tiny:q8\s+Q8_0\s+41\.00\s+900\.0\s+front/);
    assert.match(run.stdout, /tiny:f16\s+F16\s+40\.00\s+600\.0\s+front/);
    assert.match(run.stdout, /tiny:f32\s+F32\s+40\.00\s+500\.0\s+dominated by tiny:f16/);
    assert.match(run.stdout, /not placed:\n  other:f16: quality not a score: missing_logprobs/);
  });

  test("without --task: the quality task measured on the most models; higher-is-better quality", async () => {
    const front = await json<FrontResult>("front", "--cost", "peakRssBytes");
    assert.equal(front.task, "perplexity");
    const arith = await json<FrontResult>("front", "--task", "arith", "--cost", "peakRssBytes");
    // q8: better accuracy and a smaller peak than f32; f16 is below chance.
    assert.deepEqual(names(arith.front), ["tiny:q8"]);
    assert.deepEqual(names(arith.dominated), ["tiny:f32"]);
    assert.deepEqual(names(arith.unplaced), ["tiny:f16"]);
  });

  test("bad input is a clear error and writes nothing", async () => {
    const missing = join(directory, "no-such-dir", "front.svg");
    const out = join(directory, "bad.svg");
    for (const [args, message] of [
      [["--task", "no-such-task", "--out", out], /No results for task 'no-such-task'/],
      [["--task", "bench", "--out", out], /'bench' is a cost measurement/],
      [["--cost", "vibes", "--out", out], /Unknown cost 'vibes': use size, peakRssBytes, decodeTokensPerSecond/],
      [["--task", "perplexity", "--out", missing], /--out: the directory .*no-such-dir does not exist/],
    ] as const) {
      const run = await runCliInProcess("front", ...args, "--home", home);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, message);
    }
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(missing), false);
  });
});
