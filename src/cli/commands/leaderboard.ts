import { stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { InvalidRequestError } from "../../core/errors.js";
import { currentMachine, describeMachine } from "../../results/machine.js";
import { buildFront, FRONT_COSTS, parseFrontCost, renderFrontSvg, type FrontModel, type FrontResult } from "../../results/views/front.js";
import { buildLeaderboard, listTasks, type LeaderboardResult, type TaskSummary } from "../../results/views/leaderboard.js";
import { formatBytes, renderTable, shortDigest } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, withResults } from "../store-access.js";

interface LeaderboardFlags {
  database?: string;
  task?: string;
  tree?: string;
  metric?: string;
  json?: boolean;
  home?: string;
}

interface FrontFlags {
  database?: string;
  task?: string;
  tree?: string;
  cost?: string;
  out?: string;
  json?: boolean;
  home?: string;
}

/**
 * Registers `grove leaderboard` (models ranked on one task, with their KL divergence to the
 * parent and measured cost) and `grove front` (the quality-versus-cost Pareto front, as a table
 * and an SVG chart). Both read the results `grove eval` and `grove bench` stored.
 *
 * @example
 * grove leaderboard                              # the tasks with results
 * grove leaderboard --task perplexity --tree small:f16
 * grove front --task arith --cost peakRssBytes --out front.svg
 */
export function registerLeaderboardCommands(program: Command): void {
  program
    .command("leaderboard")
    .description("rank models on a task from stored results (without --task: the tasks with results)")
    .option("--task <name>", "the task: perplexity, kl-divergence, a task file's name, or bench")
    .option("--tree <ref>", "only the models of this model's fork tree")
    .option("--metric <name>", "rank by this metric of the task's results (default: its primary metric)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print the leaderboard as JSON")
    .action(async (flags: LeaderboardFlags) => {
      if (flags.metric !== undefined && flags.task === undefined) throw new InvalidRequestError("--metric needs --task NAME", { param: "metric" });
      const view = await withResults(flags, async (store, results) =>
        flags.task === undefined ? await listTasks(store, results, flags.tree) : await buildLeaderboard(store, results, { task: flags.task, machine: currentMachine(), ...defined({ tree: flags.tree, metric: flags.metric }) }),
      );
      if (flags.json) return void process.stdout.write(`${JSON.stringify(Array.isArray(view) ? { tasks: view } : view)}\n`);
      process.stdout.write(Array.isArray(view) ? formatTasks(view) : formatLeaderboard(view));
    });

  program
    .command("front")
    .description("the quality-versus-cost Pareto front: which models are dominated, and by whom; --out writes an SVG chart")
    .option("--task <name>", "the quality task (default: the one measured on the most models)")
    .option("--cost <metric>", `${FRONT_COSTS.map((cost) => cost.name).join(", ")} (size needs no grove bench)`, "size")
    .option("--tree <ref>", "only the models of this model's fork tree")
    .option("--out <file.svg>", "write the chart as SVG")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print the front as JSON")
    .action(async (flags: FrontFlags) => {
      parseFrontCost(flags.cost);
      const out = flags.out === undefined ? undefined : resolve(flags.out);
      if (out !== undefined) await checkOutputDirectory(out);
      const front = await withResults(flags, (store, results) => buildFront(store, results, { machine: currentMachine(), ...defined({ task: flags.task, cost: flags.cost, tree: flags.tree }) }));
      if (out !== undefined) {
        await writeFile(out, renderFrontSvg(front));
        process.stderr.write(`wrote ${flags.out}\n`);
      }
      process.stdout.write(flags.json ? `${JSON.stringify(front)}\n` : formatFront(front));
    });
}

async function checkOutputDirectory(path: string): Promise<void> {
  const directory = dirname(path);
  const info = await stat(directory).catch(() => undefined);
  if (info === undefined || !info.isDirectory()) throw new InvalidRequestError(`--out: the directory ${directory} does not exist`, { param: "out" });
}

function defined<T extends Record<string, unknown>>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** A metric value for people: 4 significant digits, 2 decimals from 100 up, `-` when missing. */
export function formatMetric(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  return Math.abs(value) >= 100 ? value.toFixed(2) : value.toPrecision(4);
}

/** The tasks with results, and how to rank one. */
export function formatTasks(tasks: readonly TaskSummary[]): string {
  if (tasks.length === 0) return "no results yet: measure models with grove eval REF --task perplexity, or grove bench REF\n";
  const rows = tasks.map((task) => [task.task, task.kind, String(task.models), String(task.results), task.metrics.join(", ")]);
  return `${renderTable(["TASK", "KIND", "MODELS", "RESULTS", "METRICS"], rows, [false, false, true, true])}\n\nrank one with grove leaderboard --task NAME\n`;
}

/** A metric value with its standard error: `2166.40 ±13.70`, or the value alone when the error is unknown. */
export function formatMetricWithError(value: number | null | undefined, error: number | null | undefined): string {
  return typeof error === "number" && typeof value === "number" ? `${formatMetric(value)} ±${formatMetric(error)}` : formatMetric(value);
}

