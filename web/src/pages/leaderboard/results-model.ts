import { formatBytes, formatMetric, formatRate } from "../../format.js";
import type { Leaderboard } from "./leaderboard-api.js";

/**
 * The results table's data: the rankings of every task merged into one row per model (fork), with
 * a column per number worth comparing — each quality task's primary metric and its useful
 * secondary one, then the serving costs of `grove bench`, then the file size.
 */

/** A numeric column. */
export interface ResultColumn {
  key: string;
  label: string;
  higherIsBetter: boolean;
  format: (value: number) => string;
}

/** A model's numbers by column key; a flagged or unmeasured number is null, with its flags. */
export interface ModelResults {
  digest: string;
  names: string[];
  quantization: string;
  values: Record<string, number | null>;
  /** Standard errors by column key; null or absent when unknown. */
  errors: Record<string, number | null>;
  /** By column key: the models (names) whose score on it is within noise of this one's. */
  withinNoise: Record<string, string[]>;
  /** By column key: why the result is shown apart (another text or machine). */
  apart: Record<string, string>;
  flags: Record<string, string[]>;
  /** The tasks it has a result on. */
  tasks: string[];
}

/** How Grove's metric names read in a header. */
const METRIC_LABELS: Readonly<Record<string, string>> = {
  perplexity: "Perplexity",
  bitsPerByte: "Bits per byte",
  klDivergence: "KL divergence",
  top1Agreement: "Top-1 agreement",
  acc: "accuracy",
  accNorm: "accuracy (norm.)",
  exactMatch: "exact match",
  accGreedy: "greedy accuracy",
};

/** The secondary metric shown beside a primary one, and which way it is better. */
const SECONDARY: Readonly<Record<string, { name: string; higherIsBetter: boolean }>> = {
  perplexity: { name: "bitsPerByte", higherIsBetter: false },
  klDivergence: { name: "top1Agreement", higherIsBetter: true },
  acc: { name: "accNorm", higherIsBetter: true },
};

/** The serving costs shown, from the `bench` task's newest result per model. */
const COST_COLUMNS: readonly ResultColumn[] = [
  { key: "bench/decodeTokensPerSecond", label: "Decode tokens/s", higherIsBetter: true, format: formatRate },
  { key: "bench/ttftMs", label: "TTFT ms", higherIsBetter: false, format: formatRate },
  { key: "bench/peakRssBytes", label: "Peak memory", higherIsBetter: false, format: formatBytes },
];

export const SIZE_COLUMN: ResultColumn = { key: "size", label: "Size", higherIsBetter: false, format: formatBytes };

/** A header for a task's metric: the metric alone for the built-in tasks, `task: metric` for a task file. */
function metricLabel(task: string, metric: string): string {
  const label = METRIC_LABELS[metric] ?? metric;
  return task === "perplexity" || task === "kl-divergence" ? label : `${task}: ${label}`;
}

/** The columns the rankings have numbers for, quality first. */
export function resultColumns(boards: readonly Leaderboard[]): ResultColumn[] {
  const columns: ResultColumn[] = [];
  // The task measured on the most models first, as the chart's first choice.
  const quality = boards.filter((board) => board.kind === "quality").sort((a, b) => b.rows.length - a.rows.length || a.task.localeCompare(b.task));
  for (const board of quality) {
    const { name, higherIsBetter } = board.metric;
    columns.push({ key: `${board.task}/${name}`, label: metricLabel(board.task, name), higherIsBetter, format: formatMetric });
    const secondary = SECONDARY[name];
    if (secondary !== undefined && board.rows.some((row) => typeof row.metrics[secondary.name] === "number")) {
      columns.push({ key: `${board.task}/${secondary.name}`, label: metricLabel(board.task, secondary.name), higherIsBetter: secondary.higherIsBetter, format: formatMetric });
    }
  }
  if (boards.some((board) => board.kind === "cost")) columns.push(...COST_COLUMNS);
  columns.push(SIZE_COLUMN);
  return columns;
}

/** One row per model with a result on any task, its numbers keyed as {@link resultColumns}. */
export function mergeResults(boards: readonly Leaderboard[], columns: readonly ResultColumn[]): ModelResults[] {
  const models = new Map<string, ModelResults>();
  for (const board of boards) {
    for (const row of board.rows) {
      const model = models.get(row.digest) ?? { digest: row.digest, names: row.names, quantization: row.quantization, values: { size: row.size }, errors: {}, withinNoise: {}, apart: {}, flags: {}, tasks: [] };
      model.tasks.push(board.task);
      for (const column of columns) {
        const [task, metric] = column.key.split("/");
        if (task !== board.task || metric === undefined) continue;
        // A flagged result's numbers are not scores (below chance, no log-probs): show the flags instead.
        const number = row.flags.length > 0 ? null : metric === board.metric.name ? row.value : row.metrics[metric];
        model.values[column.key] = typeof number === "number" ? number : null;
        const error = board.kind === "cost" && metric === "decodeTokensPerSecond" ? row.cost?.decodeStandardError : row.standardErrors?.[metric];
        model.errors[column.key] = typeof error === "number" ? error : null;
        if (metric === board.metric.name && row.withinNoiseOf.length > 0) {
          model.withinNoise[column.key] = board.rows.filter((other) => row.withinNoiseOf.includes(other.digest)).map((other) => other.names[0] ?? other.digest.slice(0, 19));
        }
        if (row.apart !== null) model.apart[column.key] = row.apart;
        if (row.flags.length > 0) model.flags[column.key] = row.flags;
      }
      models.set(row.digest, model);
    }
  }
  return [...models.values()];
}

/** Which column the table is sorted by, and which way. */
export interface SortOrder {
  /** A column key, or `name`. */
  key: string;
  direction: "ascending" | "descending";
}

/** Rows in the order asked for; models without the number come last whichever the direction. */
export function sortResults(rows: readonly ModelResults[], order: SortOrder): ModelResults[] {
  const sign = order.direction === "ascending" ? 1 : -1;
  const name = (row: ModelResults) => row.names[0] ?? row.digest;
  return [...rows].sort((a, b) => {
    if (order.key === "name") return sign * name(a).localeCompare(name(b));
    const left = a.values[order.key] ?? null;
    const right = b.values[order.key] ?? null;
    if (left === null || right === null) return left === right ? name(a).localeCompare(name(b)) : left === null ? 1 : -1;
    return sign * (left - right) || name(a).localeCompare(name(b));
  });
}

/** The order a first click on a column gives: best first. */
export function bestFirst(column: ResultColumn): SortOrder {
  return { key: column.key, direction: column.higherIsBetter ? "descending" : "ascending" };
}
