import type { Digest } from "../core/digest.js";
import { GroveError, InvalidRequestError } from "../core/errors.js";
import { isBetter, primaryMetric } from "../results/metrics.js";
import { comparabilityKey, mainGroup, whyApart } from "../results/comparability.js";
import { describeMachine, sameMachine, type Machine } from "../results/machine.js";
import type { ResultRecord, ResultStore } from "../results/result-store.js";
import { compareScores, SIGNIFICANCE_RULE } from "../results/uncertainty.js";
import type { ModelStore, TreeNode } from "../store/model-store.js";
import { estimateModelMemory, type MemoryEstimate } from "./memory-estimate.js";

/** A deployment's limits: what `grove plan` and `GET /api/plan` take. */
export interface PlanOptions {
  /** Memory the serving process may use, in bytes. */
  memoryBytes: number;
  /** Context tokens per slot. @default 4096 */
  contextSize?: number;
  /** Parallel slots. @default 4 */
  slots?: number;
  /** Largest acceptable median time per generated token, ms (1000 / measured decode tokens/s). */
  p50TokenMs?: number;
  /** Smallest acceptable aggregate decode tokens/s with every slot busy (measured). */
  minTokensPerSecond?: number;
  /** Quality task to rank by (`perplexity`, `kl-divergence`, a task file's name). */
  task?: string;
  /** Only this model's tree (a REF); default: every model of the store. */
  tree?: string;
  /** The machine whose measured speeds and memory are used where it has any (this one). */
  machine?: Machine;
}

/** One model that meets the limits. */
export interface PlanCandidate {
  digest: Digest;
  names: string[];
  quantization: string;
  /** Memory planned with: the estimate, or the measured peak where larger. */
  memoryBytes: number;
  estimate: MemoryEstimate;
  /** Peak RSS of a stored `grove bench` run at the same ctx and slots. */
  measuredPeakBytes: number | null;
  /** Measured single-stream decode tokens/s, and its p50 token time. */
  decodeTokensPerSecond: number | null;
  p50TokenMs: number | null;
  /** Measured aggregate decode tokens/s at the slot count. */
  aggregateTokensPerSecond: number | null;
  /** The quality it is ranked by, when measured on the task. */
  quality: { task: string; metric: string; value: number; higherIsBetter: boolean; standardError: number | null } | null;
  /** How the numbers were chosen, one line each. */
  notes: string[];
}

/** A model left out, and why in one line. */
export interface PlanExclusion {
  digest: Digest;
  names: string[];
  reason: string;
}

/** What a plan found. */
export interface PlanResult {
  limits: { memoryBytes: number; contextSize: number; slots: number; p50TokenMs: number | null; minTokensPerSecond: number | null; task: string | null };
  /** The best candidate, or null when none meets the limits. */
  choice: PlanCandidate | null;
  /** Every candidate that meets the limits, best first. */
  ranked: PlanCandidate[];
  excluded: PlanExclusion[];
  /** How the ranking was made. */
  notes: string[];
}

const UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parses a memory size: `8GiB`, `512MiB`, `8GB` (decimal), `1.5GiB`, or plain bytes.
 * @throws InvalidRequestError naming `param` for anything else, zero included
 */
export function parseSize(text: string, param = "memory"): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNITS[(match?.[2] ?? "").toLowerCase() || "b"];
  const bytes = match === null || unit === undefined ? Number.NaN : Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new InvalidRequestError(`${param} must be a size such as 8GiB, 512MiB, 8GB or a number of bytes, got '${text}'`, { param });
  }
  return bytes;
}

