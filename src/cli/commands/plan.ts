import type { Command } from "commander";
import { currentMachine } from "../../results/machine.js";
import { formatSize, planDeployment, planOptionsFromText, type PlanCandidate, type PlanResult } from "../../plan/plan.js";
import { renderTable } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, withResults } from "../store-access.js";

interface PlanFlags {
  database?: string;
  memory?: string;
  p50TokenMs?: string;
  minTps?: string;
  ctx?: string;
  slots?: string;
  task?: string;
  tree?: string;
  home?: string;
  json?: boolean;
}

/**
 * Registers `grove plan`: which model of the store (or of one tree) to serve within a memory
 * limit and, by measurement, a latency and throughput limit — ranked by measured quality, with
 * one line for each model left out.
 *
 * @example
 * grove plan --memory 8GiB --p50-token-ms 50 --ctx 4096 --slots 4 --task perplexity
 * grove plan --memory 512MiB --tree small:f16 --json
 */
export function registerPlanCommand(program: Command): void {
  program
    .command("plan")
    .description("pick the model, quantization and settings that fit a deployment's memory, latency and throughput limits, by measured quality")
    .requiredOption("--memory <size>", "memory limit of the serving process: 8GiB, 512MiB, 8GB or bytes")
    .option("--p50-token-ms <ms>", "largest median time per generated token (needs grove bench results)")
    .option("--min-tps <n>", "smallest aggregate decode tokens/s with every slot busy (needs grove bench results)")
    .option("--ctx <tokens>", "context tokens per slot", "4096")
    .option("--slots <n>", "parallel slots", "4")
    .option("--task <name>", "quality task to rank by: perplexity, kl-divergence or a task file's name (grove eval results)")
    .option("--tree <ref>", "only the fork tree of this model")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print the plan as JSON")
    .action(async (flags: PlanFlags) => {
      const options = planOptionsFromText({
        memory: flags.memory,
        ctx: flags.ctx,
        slots: flags.slots,
        p50TokenMs: flags.p50TokenMs,
        minTps: flags.minTps,
        task: flags.task,
        tree: flags.tree,
      });
      const plan = await withResults(flags, async (store, results) => {
        return await planDeployment(store, results, { ...options, machine: currentMachine() });
      });
      process.stdout.write(flags.json ? `${JSON.stringify(plan)}\n` : formatPlan(plan));
    });
}

function label(candidate: { names: string[]; digest: string }): string {
  return candidate.names[0] ?? candidate.digest.slice(0, 19);
}

/** The plan for people: the choice, the ranked candidates, and one line per exclusion. */
export function formatPlan(plan: PlanResult): string {
  const { limits } = plan;
  const lines: string[] = [];
  const wanted = [
    `memory ${formatSize(limits.memoryBytes)}`,
    `ctx ${limits.contextSize} × ${limits.slots} slots`,
    ...(limits.p50TokenMs === null ? [] : [`p50 token ≤ ${limits.p50TokenMs} ms`]),
    ...(limits.minTokensPerSecond === null ? [] : [`≥ ${limits.minTokensPerSecond} tokens/s at ${limits.slots} streams`]),
    ...(limits.task === null ? [] : [`quality on ${limits.task}`]),
  ];
  lines.push(`limits: ${wanted.join(", ")}`);
  lines.push(plan.choice === null ? "choice: none of the models meets the limits" : `choice: ${label(plan.choice)} (${plan.choice.quantization}, ${formatSize(plan.choice.memoryBytes)})`);
  if (plan.ranked.length > 0) {
    const number = (value: number | null, digits = 1) => (value === null ? "-" : value.toFixed(digits));
    const quality = (candidate: PlanCandidate) => (candidate.quality === null ? (limits.task === null ? "-" : "not measured") : `${candidate.quality.metric} ${candidate.quality.value.toPrecision(4)}`);
    lines.push(
      "",
      renderTable(
        ["#", "MODEL", "QUANT", "MEMORY", "DECODE TOK/S", "P50 MS", "QUALITY"],
        plan.ranked.map((candidate, index) => [
          String(index + 1),
          label(candidate),
          candidate.quantization,
          formatSize(candidate.memoryBytes),
          number(candidate.decodeTokensPerSecond),
          number(candidate.p50TokenMs),
          quality(candidate),
        ]),
        [true, false, false, true, true, true, false],
      ),
    );
    for (const candidate of plan.ranked) for (const note of candidate.notes) lines.push(`  ${label(candidate)}: ${note}`);
  }
  if (plan.excluded.length > 0) {
    lines.push("", "excluded:");
    for (const exclusion of plan.excluded) lines.push(`  ${label(exclusion)}: ${exclusion.reason}`);
  }
  lines.push("", ...plan.notes);
  return `${lines.join("\n")}\n`;
}