/** `≈ 1-6` style list of the ranks a row is within noise of (its own included), or `` when none. */
function withinNoise(board: LeaderboardResult, row: LeaderboardResult["rows"][number]): string {
  if (row.rank === null) return "";
  if (row.withinNoiseOf.length === 0) return row.againstAbove !== null && row.againstAbove.significant === null ? "?" : "";
  const ranks = [row.rank, ...board.rows.filter((other) => row.withinNoiseOf.includes(other.digest)).map((other) => other.rank!)].sort((a, b) => a - b);
  const contiguous = ranks.every((rank, index) => index === 0 || rank - ranks[index - 1]! <= 1);
  return `≈ ${contiguous ? `${ranks[0]}-${ranks.at(-1)}` : ranks.join(",")}`;
}

/**
 * The leaderboard as a table: ranked rows with each score's standard error and the ranks it is
 * within noise of (≈), then flagged ones with their flags instead of a rank, then results not
 * comparable with the ranked ones, with the reason.
 */
export function formatLeaderboard(board: LeaderboardResult): string {
  const metricNames = [board.metric.name, ...new Set(board.rows.flatMap((row) => Object.keys(row.metrics)))]
    .filter((name, index, all) => all.indexOf(name) === index && name !== "perplexityError")
    .slice(0, 3);
  const showKl = board.task !== "kl-divergence";
  const header = ["RANK", "MODEL", "QUANT", "SIZE", ...metricNames, "WITHIN NOISE", ...(showKl ? ["KL"] : []), "DECODE T/S", "PEAK RSS", "FLAGS"];
  const rows = board.rows.map((row) => [
    row.rank === null ? "-" : String(row.rank),
    row.names.length > 0 ? row.names.join(", ") : shortDigest(row.digest),
    row.quantization,
    formatBytes(row.size),
    ...metricNames.map((name) => formatMetricWithError(row.metrics[name], row.standardErrors[name])),
    withinNoise(board, row),
    ...(showKl ? [formatMetricWithError(row.klDivergence?.value, row.klDivergence?.standardError)] : []),
    row.cost?.decodeTokensPerSecond == null ? "-" : `${row.cost.decodeTokensPerSecond.toFixed(1)}${row.cost.decodeStandardError == null ? "" : ` ±${row.cost.decodeStandardError.toFixed(1)}`}`,
    row.cost?.peakRssBytes == null ? "-" : formatBytes(row.cost.peakRssBytes),
    row.apart !== null
      ? `APART: ${row.apart}`
      : row.flags.length > 0
        ? `FLAGGED: ${row.flags.join(", ")} (not a score)`
        : "",
  ]);
  const right = header.map((title, index) => index === 0 || (index >= 3 && title !== "FLAGS" && title !== "WITHIN NOISE"));
  const direction = board.metric.higherIsBetter ? "higher is better" : "lower is better";
  const measuredOn = board.kind === "cost" ? `, on ${describeMachine(board.measuredOn.machine)}` : "";
  const lines = [`${board.task}: ranked by ${board.metric.name} (${direction}, ± one standard error)${board.tree === null ? "" : `, tree of ${board.tree}`}${measuredOn}`, renderTable(header, rows, right)];
  if (board.rows.length === 0) lines.push("(no model has a result on it)");
  if (board.notes.length > 0) lines.push("", ...board.notes.map((note) => `note: ${note}`));
  return `${lines.join("\n")}\n`;
}

/** The front as a table: models on the front (best cost first), then the dominated ones and by whom. */
export function formatFront(front: FrontResult): string {
  const formatCost = (value: number): string => (front.cost.metric === "decodeTokensPerSecond" ? value.toFixed(1) : formatBytes(value));
  const name = (model: { digest: FrontModel["digest"]; names: string[] }): string => model.names[0] ?? shortDigest(model.digest);
  const rows = [...front.front, ...front.dominated].map((model) => [
    name(model),
    model.quantization,
    formatMetricWithError(model.quality, model.qualityError),
    formatCost(model.cost),
    model.onFront
      ? "front"
      : `dominated by ${model.dominatedBy.map((other) => `${name(other)}${other.qualityWithinNoise === true ? " (≈ quality within noise)" : ""}`).join(", ")}`,
  ]);
  const direction = (higherIsBetter: boolean): string => (higherIsBetter ? "higher is better" : "lower is better");
  const lines = [
    `${front.task}: ${front.quality.metric} (${direction(front.quality.higherIsBetter)}) vs ${front.cost.metric} (${direction(front.cost.higherIsBetter)})`,
    renderTable(["MODEL", "QUANT", front.quality.metric.toUpperCase(), front.cost.metric.toUpperCase(), "STATUS"], rows, [false, false, true, true]),
  ];
  if (front.machine !== null) lines.splice(1, 0, `${front.cost.metric} measured on ${describeMachine(front.machine)}`);
  if (front.unplaced.length > 0) lines.push("", "not placed:", ...front.unplaced.map((model) => `  ${name(model)}: ${model.reason}`));
  if (front.notes.length > 0) lines.push("", ...front.notes.map((note) => `note: ${note}`));
  return `${lines.join("\n")}\n`;
}
