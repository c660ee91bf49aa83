import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { AliasBook, primaryTarget } from "../../store/alias-book.js";
import type { ModelStore } from "../../store/model-store.js";
import type { AliasEvent, AliasScore, AliasTarget } from "../../store/registry.js";
import { primaryMetric } from "../metrics.js";
import type { ResultRecord } from "../result-store.js";
import { compareScores } from "../uncertainty.js";

/** The largest relative regression a migration accepts by default: 2 %. */
export const DEFAULT_MAX_REGRESSION = 0.02;

/**
 * Measures one model on one task and gives its stored result (reused when one is stored). The
 * caller hands in bench's `evaluateModel` with its settings (`taskEvaluator`), so results/ stays
 * below bench/ and a test can hand in scores of its own.
 */
export type TaskEvaluator = (model: Digest, task: string) => Promise<ResultRecord>;

/** What `grove migrate` does. */
export interface MigrateAliasOptions {
  /** The alias to move. */
  alias: string;
  /** The candidate: a name, digest or unique digest prefix. */
  to: string;
  /** Tasks to compare on (`perplexity` or task files); at least one. */
  tasks: readonly string[];
  /**
   * The largest regression accepted on any task, relative to the current target's score in the
   * metric's worse direction (see {@link regressionOf}). @default 0.02
   */
  maxRegression?: number;
  /** Measures the current target and the candidate on each task. */
  evaluate: TaskEvaluator;
  /** Called before each evaluation. */
  onEvaluate?: (model: "current" | "candidate", task: string) => void;
}

/** What a migration decided, with the evidence. */
export interface MigrateAliasResult {
  alias: string;
  /** The target compared against: the alias's largest-weight one. */
  current: Digest;
  candidate: Digest;
  maxRegression: number;
  scores: AliasScore[];
  switched: boolean;
  reason: string;
  /** The history entry written. */
  event: AliasEvent;
}

/**
 * How much worse `candidate` is than `current`, relative to `current`, in the metric's direction:
 * `(current − candidate) / |current|` when higher is better (acc), `(candidate − current) / |current|`
 * when lower is better (perplexity). Negative: the candidate is better. When `current` is 0 the
 * absolute difference is used.
 */
export function regressionOf(current: number, candidate: number, higherIsBetter: boolean): number {
  const worse = higherIsBetter ? current - candidate : candidate - current;
  return current === 0 ? worse : worse / Math.abs(current);
}

/**
 * Evaluation-gated migration: measures the alias's current target (its largest-weight model) and
 * the candidate on every task through `options.evaluate` (stored results reused), compares each
 * task's primary metric ({@link primaryMetric}: acc, exactMatch, accGreedy, klDivergence,
 * perplexity, with its direction), and points the alias wholly at the candidate only when no task
 * regresses by more than `maxRegression`. A task without a score on either side (flagged below
 * chance, say) refuses the migration. Each difference is judged against its noise
 * (`uncertainty.ts`, paired per item or chunk): a change within noise is never called a
 * regression or an improvement — a worse score beyond the limit but within noise still refuses
 * (nothing shows the candidate is as good), with that said in the reason. The decision — switched or refused — is recorded in the
 * alias's history with the scores. Bad input (no task, unknown alias or model, a candidate already
 * targeted alone) throws before anything is measured or recorded.
 */
