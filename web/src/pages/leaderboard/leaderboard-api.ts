import { getJson } from "../../api.js";

/**
 * The Leaderboard page's calls: `GET /api/leaderboard` (tasks, then one ranking per task),
 * `GET /api/front` and `GET /api/plan`, with the shapes of their answers as the page reads them
 * (src/core/wire.ts declares the results' shapes; src/plan/plan.ts the plan's).
 */

import type { FrontCost, FrontModel, FrontResult, LeaderboardResult, LeaderboardRow, TaskSummary } from "../../../../src/core/wire.js";

export type { FrontCost, FrontModel, LeaderboardRow, TaskSummary };
/** A task's ranking (`GET /api/leaderboard?task=`). */
export type Leaderboard = LeaderboardResult;
/** The quality-versus-cost Pareto front of one quality task (`GET /api/front`). */
export type Front = FrontResult;

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
