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
  /** Servers that failed part-way, with the error. */
  readonly failures?: readonly string[];
}

/** One row of the comparison: a summary statistic on each server, and the ratios to llama-server. */
export interface MetricRow {
  /** Human label, with its unit and whether higher or lower is better. */
  readonly metric: string;
  /** Stable key for JSON consumers, e.g. `decode_single_tps`. */
  readonly key: string;
  /** Which direction is better. */
  readonly better: "higher" | "lower";
  /** Grove's value (node-llama-cpp's prebuilt libraries), if measured. */
  readonly grove: number | undefined;
  /** Grove on the reference build's libraries, if measured. */
  readonly groveRef: number | undefined;
  /** llama-server's value, if measured. */
  readonly llamaServer: number | undefined;
  /** grove / llamaServer, when both exist. */
  readonly ratio: number | undefined;
  /** groveRef / llamaServer, when both exist. */
  readonly refRatio: number | undefined;
}

interface MetricDefinition {
  readonly key: string;
  readonly metric: string;
  readonly better: "higher" | "lower";
  readonly value: (results: ScenarioResults) => number | undefined;
}

const largest = (values: readonly number[]) => (values.length === 0 ? undefined : Math.max(...values));

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
  rows.push(
    { key: "burst_max_gap_ms", metric: "long prompt arriving: longest pause of a running stream (ms, worst round) ↓", better: "lower", value: (results) => largest(results.burst?.maxGapMs ?? []) },
    { key: "burst_baseline_gap_ms", metric: "long prompt arriving: usual pause before it (ms, median) ↓", better: "lower", value: (results) => median(results.burst?.baselineGapMs ?? []) },
    { key: "burst_ttft_ms", metric: "long prompt arriving: its time to first token (ms, p50) ↓", better: "lower", value: (results) => median(results.burst?.promptFirstTokenMs ?? []) },
    { key: "event_loop_max_ms", metric: "long prompt arriving: longest event-loop stall (ms, worst round) ↓", better: "lower", value: (results) => largest(results.burst?.eventLoopMaxMs ?? []) },
    { key: "peak_rss_mib", metric: "peak resident memory (MiB) ↓", better: "lower", value: (results) => (results.peakRssBytes === undefined ? undefined : results.peakRssBytes / 2 ** 20) },
  );
  return rows;
}

const ratioOf = (value: number | undefined, reference: number | undefined) => (value !== undefined && reference !== undefined && reference > 0 ? value / reference : undefined);

/** The comparison rows of one model, in a fixed order; rows no server measured are left out. */
export function metricRows(measurements: ModelMeasurements, concurrency: readonly number[]): MetricRow[] {
  const { grove, "grove-ref": groveRef, "llama-server": llamaServer } = measurements.servers;
  return definitions(concurrency)
    .map((definition) => {
      const groveValue = grove ? definition.value(grove) : undefined;
      const refValue = groveRef ? definition.value(groveRef) : undefined;
      const llamaValue = llamaServer ? definition.value(llamaServer) : undefined;
      return {
        key: definition.key,
        metric: definition.metric,
        better: definition.better,
        grove: groveValue,
        groveRef: refValue,
        llamaServer: llamaValue,
        ratio: ratioOf(groveValue, llamaValue),
        refRatio: ratioOf(refValue, llamaValue),
      };
    })
    .filter((row) => row.grove !== undefined || row.groveRef !== undefined || row.llamaServer !== undefined);
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
  const ref = measurements.servers["grove-ref"] !== undefined;
  const lines = [
    `### ${measurements.name}`,
    "",
    `\`${measurements.origin}\`, ${gigabytes} GB`,
    "",
    ref
      ? "| metric | Grove | Grove, reference libraries | llama-server | Grove / llama-server | Grove (ref.) / llama-server |"
      : "| metric | Grove | llama-server | ratio (Grove / llama-server) |",
    ref ? "|---|---:|---:|---:|---:|---:|" : "|---|---:|---:|---:|",
  ];
  const ratio = (value: number | undefined) => (value === undefined ? "—" : value.toFixed(2));
  for (const row of metricRows(measurements, concurrency)) {
    const time = row.better === "lower";
    lines.push(
      ref
        ? `| ${row.metric} | ${number(row.grove, time)} | ${number(row.groveRef, time)} | ${number(row.llamaServer, time)} | ${ratio(row.ratio)} | ${ratio(row.refRatio)} |`
        : `| ${row.metric} | ${number(row.grove, time)} | ${number(row.llamaServer, time)} | ${ratio(row.ratio)} |`,
    );
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
  for (const failure of measurements.failures ?? []) lines.push(`- failed: ${failure}`);
  lines.push("");
  return lines.join("\n");
}
