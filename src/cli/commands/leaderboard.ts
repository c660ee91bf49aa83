import { stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { InvalidRequestError } from "../../core/errors.js";
import { ResultStore } from "../../results/result-store.js";
import { buildFront, FRONT_COSTS, parseFrontCost, renderFrontSvg, type FrontModel, type FrontResult } from "../../results/views/front.js";
import { buildLeaderboard, listTasks, type LeaderboardResult, type TaskSummary } from "../../results/views/leaderboard.js";
import type { ModelStore } from "../../store/model-store.js";
import { formatBytes, renderTable, shortDigest } from "../format.js";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "../store-access.js";

interface LeaderboardFlags {
  task?: string;
  tree?: string;
  metric?: string;
  json?: boolean;
  home?: string;
}

interface FrontFlags {
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
    .option("--json", "print the leaderboard as JSON")
    .action(async (flags: LeaderboardFlags) => {
      if (flags.metric !== undefined && flags.task === undefined) throw new InvalidRequestError("--metric needs --task NAME", { param: "metric" });
      const view = await withResults(flags.home, async (store, results) =>
        flags.task === undefined ? await listTasks(store, results, flags.tree) : await buildLeaderboard(store, results, { task: flags.task, ...defined({ tree: flags.tree, metric: flags.metric }) }),
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
    .option("--json", "print the front as JSON")
    .action(async (flags: FrontFlags) => {
      parseFrontCost(flags.cost);
      const out = flags.out === undefined ? undefined : resolve(flags.out);
      if (out !== undefined) await checkOutputDirectory(out);
      const front = await withResults(flags.home, (store, results) => buildFront(store, results, defined({ task: flags.task, cost: flags.cost, tree: flags.tree })));
      if (out !== undefined) {
        await writeFile(out, renderFrontSvg(front));
        process.stderr.write(`wrote ${flags.out}\n`);
      }
      process.stdout.write(flags.json ? `${JSON.stringify(front)}\n` : formatFront(front));
    });
}

async function withResults<T>(home: string | undefined, fn: (store: ModelStore, results: ResultStore) => Promise<T>): Promise<T> {
  return withStore(home, async (store) => {
    const results = ResultStore.open(store.home);
    try {
      return await fn(store, results);
    } finally {
      results.close();
    }
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

/** The leaderboard as a table: ranked rows, then flagged ones with their flags instead of a rank. */
export function formatLeaderboard(board: LeaderboardResult): string {
  const metricNames = [board.metric.name, ...new Set(board.rows.flatMap((row) => Object.keys(row.metrics)))].filter((name, index, all) => all.indexOf(name) === index).slice(0, 3);
  const showKl = board.task !== "kl-divergence";
  const header = ["RANK", "MODEL", "QUANT", "SIZE", ...metricNames, ...(showKl ? ["KL"] : []), "DECODE T/S", "PEAK RSS", "FLAGS"];
  const rows = board.rows.map((row) => [
    row.rank === null ? "-" : String(row.rank),
    row.names.length > 0 ? row.names.join(", ") : shortDigest(row.digest),
    row.quantization,
    formatBytes(row.size),
    ...metricNames.map((name) => formatMetric(row.metrics[name])),
    ...(showKl ? [formatMetric(row.klDivergence?.value)] : []),
    row.cost?.decodeTokensPerSecond == null ? "-" : row.cost.decodeTokensPerSecond.toFixed(1),
    row.cost?.peakRssBytes == null ? "-" : formatBytes(row.cost.peakRssBytes),
    row.flags.length > 0 ? `FLAGGED: ${row.flags.join(", ")} (not a score)` : "",
  ]);
  const right = header.map((title, index) => index === 0 || (index >= 3 && title !== "FLAGS"));
  const direction = board.metric.higherIsBetter ? "higher is better" : "lower is better";
  const lines = [`${board.task}: ranked by ${board.metric.name} (${direction})${board.tree === null ? "" : `, tree of ${board.tree}`}`, renderTable(header, rows, right)];
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
    formatMetric(model.quality),
    formatCost(model.cost),
    model.onFront ? "front" : `dominated by ${model.dominatedBy.map(name).join(", ")}`,
  ]);
  const direction = (higherIsBetter: boolean): string => (higherIsBetter ? "higher is better" : "lower is better");
  const lines = [
    `${front.task}: ${front.quality.metric} (${direction(front.quality.higherIsBetter)}) vs ${front.cost.metric} (${direction(front.cost.higherIsBetter)})`,
    renderTable(["MODEL", "QUANT", front.quality.metric.toUpperCase(), front.cost.metric.toUpperCase(), "STATUS"], rows, [false, false, true, true]),
  ];
  if (front.unplaced.length > 0) lines.push("", "not placed:", ...front.unplaced.map((model) => `  ${name(model)}: ${model.reason}`));
  if (front.notes.length > 0) lines.push("", ...front.notes.map((note) => `note: ${note}`));
  return `${lines.join("\n")}\n`;
}
