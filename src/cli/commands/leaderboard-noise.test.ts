import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Digest } from "../../core/digest.js";
import { SHIPPED_UNRECORDED_MACHINE } from "../../demo/embedded.js";
import { generateModel } from "../../forge/generate/generate-model.js";
import { currentMachine } from "../../results/machine.js";
import { ResultStore, type ResultRecord } from "../../results/result-store.js";
import { mean, standardErrorsFromSamples, type ResultSamples } from "../../results/uncertainty.js";
import type { FrontResult } from "../../results/views/front.js";
import type { LeaderboardResult } from "../../results/views/leaderboard.js";
import type { PlanResult } from "../../plan/plan.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli, runCliJson } from "../../test-support/run-cli.js";

// Issue 21's acceptance: a leaderboard whose ranks are noise says so, a pair well apart is
// marked different; front and plan keep results of another machine (the shipped demo family's)
// and another text apart, and say why. Seven generated test-tiny models: a base and six
// fine-tunes, with constructed per-chunk results put straight into results.db.

let directory: string;
let home: string;
const digests: Record<string, Digest> = {};
const ENGINE = "node-llama-cpp 3.21.1 / llama.cpp v0.4.0";
const CHUNKS = 40;
const NAMES = ["t:base", "t:a", "t:b", "t:c", "t:d", "t:e", "t:far", "t:other"];
/** Mean-NLL offsets: the first six lie within 0.02 nats of each other, t:far 0.5 above; t:other is measured on another text. */
const OFFSETS = [0, 0.004, 0.008, 0.012, 0.016, 0.02, 0.5, -3];

/**
 * Per-chunk mean NLLs: a difficulty shared by every model (which a paired comparison cancels),
 * the model's offset, and a zero-mean wiggle of amplitude 0.1 of its own frequency (so the mean
 * difference of two models is exactly their offsets' and its standard error ≈ 0.1 / √40 ≈ 0.016:
 * 1.96 × 0.016 ≈ 0.031 > 0.02).
 */
function chunkNll(model: number): number[] {
  return Array.from({ length: CHUNKS }, (_, chunk) => 6 + ((chunk * 7) % 5) * 0.4 + OFFSETS[model]! + 0.1 * Math.cos((2 * Math.PI * (model + 1) * chunk) / CHUNKS));
}

function perplexityResult(model: number, extra: Partial<ResultRecord> = {}): ResultRecord {
  const samples: ResultSamples = { unit: "chunk", values: { nll: chunkNll(model) } };
  const metrics = { perplexity: Math.exp(mean(samples.values.nll!)) };
  return {
    modelDigest: digests[NAMES[model]!]!,
    kind: "quality",
    task: "perplexity",
    taskDigest: "sha256:heldout-text",
    settings: { ctx: 256, batch: 2048 },
    engineVersion: ENGINE,
    metrics,
    standardErrors: standardErrorsFromSamples(metrics, samples),
    samples,
    flags: [],
    details: {},
    createdAt: "2026-01-02T00:00:00.000Z",
    machine: null,
    ...extra,
  };
}

function benchResult(model: number, decode: number, machine: ResultRecord["machine"]): ResultRecord {
  return {
    modelDigest: digests[NAMES[model]!]!,
    kind: "cost",
    task: "bench",
    taskDigest: "sha256:workload",
    settings: { ctx: 512, slots: 4, threads: 1 },
    engineVersion: ENGINE,
    metrics: { decodeTokensPerSecond: decode, peakRssBytes: 100e6 + model, "aggregateDecodeTokensPerSecond.4": decode * 2 },
    standardErrors: { decodeTokensPerSecond: 2 },
    flags: [],
    details: {},
    createdAt: "2026-01-02T00:00:00.000Z",
    machine,
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-noise-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [index, name] of NAMES.entries()) {
    const path = join(directory, `${index}.gguf`);
    await generateModel({ preset: "test-tiny", seed: 20 + index, dtype: "f16", outPath: path });
    digests[name] = (await store.importFile(path, index === 0 ? { name } : { name, base: "t:base", relation: "finetune" })).model.digest;
  }
  await store.close();
  const results = await ResultStore.open(home);
  for (let model = 0; model < 7; model++) await results.put(perplexityResult(model));
  // Far better, but on another text: never ranked with the others.
  await results.put(perplexityResult(7, { taskDigest: "sha256:another-text" }));
  // This machine measured five models; the shipped demo family's machine (≈ 5 × faster) two.
  const here = currentMachine();
  for (const model of [0, 1, 2, 3, 4]) await results.put(benchResult(model, 150 + model * 5, here));
  for (const model of [5, 6]) await results.put(benchResult(model, 800 + model, SHIPPED_UNRECORDED_MACHINE));
  await results.close();
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

const json = <T>(...args: string[]): Promise<T> => runCliJson<T>(home, ...args);

describe("uncertainty in the leaderboard", () => {
  test("six ranks within noise are marked not distinguishable; a pair well beyond its error is marked different", async () => {
    const board = await json<LeaderboardResult>("leaderboard", "--task", "perplexity", "--tree", "t:base");
    const byName = new Map(board.rows.map((row) => [row.names[0]!, row]));
    assert.deepEqual(board.rows.map((row) => row.rank), [1, 2, 3, 4, 5, 6, 7, null]);
    assert.equal(board.rows[6]!.names[0], "t:far");
    const six = NAMES.slice(0, 6).map((name) => byName.get(name)!);
    for (const row of six) {
      assert.equal(row.withinNoiseOf.length, 5, `${row.names[0]} is within noise of the other five`);
      assert.ok(!row.withinNoiseOf.includes(digests["t:far"]!));
      assert.ok(row.standardError! > 0, "each score has its standard error");
    }
    const far = byName.get("t:far")!;
    assert.deepEqual(far.withinNoiseOf, [], "t:far differs from every other beyond noise");
    assert.equal(far.againstAbove!.significant, true);
    assert.equal(far.againstAbove!.paired, true);
    assert.equal(far.againstAbove!.units, CHUNKS);
    assert.equal(byName.get("t:a")!.againstAbove!.significant, false);
    // The paired error is that of the mean per-chunk difference: 0.1 · √(var of cos_i − cos_j) / √n, computed by hand.
    const differences = chunkNll(1).map((value, chunk) => value - chunkNll(0)[chunk]!);
    const average = mean(differences);
    const expected = Math.sqrt(differences.reduce((sum, value) => sum + (value - average) ** 2, 0) / (CHUNKS - 1) / CHUNKS);
    const pair = six.find((row) => row.againstAbove !== null && row.names[0] === "t:a")!.againstAbove!;
    assert.ok(Math.abs(pair.standardError! - expected) < 1e-12, `${pair.standardError} vs ${expected}`);
    assert.match(board.notes.join("\n"), /within noise/);

    const table = await runCli("leaderboard", "--task", "perplexity", "--tree", "t:base", "--home", home);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout.match(/≈ 1-6/g)?.length, 6, table.stdout);
    assert.match(table.stdout, /t:far .* ±/);
    assert.doesNotMatch(table.stdout.split("\n").find((line) => line.includes("t:far"))!, /≈/);
  });
});

