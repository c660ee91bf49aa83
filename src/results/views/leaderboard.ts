import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import type { ModelStore, TreeNode } from "../../store/model-store.js";
import { primaryMetric } from "../metrics.js";
import { IMPORTED_FLAG } from "../import-lm-eval.js";
import type { ResultRecord, ResultStore } from "../result-store.js";
import { metricDirection, rankEntries } from "./ranking.js";

/** Input of {@link buildLeaderboard}. */
export interface LeaderboardOptions {
  /** The task ranked: `perplexity`, `kl-divergence`, a task file's name, or `bench`. */
  task: string;
  /** Only the models of this model's fork tree (a name, digest or digest prefix). */
  tree?: string;
  /** Rank by this metric of the task's results instead of its primary metric (`bitsPerByte`, `accNorm`, …). */
  metric?: string;
}

/** A task that has results, for the leaderboard without `--task`. */
export interface TaskSummary {
  task: string;
  kind: ResultRecord["kind"];
  /** Models of the store (or tree) with a result on it. */
  models: number;
  results: number;
  /** Metric names its results hold. */
  metrics: string[];
}

/** One model's row. */
export interface LeaderboardRow {
  /** 1 for the best; equal values share a rank; null for a flagged or unmeasured result. */
  rank: number | null;
  digest: Digest;
  names: string[];
  quantization: string;
  /** File size in bytes. */
  size: number;
  /** The value of the ranked metric; null when flagged or not measured. */
  value: number | null;
  /** Every number of the result (primary and secondary). */
  metrics: Record<string, number | null>;
  /** Why it is not ranked: the result's flags (`below_chance`, …) or `metric_not_measured`. */
  flags: string[];
  /** The settings of the result shown: the newest of this model on this task. */
  settings: Record<string, unknown>;
  taskDigest: string;
  engineVersion: string;
  createdAt: string;
  /** Results of this model on this task with other settings (older; not shown). */
  olderResults: number;
  /** KL divergence to a parent, where measured (the newest against a parent). */
  klDivergence: { value: number | null; top1Agreement: number | null; reference: string | null; createdAt: string } | null;
  /** The newest `grove bench` result of the model, where one exists. */
  cost: { decodeTokensPerSecond: number | null; peakRssBytes: number | null; settings: Record<string, unknown>; createdAt: string } | null;
}

/** What `grove leaderboard --task` prints and `GET /api/leaderboard?task=` returns. */
export interface LeaderboardResult {
  task: string;
  /** `quality`, or `cost` for `bench`. */
  kind: ResultRecord["kind"];
  /** The metric ranked by, and which way is better. */
  metric: { name: string; higherIsBetter: boolean };
  tree: string | null;
  /** Ranked rows best first, then flagged or unmeasured ones. */
  rows: LeaderboardRow[];
  notes: string[];
}

/** A model a view may show. */
export interface ViewModel {
  digest: Digest;
  names: string[];
  quantization: string;
  size: number;
  /** Digests of its parents. */
  parents: Digest[];
}

/**
 * The store's models (or those of the tree holding `tree`), with their parents. A merge under
 * two parents is counted once.
 */
export async function viewModels(store: ModelStore, tree?: string): Promise<ViewModel[]> {
  const parents = new Map<Digest, Set<Digest>>();
  const inTree = new Set<Digest>();
  const visit = (node: TreeNode): void => {
    inTree.add(node.digest);
    for (const child of node.children) {
      parents.set(child.digest, (parents.get(child.digest) ?? new Set()).add(node.digest));
      visit(child);
    }
  };
  (await store.tree(tree)).forEach(visit);
  return (await store.list())
    .filter((model) => tree === undefined || inTree.has(model.digest))
    .map((model) => ({ digest: model.digest, names: model.names, quantization: model.quantization, size: model.size, parents: [...(parents.get(model.digest) ?? [])] }));
}

/** The tasks with results for the store's models (or one tree's), by name. */
export async function listTasks(store: ModelStore, results: ResultStore, tree?: string): Promise<TaskSummary[]> {
  const models = await viewModels(store, tree);
  const byTask = new Map<string, { kind: ResultRecord["kind"]; models: Set<string>; results: number; metrics: Set<string> }>();
  for (const result of results.list({ modelDigests: models.map((model) => model.digest) })) {
    const entry = byTask.get(result.task) ?? { kind: result.kind, models: new Set(), results: 0, metrics: new Set() };
    entry.models.add(result.modelDigest);
    entry.results += 1;
    Object.keys(result.metrics).forEach((name) => entry.metrics.add(name));
    byTask.set(result.task, entry);
  }
  return [...byTask.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([task, entry]) => ({ task, kind: entry.kind, models: entry.models.size, results: entry.results, metrics: [...entry.metrics] }));
}

/**
 * Ranks the models with a result on one task, best first by the task's primary metric (or
 * `metric`). Per model the newest result counts (its settings are in the row); a flagged result
 * is listed after the ranked ones with its flags, never ranked. Each row carries the model's
 * KL divergence to its parent and its newest cost result where stored.
 *
 * @throws InvalidRequestError (param `task`) for a task without results, (param `metric`) for a
 * metric its results do not hold or whose direction is unknown
 */
