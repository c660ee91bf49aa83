import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import type { ModelStore, TreeNode } from "../../store/model-store.js";
import { comparabilityKey, mainGroup, whyApart } from "../comparability.js";
import { describeMachine, sameMachine, type Machine } from "../machine.js";
import { primaryMetric } from "../metrics.js";
import { IMPORTED_FLAG } from "../import-lm-eval.js";
import type { ResultRecord, ResultStore } from "../result-store.js";
import { compareScores, SIGNIFICANCE_RULE } from "../uncertainty.js";
import { metricDirection, rankEntries } from "./ranking.js";
import type { TaskSummary, LeaderboardRow, LeaderboardResult } from "../../core/wire.js";

/** The JSON shapes the admin API answers with are declared once, in core/wire.ts (the web app reads them too). */
export type { TaskSummary, LeaderboardRow, LeaderboardResult } from "../../core/wire.js";

/** Input of {@link buildLeaderboard}. */
export interface LeaderboardOptions {
  /** The task ranked: `perplexity`, `kl-divergence`, a task file's name, or `bench`. */
  task: string;
  /** Only the models of this model's fork tree (a name, digest or digest prefix). */
  tree?: string;
  /** Rank by this metric of the task's results instead of its primary metric (`bitsPerByte`, `accNorm`, …). */
  metric?: string;
  /** The machine whose speed and memory results are preferred (this one); others are shown apart. */
  machine?: Machine;
}

/** The flag of a result measured on another text, with other settings or on another machine than the ranked ones. */
export const NOT_COMPARABLE_FLAG = "not_comparable";




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
  for (const result of await results.list({ modelDigests: models.map((model) => model.digest) })) {
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
 * `metric`). Only comparable results are ranked together (`comparability.ts`: the same text or
 * task file and settings, for speed the same machine — this one's where it has results, else the
 * group covering the most models); per model the newest result of that group counts, and a model
 * measured only otherwise is listed apart with the reason. A flagged result is listed after the
 * ranked ones with its flags, never ranked. Each ranked row carries its standard error and the
 * models it is within noise of (`uncertainty.ts`), the model's KL divergence to its parent and
 * its newest cost result where stored.
 *
 * @throws InvalidRequestError (param `task`) for a task without results, (param `metric`) for a
 * metric its results do not hold or whose direction is unknown
 */