export async function migrateAlias(store: ModelStore, options: MigrateAliasOptions): Promise<MigrateAliasResult> {
  if (options.tasks.length === 0) throw new InvalidRequestError("Name at least one task to compare on with --task (perplexity or a task file)", { param: "task" });
  const maxRegression = options.maxRegression ?? DEFAULT_MAX_REGRESSION;
  if (!Number.isFinite(maxRegression) || maxRegression < 0 || maxRegression > 1) {
    throw new InvalidRequestError(`max regression must be a number from 0 to 1 (0.02 = 2 %), got ${maxRegression}`, { param: "max_regression" });
  }
  const book = new AliasBook(store);
  const alias = await book.require(options.alias);
  const candidate = (await store.resolve(options.to)).digest;
  const current = primaryTarget(alias.targets).digest;
  if (alias.targets.length === 1 && current === candidate) {
    throw new InvalidRequestError(`The alias '${alias.name}' already points at ${options.to} alone`, { param: "to" });
  }
  const tasks = [...new Set(options.tasks)];
  const scores: AliasScore[] = [];
  for (const task of tasks) {
    options.onEvaluate?.("current", task);
    const before = await options.evaluate(current, task);
    options.onEvaluate?.("candidate", task);
    const after = await options.evaluate(candidate, task);
    scores.push(compare(before, after));
  }
  scores.forEach((score) => (score.verdict = verdictOf(score, maxRegression)));
  const failures = scores.filter((score) => score.regression === null || score.regression > maxRegression + 1e-12);
  const proposed: AliasTarget[] = [{ digest: candidate, weight: 1 }];
  const change = { action: "migrate" as const, tasks, scores };
  if (failures.length > 0) {
    const reason = failures.map((score) => describeFailure(score, maxRegression)).join("; ");
    const event = await book.refuse(alias.name, proposed, { ...change, reason });
    return { alias: alias.name, current, candidate, maxRegression, scores, switched: false, reason, event };
  }
  const improved = scores.filter((score) => score.verdict === "improved").map((score) => score.task);
  const noise = scores.filter((score) => score.verdict === "within noise").map((score) => score.task);
  const reason = [
    `no task regressed beyond ${formatPercent(maxRegression)}`,
    ...(improved.length > 0 ? [`improved beyond noise on ${improved.join(", ")}`] : []),
    ...(noise.length > 0 ? [`no difference beyond noise on ${noise.join(", ")}`] : []),
  ].join("; ");
  const event = await book.change(alias.name, proposed, { ...change, reason }, alias.targets);
  return { alias: alias.name, current, candidate, maxRegression, scores, switched: true, reason, event };
}

function compare(current: ResultRecord, candidate: ResultRecord): AliasScore {
  const before = primaryMetric(current);
  const after = primaryMetric(candidate);
  const metric = before?.name ?? after?.name ?? "none";
  const higherIsBetter = before?.higherIsBetter ?? after?.higherIsBetter ?? true;
  const comparable = before !== undefined && after !== undefined && before.name === after.name;
  // Paired per chunk or item only when both were measured on the same text or task with the same settings.
  const sameUnits = current.taskDigest === candidate.taskDigest && current.settings.ctx === candidate.settings.ctx;
  const difference = comparable ? compareScores(current, sameUnits ? candidate : { ...candidate, samples: null }, metric) : null;
  return {
    task: current.task,
    metric,
    higherIsBetter,
    current: before?.value ?? null,
    candidate: after?.value ?? null,
    regression: comparable ? regressionOf(before.value, after.value, higherIsBetter) : null,
    standardError: difference?.standardError ?? null,
    paired: difference?.paired ?? false,
    significant: difference?.significant ?? null,
  };
}

/** What a score's difference may be called (see {@link AliasScore.verdict}). */
function verdictOf(score: AliasScore, maxRegression: number): NonNullable<AliasScore["verdict"]> {
  if (score.regression === null) return "no score";
  if (score.significant === false) return "within noise";
  if (score.regression > maxRegression + 1e-12) return "regressed";
  if (score.regression < 0 && score.significant === true) return "improved";
  return "ok";
}

function describeFailure(score: AliasScore, maxRegression: number): string {
  if (score.regression === null) {
    const side = score.current === null ? "the current model" : "the candidate";
    return `${score.task}: no ${score.metric} score for ${side} (its result is flagged, not a score)`;
  }
  const change = `${score.task}: ${score.metric} ${formatScore(score.current)} → ${formatScore(score.candidate)} is ${formatPercent(score.regression)} worse (limit ${formatPercent(maxRegression)})`;
  if (score.verdict === "within noise") return `${change}, but within noise (±${formatScore(score.standardError ?? null)} standard error${score.paired ? ", paired" : ""}): not called a regression, yet nothing shows the candidate as good — measure on more items or text`;
  return change;
}

/** `2.0 %`. */
export function formatPercent(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

/** A score as people read it: `1313.97`, `0.4219`; `-` for none. Never the raw float. */
export function formatScore(value: number | null): string {
  return value === null ? "-" : Math.abs(value) >= 100 ? value.toFixed(2) : value.toPrecision(4);
}
