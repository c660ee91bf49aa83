import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Digest } from "../core/digest.js";
import { InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import { currentMachine } from "../results/machine.js";
import { ResultStore, type ResultRecord } from "../results/result-store.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { ModelStore } from "../store/model-store.js";
import { runCli, runCliInProcess } from "../test-support/run-cli.js";
import { parseSize, planDeployment, planOptionsFromText, type PlanResult } from "./plan.js";

// `grove plan` over stored results: a store with two sizes (test-tiny, small), each in F16 with a
// quantized Q8_0 fork, synthetic quality and cost results, and the plan must pick the best
// measured model that fits and explain every other one.

const MiB = 2 ** 20;
let directory: string;
let home: string;
const digests: Record<string, Digest> = {};

function result(name: string, kind: "quality" | "cost", metrics: Record<string, number>, extra: Partial<ResultRecord> = {}): ResultRecord {
  return {
    modelDigest: digests[name]!,
    kind,
    task: kind === "cost" ? "bench" : "perplexity",
    taskDigest: kind === "cost" ? "sha256:workload" : "sha256:text",
    settings: kind === "cost" ? { ctx: 512, slots: 4, threads: 1 } : { ctx: 512 },
    engineVersion: "node-llama-cpp 3.21.1 / llama.cpp v0.4.0",
    metrics,
    flags: [],
    details: {},
    createdAt: new Date().toISOString(),
    // Speeds are measured on a machine: this one, where the CLI runs too.
    machine: kind === "cost" ? currentMachine() : null,
    ...extra,
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-plan-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [preset, family] of [["test-tiny", "tiny"], ["small", "small"]] as const) {
    for (const dtype of ["f16", "q8_0"] as const) {
      const path = join(directory, `${family}-${dtype}.gguf`);
      await generateModel({ preset, seed: 3, dtype, outPath: path });
      const name = `${family}:${dtype === "f16" ? "f16" : "q8"}`;
      const imported = await store.importFile(path, dtype === "f16" ? { name } : { name, base: `${family}:f16`, relation: "quantized" });
      digests[name] = imported.model.digest;
    }
  }
  await store.close();
  const results = await ResultStore.open(home);
  await results.put(result("small:f16", "quality", { perplexity: 10 }));
  await results.put(result("small:q8", "quality", { perplexity: 10.2 }));
  await results.put(result("tiny:f16", "quality", { perplexity: 30 }));
  // A flagged result is never a score: tiny:q8 counts as unmeasured.
  await results.put(result("tiny:q8", "quality", { perplexity: 1 }, { flags: ["missing_logprobs"] }));
  // small:f16 measured above its estimate (~160 MiB): planned with the measured 200 MiB.
  await results.put(result("small:f16", "cost", { peakRssBytes: 200 * MiB, decodeTokensPerSecond: 100, "aggregateDecodeTokensPerSecond.4": 250 }));
  await results.put(result("small:q8", "cost", { peakRssBytes: 150 * MiB, decodeTokensPerSecond: 150, "aggregateDecodeTokensPerSecond.4": 300 }));
  await results.put(result("tiny:f16", "cost", { peakRssBytes: 140 * MiB, decodeTokensPerSecond: 1000, "aggregateDecodeTokensPerSecond.4": 2000 }));
  // Another context: not used for a plan at ctx 512.
  await results.put(result("tiny:q8", "cost", { peakRssBytes: 1, decodeTokensPerSecond: 5000 }, { settings: { ctx: 4096, slots: 4, threads: 1 } }));
  await results.close();
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function plan(text: Parameters<typeof planOptionsFromText>[0]): Promise<PlanResult> {
  const store = await ModelStore.open(home);
  const results = await ResultStore.open(home);
  try {
    return await planDeployment(store, results, planOptionsFromText(text));
  } finally {
    await results.close();
    await store.close();
  }
}

const namesOf = (candidates: { names: string[] }[]) => candidates.map((candidate) => candidate.names[0]);
const reasonOf = (result: PlanResult, name: string) => result.excluded.find((exclusion) => exclusion.names.includes(name))?.reason;

describe("planDeployment", () => {
  test("picks the best measured model that fits and explains each exclusion", async () => {
    const result = await plan({ memory: "190MiB", ctx: "512", slots: "4", task: "perplexity" });
    assert.equal(result.choice?.names[0], "small:q8");
    assert.deepEqual(namesOf(result.ranked), ["small:q8", "tiny:f16", "tiny:q8"]);
    assert.match(reasonOf(result, "small:f16")!, /does not fit: needs 200\.0 MiB \(measured peak\).*limit 190\.0 MiB/);
    assert.equal(result.excluded.length, 1);
    const chosen = result.choice!;
    assert.deepEqual(chosen.quality, { task: "perplexity", metric: "perplexity", value: 10.2, higherIsBetter: false, standardError: null });
    // Its measured peak (150 MiB) is below the estimate: the estimate is planned with.
    assert.equal(chosen.memoryBytes, chosen.estimate.totalBytes);
    assert.match(chosen.notes.join("\n"), /measured peak 150\.0 MiB.*planned with the estimate, the larger/);
    const unmeasured = result.ranked.at(-1)!;
    assert.equal(unmeasured.quality, null);
    assert.match(unmeasured.notes.join("\n"), /no quality result on perplexity: ranked after the measured ones/);
  });

  test("a latency limit drops the slow and the unmeasured", async () => {
    const result = await plan({ memory: "190MiB", ctx: "512", slots: "4", task: "perplexity", p50TokenMs: "5" });
    assert.deepEqual(namesOf(result.ranked), ["tiny:f16"]);
    assert.match(reasonOf(result, "small:q8")!, /too slow: p50 token time 6\.7 ms \(decode 150\.0 tokens\/s measured\) > 5 ms/);
    assert.match(reasonOf(result, "tiny:q8")!, /not measured: run grove bench tiny:q8 --ctx 512 --slots 4/);
    assert.equal(result.excluded.length, 3);
  });

  test("a throughput limit is checked against the aggregate at the slot count", async () => {
    const result = await plan({ memory: "1GiB", ctx: "512", slots: "4", task: "perplexity", minTps: "500" });
    assert.deepEqual(namesOf(result.ranked), ["tiny:f16"]);
    assert.match(reasonOf(result, "small:f16")!, /too slow: aggregate decode 250\.0 tokens\/s at 4 streams \(measured\) < 500/);
  });

  test("nothing fits: no choice, every model explained", async () => {
    const result = await plan({ memory: "100MiB", ctx: "512", slots: "4" });
    assert.equal(result.choice, null);
    assert.equal(result.excluded.length, 4);
    for (const exclusion of result.excluded) assert.match(exclusion.reason, /^does not fit: needs .* at ctx 512 × 4 slots, limit 100\.0 MiB$/);
  });

  test("--tree limits the candidates to one tree; without a task, decode speed ranks", async () => {
    const result = await plan({ memory: "8GiB", ctx: "512", slots: "4", tree: "small:f16" });
    assert.deepEqual(namesOf(result.ranked), ["small:q8", "small:f16"]);
    assert.match(result.notes.join("\n"), /no --task: ranked by measured decode speed/);
    // Without a measurement at this ctx × slots, the estimate alone.
    const other = await plan({ memory: "8GiB", ctx: "1024", slots: "2", tree: "small:f16" });
    for (const candidate of other.ranked) {
      assert.equal(candidate.measuredPeakBytes, null);
      assert.match(candidate.notes[0]!, /no measured peak at ctx 1024 × 2 slots/);
    }
  });

  test("bad input is refused with a message naming the parameter", async () => {
    for (const text of ["lots", "0", "-1GiB", "8 parsecs", ""]) assert.throws(() => parseSize(text), (error: unknown) => error instanceof InvalidRequestError && error.param === "memory");
    assert.equal(parseSize("8GiB"), 8 * 2 ** 30);
    assert.equal(parseSize("512MiB"), 512 * MiB);
    assert.equal(parseSize("8GB"), 8e9);
    assert.equal(parseSize("1048576"), MiB);
    assert.throws(() => planOptionsFromText({ memory: "1GiB", ctx: "-5" }), (error: unknown) => error instanceof InvalidRequestError && error.param === "ctx");
    assert.throws(() => planOptionsFromText({ memory: "1GiB", slots: "1.5" }), (error: unknown) => error instanceof InvalidRequestError && error.param === "slots");
    assert.throws(() => planOptionsFromText({ memory: "1GiB", p50TokenMs: "-1" }), (error: unknown) => error instanceof InvalidRequestError && error.param === "p50-token-ms");
    assert.throws(() => planOptionsFromText({ memory: "1GiB", minTps: "abc" }), (error: unknown) => error instanceof InvalidRequestError && error.param === "min-tps");
    assert.throws(() => planOptionsFromText({}), (error: unknown) => error instanceof InvalidRequestError && error.param === "memory");
    await assert.rejects(plan({ memory: "1GiB", task: "no-such-task" }), (error: unknown) => error instanceof InvalidRequestError && /No quality results for task 'no-such-task'.*grove eval/.test(error.message));
    await assert.rejects(plan({ memory: "1GiB", tree: "nothing:here" }), ModelNotFoundError);
  });
});

describe("grove plan", () => {
  test("prints the choice, the ranking and one line per exclusion", async () => {
    const run = await runCli("plan", "--memory", "190MiB", "--ctx", "512", "--slots", "4", "--task", "perplexity", "--home", home);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /choice: small:q8 \(Q8_0/);
    assert.match(run.stdout, /excluded:\n {2}small:f16: does not fit/);
    const json = await runCli("plan", "--memory", "190MiB", "--ctx", "512", "--task", "perplexity", "--home", home, "--json");
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as PlanResult).choice?.names[0], "small:q8");
  });

  test("bad flags: a clear error and exit 1", async () => {
    for (const args of [["--memory", "lots"], ["--memory", "1GiB", "--slots", "-2"], ["--memory", "1GiB", "--p50-token-ms", "-3"]]) {
      const run = await runCliInProcess("plan", ...args, "--home", home);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /error \(invalid_parameter\): (memory|slots|p50-token-ms) must be/);
    }
  });
});