export async function buildLeaderboard(store: ModelStore, results: ResultStore, options: LeaderboardOptions): Promise<LeaderboardResult> {
  // Imported results (another tool's numbers) are never ranked beside Grove's own: a note says so.
  const stored = await results.list({ task: options.task });
  const all = stored.filter((result) => !result.flags.includes(IMPORTED_FLAG));
  const imported = stored.length - all.length;
  if (all.length === 0 && imported > 0) {
    throw new InvalidRequestError(`Task '${options.task}' has only imported results (${imported}), which are not ranked beside Grove's measurements: see grove results ls --task ${options.task}`, { param: "task" });
  }
  if (all.length === 0) {
    const known = [...new Set((await results.list()).map((result) => result.task))].sort();
    throw new InvalidRequestError(
      `No results for task '${options.task}'${known.length > 0 ? `; tasks with results: ${known.join(", ")}` : ": measure models with grove eval REF --task … or grove bench REF"}`,
      { param: "task" },
    );
  }
  const models = await viewModels(store, options.tree);
  const byDigest = new Map(models.map((model) => [model.digest, model]));
  const inView = all.filter((result) => byDigest.has(result.modelDigest));
  const thisMachine = (result: ResultRecord): boolean => options.machine !== undefined && sameMachine(result.machine, options.machine);
  const main = mainGroup(inView.filter((result) => result.flags.length === 0), thisMachine) ?? mainGroup(inView, thisMachine);
  // list() is newest first: per model, the newest result of the ranked group, else its newest.
  const shown = new Map<Digest, { result: ResultRecord; older: number }>();
  for (const result of inView) {
    const seen = shown.get(result.modelDigest);
    if (seen === undefined) shown.set(result.modelDigest, { result, older: 0 });
    else if (comparabilityKey(seen.result) !== main && comparabilityKey(result) === main) shown.set(result.modelDigest, { result, older: seen.older + 1 });
    else seen.older += 1;
  }
  const reference = inView.find((result) => comparabilityKey(result) === main) ?? inView[0];
  const metric = chooseMetric(all, options.metric);
  const kl = await results.list({ task: "kl-divergence", modelDigests: [...shown.keys()] });
  const costs = await results.list({ task: "bench", kind: "cost", modelDigests: [...shown.keys()] });
  const label = (model: ViewModel): string => model.names[0] ?? model.digest;
  const ranked = rankEntries(
    [...shown.values()].map(({ result, older }) => {
      const apart = reference === undefined ? null : whyApart(reference, result);
      return {
        item: { result, older, model: byDigest.get(result.modelDigest)!, apart },
        value: typeof result.metrics[metric.name] === "number" ? result.metrics[metric.name]! : null,
        flags: apart === null ? result.flags : [...result.flags, NOT_COMPARABLE_FLAG],
      };
    }),
    metric.higherIsBetter,
    (a, b) => label(a.model).localeCompare(label(b.model)),
  );
  const scored = ranked.filter((entry) => entry.rank !== null);
  const rows = ranked.map(({ item: { result, older, model, apart }, rank, value, flags }, index): LeaderboardRow => {
    const divergence = kl.find((candidate) => candidate.modelDigest === model.digest && model.parents.includes(candidate.settings.reference as Digest));
    const modelCosts = costs.filter((candidate) => candidate.modelDigest === model.digest);
    const cost = modelCosts.find(thisMachine) ?? modelCosts[0];
    const error = rank === null ? null : (result.standardErrors?.[metric.name] ?? null);
    const above = rank === null || index === 0 ? undefined : ranked[index - 1]!.item.result;
    return {
      rank,
      digest: model.digest,
      names: model.names,
      quantization: model.quantization,
      size: model.size,
      value,
      standardError: error,
      withinNoiseOf:
        rank === null
          ? []
          : scored.filter((other) => other.item.result !== result && compareScores(other.item.result, result, metric.name)?.significant === false).map((other) => other.item.model.digest),
      againstAbove: above === undefined ? null : compareScores(above, result, metric.name),
      apart,
      machine: result.machine ?? null,
      metrics: result.metrics,
      standardErrors: result.standardErrors ?? {},
      flags,
      settings: result.settings,
      taskDigest: result.taskDigest,
      engineVersion: result.engineVersion,
      createdAt: result.createdAt,
      olderResults: older,
      klDivergence:
        divergence === undefined
          ? null
          : {
              value: numberOrNull(divergence.metrics.klDivergence),
              standardError: numberOrNull(divergence.standardErrors?.klDivergence),
              top1Agreement: numberOrNull(divergence.metrics.top1Agreement),
              reference: String(divergence.settings.reference),
              createdAt: divergence.createdAt,
            },
      cost:
        cost === undefined
          ? null
          : {
              decodeTokensPerSecond: numberOrNull(cost.metrics.decodeTokensPerSecond),
              decodeStandardError: numberOrNull(cost.standardErrors?.decodeTokensPerSecond),
              peakRssBytes: numberOrNull(cost.metrics.peakRssBytes),
              settings: cost.settings,
              machine: cost.machine ?? null,
              createdAt: cost.createdAt,
            },
    };
  });
  const notes: string[] = [];
  const apart = rows.filter((row) => row.apart !== null).length;
  if (apart > 0) notes.push(`${apart} result${apart === 1 ? " is" : "s are"} shown apart, not ranked: measured on another text, with other settings or on another machine than the ranked ones`);
  const rankedRows = rows.filter((row) => row.rank !== null);
  if (rankedRows.length > 1) {
    const unknown = rankedRows.some((row, index) => index > 0 && row.againstAbove?.significant == null);
    const allTied = rankedRows.every((row) => row.withinNoiseOf.length === rankedRows.length - 1);
    if (allTied) notes.push(`the ${rankedRows.length} ranked models are not distinguishable: every difference is within noise (${SIGNIFICANCE_RULE})`);
    else if (unknown) notes.push("some results were stored without standard errors: their differences cannot be judged (measure again with --force)");
    else notes.push(`≈ marks models within noise of each other: ${SIGNIFICANCE_RULE}`);
  }
  const withOlder = rows.filter((row) => row.olderResults > 0).length;
  if (withOlder > 0) notes.push(`${withOlder} model${withOlder === 1 ? " has" : "s have"} older results with other settings: the newest comparable one is shown`);
  const unmeasured = models.length - rows.length;
  if (unmeasured > 0) notes.push(`${unmeasured} model${unmeasured === 1 ? "" : "s"} ${options.tree === undefined ? "of the store" : "of the tree"} without a result on ${options.task}`);
  if (imported > 0) notes.push(`${imported} imported result${imported === 1 ? "" : "s"} (another tool's numbers) not ranked here: grove results ls --task ${options.task}`);
  const kind = all[0]!.kind;
  if (kind === "cost" && reference !== undefined) notes.push(`speeds and memory measured on ${describeMachine(reference.machine)}`);
  return {
    task: options.task,
    kind,
    metric,
    tree: options.tree ?? null,
    rows,
    measuredOn: { taskDigest: reference?.taskDigest ?? "", settings: reference?.settings ?? {}, machine: reference?.machine ?? null },
    significance: SIGNIFICANCE_RULE,
    notes,
  };
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
