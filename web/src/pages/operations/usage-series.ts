import type { UsageGroup } from "./operations-api.js";

/** A period the usage chart covers, and the bucket its bars are. */
export interface UsagePeriod {
  readonly label: string;
  /** `since` of `/api/usage`. */
  readonly since: string;
  readonly bucket: "hour" | "day";
  readonly milliseconds: number;
}

const HOUR = 3_600_000;

export const PERIODS = {
  "24h": { label: "Last 24 hours", since: "24h", bucket: "hour", milliseconds: 24 * HOUR },
  "7d": { label: "Last 7 days", since: "7d", bucket: "day", milliseconds: 7 * 24 * HOUR },
  "30d": { label: "Last 30 days", since: "30d", bucket: "day", milliseconds: 30 * 24 * HOUR },
} as const satisfies Record<string, UsagePeriod>;

export type PeriodName = keyof typeof PERIODS;

/** What the bars measure. */
export type UsageMeasure = "tokens" | "requests";

/** One stacked series: a model or a key, with a value per bucket. */
export interface UsageSeries {
  readonly label: string;
  readonly values: number[];
  readonly total: number;
}

/** The chart's data: bucket labels and one series per model or key. */
export interface UsageChartData {
  readonly buckets: string[];
  readonly series: UsageSeries[];
}

/** The bucket key the server uses for a time (UTC `YYYY-MM-DDTHH` or `YYYY-MM-DD`). */
function bucketKey(time: number, bucket: UsagePeriod["bucket"]): string {
  return new Date(time).toISOString().slice(0, bucket === "hour" ? 13 : 10);
}

/** Every bucket from the period's start to now, so hours or days without requests show as gaps. */
export function periodBuckets(period: UsagePeriod, now: number): string[] {
  const step = period.bucket === "hour" ? HOUR : 24 * HOUR;
  const keys: string[] = [];
  for (let time = now - period.milliseconds; ; time += step) {
    const key = bucketKey(Math.min(time, now), period.bucket);
    if (keys.at(-1) !== key) keys.push(key);
    if (time >= now) break;
  }
  return keys;
}

/** "08:00" in the reader's zone for an hour; "Nov 29" for a UTC day. */
export function bucketLabel(key: string): string {
  if (key.length === 13) return new Date(`${key}:00:00Z`).toLocaleTimeString("en-US", { hour: "2-digit", minute: "2-digit", hour12: false });
  return new Date(`${key}T00:00:00Z`).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}

export function measureOf(group: UsageGroup, measure: UsageMeasure): number {
  return measure === "tokens" ? group.promptTokens + group.completionTokens : group.requests;
}

/**
 * Turns `by=hour|day&split=model|key` groups into stacked series over `buckets`; `labelOf`
 * names a split (a model digest or key id). Largest series first, so the legend leads with them.
 */
export function usageSeries(groups: UsageGroup[], buckets: string[], measure: UsageMeasure, labelOf: (split: string) => string): UsageChartData {
  const allBuckets = [...new Set([...buckets, ...groups.map((group) => group.group)])].sort();
  const index = new Map(allBuckets.map((bucket, position) => [bucket, position]));
  const bySplit = new Map<string, number[]>();
  for (const group of groups) {
    const split = group.split ?? "";
    const values = bySplit.get(split) ?? allBuckets.map(() => 0);
    values[index.get(group.group)!]! += measureOf(group, measure);
    bySplit.set(split, values);
  }
  const series = [...bySplit].map(([split, values]) => ({ label: labelOf(split), values, total: values.reduce((sum, value) => sum + value, 0) }));
  series.sort((a, b) => b.total - a.total);
  return { buckets: allBuckets, series };
}
