import { InvalidRequestError } from "../../core/errors.js";
import type { ModelStore } from "../../store/model-store.js";
import { describeMachine, sameMachine, type Machine } from "../machine.js";
import type { ResultStore } from "../result-store.js";
import { renderFrontChart } from "./front-chart.js";
import { buildLeaderboard, listTasks, type LeaderboardRow } from "./leaderboard.js";
import { paretoFront } from "./pareto-front.js";
import type { FrontCost, FrontModel, FrontResult } from "../../core/wire.js";

/** The JSON shapes the admin API answers with are declared once, in core/wire.ts (the web app reads them too). */
export type { FrontCost, FrontModel, FrontResult } from "../../core/wire.js";


/** The costs a front can use, and which way each is better. */
export const FRONT_COSTS: readonly { name: FrontCost; higherIsBetter: boolean; title: string }[] = [
  { name: "size", higherIsBetter: false, title: "file size" },
  { name: "peakRssBytes", higherIsBetter: false, title: "peak RSS" },
  { name: "decodeTokensPerSecond", higherIsBetter: true, title: "decode tokens/s" },
];

/** Input of {@link buildFront}. */
export interface FrontOptions {
  /** The quality task. @default the quality task with results for the most models */
  task?: string;
  /** @default "size" */
  cost?: string;
  /** Only the models of this model's fork tree. */
  tree?: string;
  /** The machine whose speed and memory results are used where it has any (this one). */
  machine?: Machine;
}



/**
 * Checks a cost name.
 * @throws InvalidRequestError (param `cost`) for another name
 */
export function parseFrontCost(text: string | undefined): FrontCost {
  if (text === undefined || text === "") return "size";
  const cost = FRONT_COSTS.find((candidate) => candidate.name === text);
  if (cost === undefined) throw new InvalidRequestError(`Unknown cost '${text}': use ${FRONT_COSTS.map((candidate) => candidate.name).join(", ")}`, { param: "cost" });
  return cost.name;
}

/**
 * The quality-versus-cost Pareto front of the store's models (or one tree's) on one quality
 * task: which models are on the front, which are dominated and by whom. Flagged quality results
 * and models without the cost measured are listed as unplaced, with the reason.
 *
 * @throws InvalidRequestError for an unknown task or cost, or a cost task (`bench`) as the quality
 */
