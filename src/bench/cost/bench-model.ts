import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { InvalidRequestError } from "../../core/errors.js";
import { defaultThreadCount } from "../../engine/native-engine.js";
import { quantizerVersion } from "../../forge/quantize/quantize-model.js";
import type { ModelStore } from "../../store/model-store.js";
import { canonicalJson } from "../../core/canonical-json.js";
import { currentMachine } from "../../results/machine.js";
import { standardErrorOfMean } from "../../results/uncertainty.js";
import type { ResultRecord, ResultStore } from "../../results/result-store.js";
import { startBenchServer } from "../start-bench-server.js";
import { measureCost, type CostWorkload } from "./cost-workload.js";
import { findProcessByArgument, peakRssBytes } from "./peak-rss.js";

/** The task name of cost results. */
export const COST_TASK = "bench";

/** What `grove bench` measures and how the model is served. */
export interface BenchModelOptions {
  /** Context tokens per slot (`grove serve --ctx-size`). @default 2048 */
  contextSize?: number;
  /** Parallel slots (`grove serve --parallel`). @default 4 */
  slots?: number;
  /** CPU threads; default as `grove serve`: 1 below 1 GiB of weights, else every core. */
  threads?: number;
  /** Prompt tokens of the prompt-speed and single-stream requests. @default 512 */
  promptTokens?: number;
  /** Tokens generated per stream. @default 128 */
  outputTokens?: number;
  /** Concurrent streams for aggregate decode; values above `slots` are capped to it. @default [1, 2, 4, 8] */
  concurrency?: number[];
  /** Measure even when a result with the same key is stored. @default false */
  force?: boolean;
  /** Progress lines (the CLI writes them to stderr). */
  onProgress?: (message: string) => void;
}

/** What {@link benchModel} did. */
export interface BenchModelOutcome {
  result: ResultRecord;
  /** True when the stored result was returned without measuring. */
  reused: boolean;
}

const GROVE_BIN = fileURLToPath(new URL("../../../bin/grove.js", import.meta.url));

/** The settings of a cost result, as plan matches them. */
export interface CostSettings {
  ctx: number;
  slots: number;
  threads: number;
}

/** Checks a count option: a positive integer (or undefined). */
function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  const number = value ?? fallback;
  if (!Number.isInteger(number) || number < 1) throw new InvalidRequestError(`--${name} must be a positive integer, got ${String(value)}`, { param: name });
  return number;
}

/** The digest a workload's results are stored under: sha256 of its canonical JSON. */
export function workloadDigest(workload: CostWorkload): string {
  return `sha256:${createHash("sha256").update(canonicalJson(workload)).digest("hex")}`;
}

/**
 * `grove bench REF`: serves the store model with `grove serve` in a child process, with exactly
 * the given serving settings (the same engine and code path users serve with), drives it over
 * HTTP ({@link measureCost}), reads the serving process's peak RSS (VmHWM: the Node runtime and
 * addon included), and stores one `cost` result (task `bench`, task digest of the workload,
 * settings `{ctx, slots, threads}`). A stored result with the same key is returned unless
 * `force`. Every option is checked before anything starts; a failed run stores nothing.
 */
export async function benchModel(store: ModelStore, results: ResultStore, ref: string, options: BenchModelOptions = {}): Promise<BenchModelOutcome> {
  const contextSize = positiveInteger(options.contextSize, "ctx", 2048);
  const slots = positiveInteger(options.slots, "slots", 4);
  const promptTokens = positiveInteger(options.promptTokens, "prompt-tokens", 512);
  const outputTokens = positiveInteger(options.outputTokens, "output-tokens", 128);
  if (outputTokens < 2) throw new InvalidRequestError("--output-tokens must be at least 2: decode speed is timed after the first token", { param: "output-tokens" });
  const requested = options.concurrency ?? [1, 2, 4, 8];
  if (requested.length === 0) throw new InvalidRequestError("--concurrency needs at least one number", { param: "concurrency" });
  for (const streams of requested) positiveInteger(streams, "concurrency", 1);
  // Prompt and output must fit one slot's context, with a few tokens of the unique prefix to spare.
  if (promptTokens + outputTokens + 8 > contextSize) {
    throw new InvalidRequestError(`--prompt-tokens ${promptTokens} + --output-tokens ${outputTokens} do not fit a context of ${contextSize} tokens per slot`, { param: "prompt-tokens" });
  }
  const concurrency = [...new Set(requested.map((streams) => Math.min(streams, slots)))].sort((a, b) => a - b);
  const details = await store.show(ref);
  if (details.parents.some((edge) => edge.relation === "adapter")) {
    throw new InvalidRequestError(`${ref} is a LoRA adapter fork: grove bench measures models that serve alone`, { param: "ref" });
  }
  const threads = positiveInteger(options.threads, "threads", defaultThreadCount(details.model.size));
  const workload: CostWorkload = { promptTokens, outputTokens, concurrency };
  const settings: CostSettings = { ctx: contextSize, slots, threads };
  const machine = currentMachine();
  const key = { modelDigest: details.model.digest, task: COST_TASK, taskDigest: workloadDigest(workload), settings: { ...settings }, engineVersion: quantizerVersion(), machine };
  const stored = await results.get(key);
  if (stored !== undefined && options.force !== true) return { result: stored, reused: true };

  const progress = options.onProgress ?? (() => {});
  progress(`starting grove serve (${slots} slots × ${contextSize} tokens, ${threads} thread${threads === 1 ? "" : "s"})`);
  const started = await startBenchServer("grove", details.path, { threads, parallel: slots, contextSize }, { groveBin: GROVE_BIN, llamaServer: undefined, environment: process.env });
  let measurement;
  let peak: number | undefined;
  try {
    const home = /--home (\S+)/.exec(started.commandLine)?.[1];
    const pid = home === undefined ? undefined : await findProcessByArgument(home.replace(/^'|'$/g, ""));
    measurement = await measureCost(started.server.url, started.server.model, workload, progress);
    peak = pid === undefined ? undefined : await peakRssBytes(pid);
  } finally {
    await started.stop();
  }
  const result: ResultRecord = {
    ...key,
    kind: "cost",
    metrics: { ...measurement.metrics, peakRssBytes: peak ?? null },
    standardErrors: costErrors(measurement),
    flags: [],
    details: {
      ...measurement.details,
      workload,
      ...(requested.some((streams) => streams > slots) ? { concurrencyCappedAt: slots } : {}),
      peakRss: "VmHWM of the grove serve process: Node.js runtime, addon, mapped weights read, KV cache and compute buffers",
      server: started.commandLine,
    },
    createdAt: new Date().toISOString(),
  };
  await results.put(result);
  return { result, reused: false };
}

/**
 * Standard errors of the speeds measured several times: the median's, approximated by
 * √(π/2) · SE of the mean of the runs (its asymptotic value for normal data). Numbers measured
 * once (peak RSS, aggregate decode) have none.
 */
function costErrors(measurement: { details: { ttftSamplesMs: number[]; decodeSamples: number[]; promptSpeeds?: number[] } }): Record<string, number | null> {
  const ofMedian = (values: readonly number[] | undefined): number | null => {
    const error = values === undefined ? null : standardErrorOfMean(values);
    return error === null ? null : Math.sqrt(Math.PI / 2) * error;
  };
  return {
    decodeTokensPerSecond: ofMedian(measurement.details.decodeSamples),
    ttftMs: ofMedian(measurement.details.ttftSamplesMs),
    promptTokensPerSecond: ofMedian(measurement.details.promptSpeeds),
  };
}