describe("comparability: the shipped machine and another text are kept apart", () => {
  test("front by decode speed places this machine's results only and says why the rest are apart", async () => {
    const front = await json<FrontResult>("front", "--task", "perplexity", "--cost", "decodeTokensPerSecond");
    assert.equal(front.machine?.fingerprint, currentMachine().fingerprint);
    const placed = [...front.front, ...front.dominated].map((model) => model.names[0]).sort();
    assert.deepEqual(placed, ["t:a", "t:b", "t:base", "t:c", "t:d"]);
    const apart = new Map(front.unplaced.map((model) => [model.names[0]!, model.reason]));
    for (const name of ["t:e", "t:far"]) assert.match(apart.get(name)!, /not recorded \(the machine that built the shipped demo family\).*speeds of different machines are not compared/);
    assert.match(front.notes.join("\n"), /measured on another machine: shown apart/);
    // Quality within noise of its dominator is said so.
    assert.ok(front.dominated.every((model) => model.dominatedWithinNoise), JSON.stringify(front.dominated));
  });

  test("a perplexity on another text is shown apart in the leaderboard, the front and the plan, with the reason", async () => {
    const board = await json<LeaderboardResult>("leaderboard", "--task", "perplexity");
    const other = board.rows.find((row) => row.names[0] === "t:other")!;
    assert.equal(other.rank, null);
    assert.ok(other.flags.includes("not_comparable"));
    assert.match(other.apart!, /measured on another text or task file \(sha256:another-text…, the ranked ones on sha256:heldout-text…\)/);
    assert.match(board.notes.join("\n"), /1 result is shown apart, not ranked/);

    const front = await json<FrontResult>("front", "--task", "perplexity");
    assert.match(front.unplaced.find((model) => model.names[0] === "t:other")!.reason, /^quality measured on another text or task file/);

    const run = await runCli("plan", "--memory", "8GiB", "--ctx", "512", "--slots", "4", "--task", "perplexity", "--home", home, "--json");
    assert.equal(run.code, 0, run.stderr);
    const plan = JSON.parse(run.stdout) as PlanResult;
    assert.match(plan.notes.join("\n"), new RegExp(`measured speeds and memory from ${escape(currentMachine().cpu)}.*results of other machines are not used`));
    assert.notEqual(plan.choice?.names[0], "t:other", "a perplexity on another text does not win the plan");
    const apart = plan.ranked.find((entry) => entry.names[0] === "t:other")!;
    assert.equal(apart.quality, null);
    assert.match(apart.notes.join("\n"), /quality on perplexity measured on another text or task file .*: not ranked by it/);
    for (const name of ["t:e", "t:far"]) {
      const candidate = plan.ranked.find((entry) => entry.names[0] === name)!;
      assert.equal(candidate.decodeTokensPerSecond, null, `${name}'s shipped speed is not used`);
      assert.match(candidate.notes.join("\n"), /measured on not recorded \(the machine that built the shipped demo family\).* only, not .*: not used/);
    }
    // The choice is the best quality, and the plan says whether the next is within noise of it.
    assert.match(plan.notes.join("\n"), /within noise of the next candidate's/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