/** The limits as given in text (CLI flags, query parameters), checked into {@link PlanOptions}. */
export function planOptionsFromText(input: {
  memory?: string | undefined;
  ctx?: string | undefined;
  slots?: string | undefined;
  p50TokenMs?: string | undefined;
  minTps?: string | undefined;
  task?: string | undefined;
  tree?: string | undefined;
}, names: { p50TokenMs: string; minTps: string } = { p50TokenMs: "p50-token-ms", minTps: "min-tps" }): PlanOptions {
  if (input.memory === undefined || input.memory === "") throw new InvalidRequestError("Give the memory limit (memory, e.g. 8GiB)", { param: "memory" });
  const integer = (value: string | undefined, param: string): number | undefined => {
    if (value === undefined) return undefined;
    const number = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(number) || number < 1) throw new InvalidRequestError(`${param} must be a positive integer, got '${value}'`, { param });
    return number;
  };
  const positive = (value: string | undefined, param: string): number | undefined => {
    if (value === undefined) return undefined;
    const number = value.trim() === "" ? Number.NaN : Number(value);
    if (!Number.isFinite(number) || number <= 0) throw new InvalidRequestError(`${param} must be a positive number, got '${value}'`, { param });
    return number;
  };
  const options: PlanOptions = { memoryBytes: parseSize(input.memory) };
  const contextSize = integer(input.ctx, "ctx");
  const slots = integer(input.slots, "slots");
  const p50TokenMs = positive(input.p50TokenMs, names.p50TokenMs);
  const minTokensPerSecond = positive(input.minTps, names.minTps);
  if (contextSize !== undefined) options.contextSize = contextSize;
  if (slots !== undefined) options.slots = slots;
  if (p50TokenMs !== undefined) options.p50TokenMs = p50TokenMs;
  if (minTokensPerSecond !== undefined) options.minTokensPerSecond = minTokensPerSecond;
  if (input.task !== undefined && input.task !== "") options.task = input.task;
  if (input.tree !== undefined && input.tree !== "") options.tree = input.tree;
  return options;
}

/**
 * Plans a deployment: for each candidate model (the store's, or one tree's), estimates its
 * memory at ctx × slots ({@link estimateModelMemory}), checks the estimate against the peak of a
 * stored `grove bench` run at the same ctx and slots and plans with the larger, drops what does
 * not fit, what is too slow by measurement (p50 token time = 1000 / decode tokens/s; aggregate
 * decode tokens/s at the slot count) or is not measured when a speed limit is given, and ranks the
 * rest by measured quality on `task` (its primary metric; unmeasured models after the measured).
 * Without a task they are ranked by measured decode speed. Every exclusion has a one-line reason.
 *
 * @throws InvalidRequestError for bad limits, or a task no candidate has a result for
 * @throws ModelNotFoundError for an unknown `tree`
 */
