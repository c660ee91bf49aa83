import type { ResultRecord } from "./result-store.js";

/** The number a result is ranked by, and which way is better. */
export interface PrimaryMetric {
  name: string;
  value: number;
  higherIsBetter: boolean;
}

/**
 * Quality metrics, in the order a result's primary metric is chosen: a task result ranks by
 * `acc` (multiple choice), else `exactMatch` (generate_until), else `accGreedy`
 * (loglikelihood); a text by `perplexity`; a comparison with a parent by `klDivergence`.
 */
export const QUALITY_METRICS: readonly { name: string; higherIsBetter: boolean }[] = [
  { name: "acc", higherIsBetter: true },
  { name: "exactMatch", higherIsBetter: true },
  { name: "accGreedy", higherIsBetter: true },
  { name: "klDivergence", higherIsBetter: false },
  { name: "perplexity", higherIsBetter: false },
];

/** Cost metrics of `grove bench` results and which way is better. */
export const COST_METRICS: readonly { name: string; higherIsBetter: boolean }[] = [
  { name: "decodeTokensPerSecond", higherIsBetter: true },
  { name: "promptTokensPerSecond", higherIsBetter: true },
  { name: "ttftMs", higherIsBetter: false },
  { name: "peakRssBytes", higherIsBetter: false },
  { name: "aggregateDecodeTokensPerSecond.1", higherIsBetter: true },
  { name: "aggregateDecodeTokensPerSecond.2", higherIsBetter: true },
  { name: "aggregateDecodeTokensPerSecond.4", higherIsBetter: true },
  { name: "aggregateDecodeTokensPerSecond.8", higherIsBetter: true },
];

/**
 * The metric a result ranks by; undefined when it has none, or when it is flagged (a result
 * below chance or without log-probs is never a score).
 */
export function primaryMetric(result: ResultRecord): PrimaryMetric | undefined {
  if (result.flags.length > 0) return undefined;
  const table = result.kind === "cost" ? COST_METRICS : QUALITY_METRICS;
  for (const metric of table) {
    const value = result.metrics[metric.name];
    if (typeof value === "number" && Number.isFinite(value)) return { name: metric.name, value, higherIsBetter: metric.higherIsBetter };
  }
  return undefined;
}

/** True when `a` is better than `b` on a metric. */
export function isBetter(a: number, b: number, higherIsBetter: boolean): boolean {
  return higherIsBetter ? a > b : a < b;
}
