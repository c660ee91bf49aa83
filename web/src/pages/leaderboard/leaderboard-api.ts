import { getJson } from "../../api.js";

/**
 * The Leaderboard page's calls: `GET /api/leaderboard` (tasks, then one ranking per task),
 * `GET /api/front` and `GET /api/plan`, with the shapes of their answers as the page reads them
 * (src/results/views/leaderboard.ts, src/results/views/front.ts and src/plan/plan.ts define them).
 */

/** A task with stored results. */
export interface TaskSummary {
  task: string;
  kind: "quality" | "cost";
  models: number;
  results: number;
  metrics: string[];
}

/** One model's row of a task's ranking. */
export interface LeaderboardRow {
  rank: number | null;
  digest: string;
  names: string[];
  quantization: string;
  size: number;
  /** The ranked metric; null when flagged or not measured. */
  value: number | null;
  /** Its standard error; null when unknown. */
  standardError: number | null;
  /** Digests of the ranked models it is within noise of (not distinguishable at 95 %). */
  withinNoiseOf: string[];
  /** Why it is not ranked with the others (another text, settings or machine); null when ranked or flagged. */
  apart: string | null;
  metrics: Record<string, number | null>;
  /** Standard errors of `metrics`, null where unknown. */
  standardErrors: Record<string, number | null>;
  flags: string[];
  /** The newest speed result, with its standard error. */
  cost: { decodeTokensPerSecond: number | null; decodeStandardError: number | null } | null;
}

/** A task's ranking. */
export interface Leaderboard {
  task: string;
  kind: "quality" | "cost";
  metric: { name: string; higherIsBetter: boolean };
  rows: LeaderboardRow[];
  /** The rule differences are judged by. */
  significance: string;
  notes: string[];
}

/** The costs a front can weigh quality against. */
export type FrontCost = "size" | "peakRssBytes" | "decodeTokensPerSecond";

/** A model placed on the front chart. */
export interface FrontModel {
  digest: string;
  names: string[];
  quantization: string;
  quality: number;
  /** Standard error of the quality; null when unknown. */
  qualityError: number | null;
  cost: number;
  onFront: boolean;
  /** `qualityWithinNoise`: the dominator's quality is not distinguishable from this one's. */
  dominatedBy: { digest: string; names: string[]; qualityWithinNoise: boolean | null }[];
  dominatedWithinNoise: boolean;
}

/** The quality-versus-cost Pareto front of one quality task. */
export interface Front {
  task: string;
  quality: { metric: string; higherIsBetter: boolean };
  cost: { metric: FrontCost; higherIsBetter: boolean };
  /** On the front, best cost first. */
  front: FrontModel[];
  /** Dominated, best quality first. */
  dominated: FrontModel[];
  unplaced: { digest: string; names: string[]; reason: string }[];
  notes: string[];
}

/** A fork that meets a plan's limits. */
export interface PlanCandidate {
  digest: string;
  names: string[];
  quantization: string;
  memoryBytes: number;
  decodeTokensPerSecond: number | null;
  p50TokenMs: number | null;
  quality: { task: string; metric: string; value: number; higherIsBetter: boolean; standardError: number | null } | null;
  notes: string[];
}

/** What `GET /api/plan` answers. */
export interface PlanResult {
  limits: { memoryBytes: number; contextSize: number; slots: number; p50TokenMs: number | null; minTokensPerSecond: number | null; task: string | null };
  choice: PlanCandidate | null;
  ranked: PlanCandidate[];
  excluded: { digest: string; names: string[]; reason: string }[];
  notes: string[];
}

/** The limits typed into the plan form; empty strings are left out of the query. */
export interface PlanLimits {
  memory: string;
  ctx: string;
  slots: string;
  p50TokenMs: string;
  minTps: string;
  task: string;
}

/** Every task's ranking, in the order the server lists the tasks. */
export async function loadLeaderboards(signal?: AbortSignal): Promise<{ tasks: TaskSummary[]; boards: Leaderboard[] }> {
  const { tasks } = await getJson<{ tasks: TaskSummary[] }>("/api/leaderboard", signal);
  const boards = await Promise.all(tasks.map((summary) => getJson<Leaderboard>(`/api/leaderboard?task=${encodeURIComponent(summary.task)}`, signal)));
  return { tasks, boards };
}

/** The front of a quality task against a cost. */
export function loadFront(task: string, cost: FrontCost, signal?: AbortSignal): Promise<Front> {
  const query = new URLSearchParams({ task, cost });
  return getJson<Front>(`/api/front?${query}`, signal);
}

/** Asks the server for a plan; the server checks the limits and answers 400 naming a bad one. */
export function requestPlan(limits: PlanLimits): Promise<PlanResult> {
  const query = new URLSearchParams();
  const parameters: [string, string][] = [
    ["memory", limits.memory], ["ctx", limits.ctx], ["slots", limits.slots],
    ["p50_token_ms", limits.p50TokenMs], ["min_tps", limits.minTps], ["task", limits.task],
  ];
  // The server reads an empty value as a bad one (`ctx must be a positive integer, got ''`): leave it out.
  for (const [name, value] of parameters) if (value.trim() !== "") query.set(name, value.trim());
  return getJson<PlanResult>(`/api/plan?${query}`);
}
