// What a task is: its documents' schema and the types its scorers share. Its own module so that
// tasks.ts (which dispatches to the lm-eval scorer) and lm-eval/lm-eval-scoring.ts (which scores
// a Task) both import it instead of each other.
import { z } from "zod";
import type { Digest } from "../../core/digest.js";
import type { ExactMatchOptions, FilterEnsemble } from "./lm-eval/lm-eval-filters.js";
import type { GenerateRequest, LoglikelihoodAnswer, LoglikelihoodRequest } from "./measure.js";

/** lm-evaluation-harness's output types that Grove scores. */
export type TaskType = "multiple_choice" | "loglikelihood" | "loglikelihood_rolling" | "generate_until";

export const MULTIPLE_CHOICE = z.strictObject({
  type: z.literal("multiple_choice"),
  context: z.string(),
  choices: z.array(z.string().min(1)).min(2, "needs at least 2 choices"),
  answer: z.number().int().nonnegative(),
  /** lm-eval's target_delimiter: each continuation is delimiter + choice, and acc_norm divides by the choice's length alone. */
  delimiter: z.string().max(64).optional(),
});
export const LOGLIKELIHOOD = z.strictObject({ type: z.literal("loglikelihood"), context: z.string(), continuation: z.string().min(1) });
export const LOGLIKELIHOOD_ROLLING = z.strictObject({ type: z.literal("loglikelihood_rolling"), text: z.string().min(1) });
export const GENERATE_UNTIL = z.strictObject({
  type: z.literal("generate_until"),
  context: z.string().min(1),
  answer: z.string(),
  until: z.array(z.string().min(1)).max(16).optional(),
  max_tokens: z.number().int().min(1).max(1024).optional(),
});
export const DOC = z.discriminatedUnion("type", [MULTIPLE_CHOICE, LOGLIKELIHOOD, LOGLIKELIHOOD_ROLLING, GENERATE_UNTIL]);

/** One document of a task. */
export type TaskDoc = z.infer<typeof DOC>;

/** A task file, read and checked. */
export interface Task {
  /** From the file name (`arith.jsonl` → `arith`) unless given. */
  name: string;
  type: TaskType;
  docs: TaskDoc[];
  /** sha256 of the file's bytes: results are keyed by it. */
  digest: Digest;
  /**
   * Set for a task read from an lm-evaluation-harness YAML config: scored by lm-eval's metric
   * definitions, filters and exact_match options instead of Grove's JSONL rules.
   */
  lmEval?: LmEvalScoring;
}

/** How an lm-eval task is scored: its `metric_list` (lm-eval's names), exact_match's options, its filters. */
export interface LmEvalScoring {
  /** `acc`, `acc_norm`, `acc_bytes`, `exact_match`, `perplexity`, `word_perplexity`, `byte_perplexity`, `bits_per_byte`. */
  metrics: string[];
  exactMatch: ExactMatchOptions;
  /** generate_until only; `none` = take_first when the task has no filter_list. */
  filters: FilterEnsemble[];
}

/** What scores a task: log-likelihoods and greedy generations, from a local model or a server. */
export interface EvalBackend {
  loglikelihood(requests: readonly LoglikelihoodRequest[]): Promise<LoglikelihoodAnswer[]>;
  generate(requests: readonly GenerateRequest[]): Promise<string[]>;
}

/** A task's scores. */
export interface TaskScore {
  metrics: Record<string, number | null>;
  /** `not_above_chance` when accuracy is within two standard errors of chance (or below). */
  flags: string[];
  details: Record<string, unknown>;
  /** Per-item results (1 right, 0 wrong) by metric (`acc`, `accNorm`, `accGreedy`, `exactMatch`): standard errors and paired comparisons come from them. */
  items?: Record<string, number[]>;
}
