import type { BenchServerName } from "./parse-bench-arguments.js";
import { median, percentile } from "./percentile.js";
import type { ScenarioResults } from "./run-scenarios.js";

/** One model's measurements on every server that ran. */
export interface ModelMeasurements {
  /** Model name in the report. */
  readonly name: string;
  /** How the model was made or where it came from. */
  readonly origin: string;
  /** GGUF path. */
  readonly path: string;
  /** File size, bytes. */
  readonly bytes: number;
  /** Tokens banned with `logit_bias` on both servers because they are not whole UTF-8 characters. */
  readonly bannedTokens: number;
  /** Results per server that ran. */
  readonly servers: Partial<Record<BenchServerName, ScenarioResults>>;
}

/** One row of the comparison: a summary statistic on each server, and their ratio. */
export interface MetricRow {
  /** Human label, with its unit and whether higher or lower is better. */
  readonly metric: string;
  /** Stable key for JSON consumers, e.g. `decode_single_tps`. */
  readonly key: string;
  /** Which direction is better. */
  readonly better: "higher" | "lower";
  /** Grove's value, if measured. */
  readonly grove: number | undefined;
  /** llama-server's value, if measured. */
  readonly llamaServer: number | undefined;
  /** grove / llamaServer, when both exist. */
  readonly ratio: number | undefined;
}

interface MetricDefinition {
  readonly key: string;
  readonly metric: string;
  readonly better: "higher" | "lower";
  readonly value: (results: ScenarioResults) => number | undefined;
}

function definitions(concurrency: readonly number[]): MetricDefinition[] {
  const rows: MetricDefinition[] = [
    { key: "decode_single_tps", metric: "decode, 1 stream (tok/s, median) ↑", better: "higher", value: (results) => median(results.singleDecodeRates) },
    { key: "ttft_single_ms", metric: "time to first token, short prompt (ms, p50) ↓", better: "lower", value: (results) => median(results.singleFirstTokenTimes) },
    { key: "prompt_tps", metric: "prompt processing, long prompt (tok/s, median) ↑", better: "higher", value: (results) => median(results.promptRates) },
    { key: "ttft_long_ms", metric: "time to first token, long prompt (ms, p50) ↓", better: "lower", value: (results) => median(results.longFirstTokenTimes) },
  ];
  for (const [index, streams] of concurrency.entries()) {
    const samples = (results: ScenarioResults) => results.concurrent[index];
    rows.push(
      {
        key: `aggregate_${streams}_tps`,
        metric: `${streams} streams: aggregate, wall time (tok/s, median) ↑`,
        better: "higher",
        value: (results) => median(samples(results)?.aggregateRates ?? []),
      },
      {
        key: `steady_${streams}_tps`,
        metric: `${streams} streams: all decoding, no prompt time (tok/s, median) ↑`,
        better: "higher",
        value: (results) => median(samples(results)?.steadyRates ?? []),
      },
      {
        key: `ttft_${streams}_ms`,
        metric: `${streams} streams: time to first token (ms, p50) ↓`,
        better: "lower",
        value: (results) => percentile(samples(results)?.firstTokenTimes ?? [], 50),
      },
    );
  }
  return rows;
}

/** The comparison rows of one model, in a fixed order. */
export function metricRows(measurements: ModelMeasurements, concurrency: readonly number[]): MetricRow[] {
  const grove = measurements.servers.grove;
  const llamaServer = measurements.servers["llama-server"];
  return definitions(concurrency).map((definition) => {
    const groveValue = grove ? definition.value(grove) : undefined;
    const llamaValue = llamaServer ? definition.value(llamaServer) : undefined;
    return {
      key: definition.key,
      metric: definition.metric,
      better: definition.better,
      grove: groveValue,
      llamaServer: llamaValue,
      ratio: groveValue !== undefined && llamaValue !== undefined && llamaValue > 0 ? groveValue / llamaValue : undefined,
    };
  });
}

function number(value: number | undefined, unitIsTime: boolean): string {
  if (value === undefined) return "—";
  if (unitIsTime) return value >= 100 ? value.toFixed(0) : value.toFixed(1);
  return value >= 1000 ? value.toFixed(0) : value.toFixed(1);
}

/**
 * The markdown section of one model: a heading, the table metric | Grove | llama-server |
 * ratio, the prompt lengths each server counted, and any warnings.
 */
export function renderReport(measurements: ModelMeasurements, concurrency: readonly number[]): string {
  const gigabytes = (measurements.bytes / 1e9).toFixed(2);
  const lines = [
    `### ${measurements.name}`,
    "",
    `\`${measurements.origin}\`, ${gigabytes} GB`,
    "",
    "| metric | Grove | llama-server | ratio (Grove / llama-server) |",
    "|---|---:|---:|---:|",
  ];
  for (const row of metricRows(measurements, concurrency)) {
    const time = row.better === "lower";
    lines.push(`| ${row.metric} | ${number(row.grove, time)} | ${number(row.llamaServer, time)} | ${row.ratio === undefined ? "—" : row.ratio.toFixed(2)} |`);
  }
  lines.push("");
  const counted = Object.entries(measurements.servers)
    .map(([server, results]) => `${server} ${results.promptTokens.short ?? "?"} / ${results.promptTokens.long ?? "?"}`)
    .join(", ");
  lines.push(`Prompt tokens counted (short / long): ${counted}.`);
  if (measurements.bannedTokens > 0) {
    lines.push(`${measurements.bannedTokens} tokens that are not whole UTF-8 characters were banned with \`logit_bias\` on both servers.`);
  }
  lines.push("");
  for (const [server, results] of Object.entries(measurements.servers)) {
    for (const warning of results.warnings) lines.push(`- warning (${server}): ${warning}`);
  }
  lines.push("");
  return lines.join("\n");
}