export async function planDeployment(store: ModelStore, results: ResultStore, options: PlanOptions): Promise<PlanResult> {
  const contextSize = options.contextSize ?? 4096;
  const slots = options.slots ?? 4;
  checkLimits(options, contextSize, slots);
  const models = await candidates(store, options.tree);
  const digests = models.map((model) => model.digest);
  const allCosts = (await results.list({ modelDigests: digests, kind: "cost", task: "bench" })).filter((result) => result.settings.ctx === contextSize && result.settings.slots === slots);
  // Speeds of one machine only: this one's where it has any, else the one most models were measured on.
  const machine = costMachine(allCosts, options.machine);
  const costs = allCosts.filter((result) => machine !== null && sameMachine(result.machine, machine));
  const allQuality = options.task === undefined ? [] : await results.list({ modelDigests: digests, kind: "quality", task: options.task });
  const quality = qualityResults(allQuality);
  if (options.task !== undefined && quality.length === 0 && (await results.list({ task: options.task, kind: "quality" })).length === 0) {
    throw new InvalidRequestError(`No quality results for task '${options.task}': measure the candidates with grove eval REF --task ${options.task}`, { param: "task" });
  }
  const notes: string[] = [];
  if (machine !== null) notes.push(`measured speeds and memory from ${describeMachine(machine)}${allCosts.length > costs.length ? "; results of other machines are not used (shown per candidate)" : ""}`);
  else if (allCosts.length > 0) notes.push("measured speeds and memory are all of unknown machines (stored before machines were recorded): not used");
  const ranked: PlanCandidate[] = [];
  const excluded: PlanExclusion[] = [];
  for (const model of models) {
    const exclude = (reason: string) => excluded.push({ digest: model.digest, names: model.names, reason });
    const benchHint = `grove bench ${model.names[0] ?? model.digest} --ctx ${contextSize} --slots ${slots}`;
    let estimate: MemoryEstimate;
    try {
      estimate = await estimateModelMemory((await store.show(model.digest)).path, { contextSize, slots });
    } catch (error) {
      if (!(error instanceof GroveError)) throw error;
      exclude(`cannot estimate its memory: ${error.message}`);
      continue;
    }
    const cost = costs.find((result) => result.modelDigest === model.digest && (typeof result.metrics.peakRssBytes === "number" || typeof result.metrics.decodeTokensPerSecond === "number"));
    const candidateNotes: string[] = [];
    const elsewhere = cost === undefined ? allCosts.find((result) => result.modelDigest === model.digest) : undefined;
    if (elsewhere !== undefined) {
      candidateNotes.push(
        machine === null
          ? `speed and memory measured on an unknown machine only (stored before machines were recorded): not used — run grove bench again`
          : `speed and memory measured on ${describeMachine(elsewhere.machine)} only, not ${describeMachine(machine)}: not used`,
      );
    }
    const peak = numberOf(cost, "peakRssBytes");
    const memoryBytes = Math.max(estimate.totalBytes, peak ?? 0);
    if (peak !== null) {
      const difference = (estimate.totalBytes - peak) / peak;
      candidateNotes.push(
        `memory: estimate ${formatSize(estimate.totalBytes)} vs measured peak ${formatSize(peak)} (${difference >= 0 ? "+" : ""}${(difference * 100).toFixed(1)}%): planned with the ${peak > estimate.totalBytes ? "measured peak" : "estimate"}, the larger`,
      );
    } else {
      candidateNotes.push(`memory: estimate ${formatSize(estimate.totalBytes)} (no measured peak at ctx ${contextSize} × ${slots} slots)`);
    }
    if (memoryBytes > options.memoryBytes) {
      exclude(`does not fit: needs ${formatSize(memoryBytes)} (${peak !== null && peak > estimate.totalBytes ? "measured peak" : "estimate"}) at ctx ${contextSize} × ${slots} slots, limit ${formatSize(options.memoryBytes)}`);
      continue;
    }
    const decode = numberOf(cost, "decodeTokensPerSecond");
    const aggregate = numberOf(cost, `aggregateDecodeTokensPerSecond.${slots}`);
    const p50TokenMs = decode === null || decode <= 0 ? null : 1000 / decode;
    if (options.p50TokenMs !== undefined) {
      if (p50TokenMs === null) {
        exclude(`not measured: run ${benchHint} (needed for the p50 token time limit)`);
        continue;
      }
      if (p50TokenMs > options.p50TokenMs) {
        exclude(`too slow: p50 token time ${p50TokenMs.toFixed(1)} ms (decode ${decode!.toFixed(1)} tokens/s measured) > ${options.p50TokenMs} ms`);
        continue;
      }
    }
    if (options.minTokensPerSecond !== undefined) {
      if (aggregate === null) {
        exclude(`not measured: run ${benchHint} (aggregate decode at ${slots} streams is needed for the throughput limit)`);
        continue;
      }
      if (aggregate < options.minTokensPerSecond) {
        exclude(`too slow: aggregate decode ${aggregate.toFixed(1)} tokens/s at ${slots} streams (measured) < ${options.minTokensPerSecond}`);
        continue;
      }
    }
    const score = quality.find((result) => result.modelDigest === model.digest);
    const metric = score === undefined ? undefined : primaryMetric(score);
    const apart = score === undefined && quality[0] !== undefined ? allQuality.find((result) => result.modelDigest === model.digest && primaryMetric(result) !== undefined) : undefined;
    if (apart !== undefined) candidateNotes.push(`quality on ${options.task} ${whyApart(quality[0]!, apart) ?? "not comparable"}: not ranked by it`);
    else if (options.task !== undefined && metric === undefined) candidateNotes.push(`no quality result on ${options.task}: ranked after the measured ones`);
    ranked.push({
      digest: model.digest,
      names: model.names,
      quantization: model.quantization,
      memoryBytes,
      estimate,
      measuredPeakBytes: peak,
      decodeTokensPerSecond: decode,
      p50TokenMs,
      aggregateTokensPerSecond: aggregate,
      quality:
        metric === undefined
          ? null
          : { task: options.task!, metric: metric.name, value: metric.value, higherIsBetter: metric.higherIsBetter, standardError: score!.standardErrors?.[metric.name] ?? null },
      notes: candidateNotes,
    });
  }
  ranked.sort(compareCandidates);
  if (options.task !== undefined) notes.push(`ranked by measured quality on ${options.task}; models without a comparable result on it come after, by decode speed`);
  const [first, second] = ranked;
  if (first?.quality != null && second?.quality != null) {
    const resultOf = (candidate: PlanCandidate) => quality.find((result) => result.modelDigest === candidate.digest)!;
    const comparison = compareScores(resultOf(first), resultOf(second), first.quality.metric);
    if (comparison?.significant === false) notes.push(`the choice's ${first.quality.metric} is within noise of the next candidate's (${second.names[0] ?? second.digest}): ${SIGNIFICANCE_RULE}; the quality ranking does not separate them`);
    else if (comparison?.significant === true) notes.push(`the choice's ${first.quality.metric} is better than the next candidate's beyond noise (${SIGNIFICANCE_RULE})`);
  }
  else notes.push("no --task: ranked by measured decode speed (unmeasured last, smallest memory first)");
  return {
    limits: {
      memoryBytes: options.memoryBytes,
      contextSize,
      slots,
      p50TokenMs: options.p50TokenMs ?? null,
      minTokensPerSecond: options.minTokensPerSecond ?? null,
      task: options.task ?? null,
    },
    choice: ranked[0] ?? null,
    ranked,
    excluded,
    notes,
  };
}