export async function buildLeaderboard(store: ModelStore, results: ResultStore, options: LeaderboardOptions): Promise<LeaderboardResult> {
  // Imported results (another tool's numbers) are never ranked beside Grove's own: a note says so.
  const stored = results.list({ task: options.task });
  const all = stored.filter((result) => !result.flags.includes(IMPORTED_FLAG));
  const imported = stored.length - all.length;
  if (all.length === 0 && imported > 0) {
    throw new InvalidRequestError(`Task '${options.task}' has only imported results (${imported}), which are not ranked beside Grove's measurements: see grove results ls --task ${options.task}`, { param: "task" });
  }
  if (all.length === 0) {
    const known = [...new Set(results.list().map((result) => result.task))].sort();
    throw new InvalidRequestError(
      `No results for task '${options.task}'${known.length > 0 ? `; tasks with results: ${known.join(", ")}` : ": measure models with grove eval REF --task … or grove bench REF"}`,
      { param: "task" },
    );
  }
  const models = await viewModels(store, options.tree);
  const byDigest = new Map(models.map((model) => [model.digest, model]));
  // list() is newest first: the first result per model is the one shown.
  const newest = new Map<Digest, { result: ResultRecord; older: number }>();
  for (const result of all) {
    if (!byDigest.has(result.modelDigest)) continue;
    const seen = newest.get(result.modelDigest);
    if (seen === undefined) newest.set(result.modelDigest, { result, older: 0 });
    else seen.older += 1;
  }
  const metric = chooseMetric(all, options.metric);
  const kl = results.list({ task: "kl-divergence", modelDigests: [...newest.keys()] });
  const costs = results.list({ task: "bench", kind: "cost", modelDigests: [...newest.keys()] });
  const label = (model: ViewModel): string => model.names[0] ?? model.digest;
  const ranked = rankEntries(
    [...newest.values()].map(({ result, older }) => ({
      item: { result, older, model: byDigest.get(result.modelDigest)! },
      value: typeof result.metrics[metric.name] === "number" ? result.metrics[metric.name]! : null,
      flags: result.flags,
    })),
    metric.higherIsBetter,
    (a, b) => label(a.model).localeCompare(label(b.model)),
  );
  const rows = ranked.map(({ item: { result, older, model }, rank, value, flags }): LeaderboardRow => {
    const divergence = kl.find((candidate) => candidate.modelDigest === model.digest && model.parents.includes(candidate.settings.reference as Digest));
    const cost = costs.find((candidate) => candidate.modelDigest === model.digest);
    return {
      rank,
      digest: model.digest,
      names: model.names,
      quantization: model.quantization,
      size: model.size,
      value,
      metrics: result.metrics,
      flags,
      settings: result.settings,
      taskDigest: result.taskDigest,
      engineVersion: result.engineVersion,
      createdAt: result.createdAt,
      olderResults: older,
      klDivergence:
        divergence === undefined
          ? null
          : { value: numberOrNull(divergence.metrics.klDivergence), top1Agreement: numberOrNull(divergence.metrics.top1Agreement), reference: String(divergence.settings.reference), createdAt: divergence.createdAt },
      cost: cost === undefined ? null : { decodeTokensPerSecond: numberOrNull(cost.metrics.decodeTokensPerSecond), peakRssBytes: numberOrNull(cost.metrics.peakRssBytes), settings: cost.settings, createdAt: cost.createdAt },
    };
  });
  const notes: string[] = [];
  const taskDigests = new Set(rows.map((row) => row.taskDigest));
  if (taskDigests.size > 1) notes.push(`results on ${taskDigests.size} different ${options.task} inputs (task digests): compare ranks with care`);
  const withOlder = rows.filter((row) => row.olderResults > 0).length;
  if (withOlder > 0) notes.push(`${withOlder} model${withOlder === 1 ? " has" : "s have"} older results with other settings: the newest is shown`);
  const unmeasured = models.length - rows.length;
  if (unmeasured > 0) notes.push(`${unmeasured} model${unmeasured === 1 ? "" : "s"} ${options.tree === undefined ? "of the store" : "of the tree"} without a result on ${options.task}`);
  if (imported > 0) notes.push(`${imported} imported result${imported === 1 ? "" : "s"} (another tool's numbers) not ranked here: grove results ls --task ${options.task}`);
  return { task: options.task, kind: all[0]!.kind, metric, tree: options.tree ?? null, rows, notes };
}

/** The metric a task is ranked by: `requested`, else the primary metric of its results. */
function chooseMetric(results: readonly ResultRecord[], requested: string | undefined): { name: string; higherIsBetter: boolean } {
  const names = [...new Set(results.flatMap((result) => Object.keys(result.metrics)))];
  if (requested !== undefined) {
    if (!names.includes(requested)) {
      throw new InvalidRequestError(`Unknown metric '${requested}' for task '${results[0]!.task}': its results hold ${names.join(", ") || "no metrics"}`, { param: "metric" });
    }
    const higherIsBetter = metricDirection(requested);
    if (higherIsBetter === undefined) throw new InvalidRequestError(`Cannot rank by '${requested}': which way it is better is not known`, { param: "metric" });
    return { name: requested, higherIsBetter };
  }
  for (const result of results) {
    const primary = primaryMetric(result);
    if (primary !== undefined) return { name: primary.name, higherIsBetter: primary.higherIsBetter };
  }
  // Every result is flagged: name the metric they would rank by, so that the rows still show it.
  const unflagged = primaryMetric({ ...results[0]!, flags: [] });
  return unflagged === undefined ? { name: names[0] ?? "score", higherIsBetter: true } : { name: unflagged.name, higherIsBetter: unflagged.higherIsBetter };
}

function numberOrNull(value: number | null | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