export async function buildFront(store: ModelStore, results: ResultStore, options: FrontOptions): Promise<FrontResult> {
  const costName = parseFrontCost(options.cost);
  const cost = FRONT_COSTS.find((candidate) => candidate.name === costName)!;
  const notes: string[] = [];
  let task = options.task;
  if (task === undefined || task === "") {
    const quality = (await listTasks(store, results, options.tree)).filter((summary) => summary.kind === "quality");
    const chosen = [...quality].sort((a, b) => b.models - a.models || a.task.localeCompare(b.task))[0];
    if (chosen === undefined) throw new InvalidRequestError("No quality results to draw a front from: measure models with grove eval REF --task perplexity", { param: "task" });
    task = chosen.task;
    notes.push(`no task given: ${task}, the quality task measured on the most models`);
  }
  const board = await buildLeaderboard(store, results, {
    task,
    ...(options.tree === undefined ? {} : { tree: options.tree }),
    ...(options.machine === undefined ? {} : { machine: options.machine }),
  });
  if (board.kind === "cost") {
    throw new InvalidRequestError(`'${task}' is a cost measurement; choose a quality task (grove leaderboard lists them)`, { param: "task" });
  }
  const placed: { row: LeaderboardRow; quality: number; cost: number }[] = [];
  const unplaced: FrontResult["unplaced"] = [];
  const machine = costName === "size" ? null : costMachine(board.rows, options.machine);
  for (const row of board.rows) {
    const costValue = costOf(row, costName);
    if (row.apart !== null) unplaced.push({ digest: row.digest, names: row.names, reason: `quality ${row.apart}` });
    else if (row.value === null) unplaced.push({ digest: row.digest, names: row.names, reason: `quality not a score: ${row.flags.join(", ")}` });
    else if (costValue !== null && machine !== null && !sameMachine(row.cost?.machine, machine)) {
      unplaced.push({ digest: row.digest, names: row.names, reason: `${costName} measured on ${describeMachine(row.cost?.machine)}, the front's on ${describeMachine(machine)}: speeds of different machines are not compared` });
    }
    else if (costValue === null) unplaced.push({ digest: row.digest, names: row.names, reason: `${costName} not measured: run grove bench ${row.names[0] ?? row.digest}` });
    else placed.push({ row, quality: row.value, cost: costValue });
  }
  const membership = paretoFront(placed.map((point) => ({ item: point.row, quality: point.quality, cost: point.cost })), {
    qualityHigherIsBetter: board.metric.higherIsBetter,
    costHigherIsBetter: cost.higherIsBetter,
  });
  const models = membership.map((entry): FrontModel => {
    const dominatedBy = entry.dominatedBy.map((index) => {
      const other = membership[index]!.item;
      const judged = entry.item.withinNoiseOf.includes(other.digest) ? true : entry.item.standardError === null || other.standardError === null ? null : false;
      return { digest: other.digest, names: other.names, qualityWithinNoise: judged };
    });
    return {
      digest: entry.item.digest,
      names: entry.item.names,
      quantization: entry.item.quantization,
      quality: entry.quality,
      qualityError: entry.item.standardError,
      cost: entry.cost,
      onFront: entry.onFront,
      dominatedBy,
      dominatedWithinNoise: dominatedBy.length > 0 && dominatedBy.every((other) => other.qualityWithinNoise === true),
    };
  });
  const withinNoise = models.filter((model) => model.dominatedWithinNoise).length;
  if (withinNoise > 0) notes.push(`${withinNoise} dominated model${withinNoise === 1 ? " is" : "s are"} worse in quality only within noise (marked ≈): not clearly worse`);
  const otherMachine = unplaced.filter((entry) => entry.reason.includes("different machines")).length;
  if (otherMachine > 0) notes.push(`${otherMachine} model${otherMachine === 1 ? "'s" : "s'"} ${costName} measured on another machine: shown apart, not on this front`);
  const better = (a: number, b: number, higherIsBetter: boolean): number => (higherIsBetter ? b - a : a - b);
  return {
    task,
    quality: { metric: board.metric.name, higherIsBetter: board.metric.higherIsBetter },
    cost: { metric: costName, higherIsBetter: cost.higherIsBetter },
    front: models.filter((model) => model.onFront).sort((a, b) => better(a.cost, b.cost, cost.higherIsBetter) || better(a.quality, b.quality, board.metric.higherIsBetter)),
    dominated: models.filter((model) => !model.onFront).sort((a, b) => better(a.quality, b.quality, board.metric.higherIsBetter) || better(a.cost, b.cost, cost.higherIsBetter)),
    unplaced,
    machine,
    significance: board.significance,
    notes: [...notes, ...board.notes],
  };
}

/** The front as an SVG chart (cost on x, quality on y). */
export function renderFrontSvg(front: FrontResult): string {
  const cost = FRONT_COSTS.find((candidate) => candidate.name === front.cost.metric)!;
  const direction = (higherIsBetter: boolean): string => (higherIsBetter ? "higher is better" : "lower is better");
  return renderFrontChart({
    title: `Quality vs cost: ${front.task}`,
    cost: { title: `${cost.title} (${direction(cost.higherIsBetter)})`, format: cost.name === "decodeTokensPerSecond" ? undefined : formatBytesShort },
    quality: { title: `${front.quality.metric} (${direction(front.quality.higherIsBetter)})` },
    points: [...front.front, ...front.dominated].map((model) => ({ label: model.names[0] ?? model.digest.slice(0, 19), cost: model.cost, quality: model.quality, onFront: model.onFront })),
  });
}

/** The machine whose costs the front compares: the preferred one where a row has it, else the one most rows were measured on. */
function costMachine(rows: readonly LeaderboardRow[], preferred: Machine | undefined): Machine | null {
  const machines = rows.map((row) => row.cost?.machine).filter((machine): machine is Machine => machine != null);
  if (preferred !== undefined && machines.some((machine) => sameMachine(machine, preferred))) return preferred;
  const counts = new Map<string, { machine: Machine; count: number }>();
  for (const machine of machines) counts.set(machine.fingerprint, { machine, count: (counts.get(machine.fingerprint)?.count ?? 0) + 1 });
  return [...counts.values()].sort((a, b) => b.count - a.count)[0]?.machine ?? null;
}

function costOf(row: LeaderboardRow, cost: FrontCost): number | null {
  if (cost === "size") return row.size;
  return row.cost?.[cost] ?? null;
}

function formatBytesShort(bytes: number): string {
  for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["KB", 1e3]] as const) {
    if (Math.abs(bytes) >= scale) return `${Number((bytes / scale).toPrecision(4))} ${unit}`;
  }
  return `${Number(bytes.toPrecision(4))} B`;
}