function checkLimits(options: PlanOptions, contextSize: number, slots: number): void {
  if (!Number.isSafeInteger(options.memoryBytes) || options.memoryBytes < 1) throw new InvalidRequestError(`memory must be a positive number of bytes, got ${options.memoryBytes}`, { param: "memory" });
  if (!Number.isSafeInteger(contextSize) || contextSize < 1) throw new InvalidRequestError(`ctx must be a positive integer, got ${contextSize}`, { param: "ctx" });
  if (!Number.isSafeInteger(slots) || slots < 1) throw new InvalidRequestError(`slots must be a positive integer, got ${slots}`, { param: "slots" });
  for (const [name, value] of [["p50-token-ms", options.p50TokenMs], ["min-tps", options.minTokensPerSecond]] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new InvalidRequestError(`${name} must be a positive number, got ${value}`, { param: name });
  }
}

interface CandidateModel {
  digest: Digest;
  names: string[];
  quantization: string;
}

/** The store's models, or the models of one tree (a merge under two parents counted once). */
async function candidates(store: ModelStore, tree: string | undefined): Promise<CandidateModel[]> {
  if (tree === undefined) return (await store.list()).map(({ digest, names, quantization }) => ({ digest, names, quantization }));
  const seen = new Map<Digest, CandidateModel>();
  const visit = (node: TreeNode) => {
    if (!seen.has(node.digest)) seen.set(node.digest, { digest: node.digest, names: node.names, quantization: node.quantization });
    node.children.forEach(visit);
  };
  (await store.tree(tree)).forEach(visit);
  return [...seen.values()];
}

/**
 * One comparable quality result per model: results of a task are compared only on the same
 * text or task file with the same settings (`comparabilityKey`), the group most models were
 * measured on; newest first.
 */
function qualityResults(all: ResultRecord[]): ResultRecord[] {
  const usable = all.filter((result) => primaryMetric(result) !== undefined);
  const main = mainGroup(usable);
  const byModel = new Map<string, ResultRecord>();
  for (const result of usable) if (comparabilityKey(result) === main && !byModel.has(result.modelDigest)) byModel.set(result.modelDigest, result);
  return [...byModel.values()];
}

/** The machine whose costs a plan uses: the preferred one where it has results, else the one most results come from. */
function costMachine(costs: readonly ResultRecord[], preferred: Machine | undefined): Machine | null {
  if (preferred !== undefined && costs.some((result) => sameMachine(result.machine, preferred))) return preferred;
  const counts = new Map<string, { machine: Machine; models: Set<string> }>();
  for (const result of costs) {
    if (result.machine == null) continue;
    const entry = counts.get(result.machine.fingerprint) ?? { machine: result.machine, models: new Set() };
    counts.set(result.machine.fingerprint, { ...entry, models: entry.models.add(result.modelDigest) });
  }
  return [...counts.values()].sort((a, b) => b.models.size - a.models.size)[0]?.machine ?? null;
}

function numberOf(result: ResultRecord | undefined, name: string): number | null {
  const value = result?.metrics[name];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function compareCandidates(a: PlanCandidate, b: PlanCandidate): number {
  if (a.quality !== null && b.quality !== null && a.quality.value !== b.quality.value) return isBetter(a.quality.value, b.quality.value, a.quality.higherIsBetter) ? -1 : 1;
  if ((a.quality === null) !== (b.quality === null)) return a.quality === null ? 1 : -1;
  if ((a.decodeTokensPerSecond ?? -1) !== (b.decodeTokensPerSecond ?? -1)) return (b.decodeTokensPerSecond ?? -1) - (a.decodeTokensPerSecond ?? -1);
  return a.memoryBytes - b.memoryBytes;
}

/** Bytes in binary units, e.g. `1.37 GiB`, `162.5 MiB`. */
export function formatSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}
