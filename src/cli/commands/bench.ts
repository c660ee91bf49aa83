import type { Command } from "commander";
import { describeMachine } from "../../results/machine.js";
import { spinner } from "../progress.js";
import { InvalidRequestError } from "../../core/errors.js";
import { benchModel } from "../../bench/cost/bench-model.js";
import type { ResultRecord } from "../../results/result-store.js";
import { formatBytes, renderTable } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, withResults } from "../store-access.js";

interface BenchFlags {
  database?: string;
  ctx?: string;
  slots?: string;
  threads?: string;
  promptTokens?: string;
  outputTokens?: string;
  concurrency?: string;
  force?: boolean;
  json?: boolean;
  home?: string;
}

/** Parses a positive integer flag; undefined when absent. */
export function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1) throw new InvalidRequestError(`--${flag} must be a positive integer, got '${value}'`, { param: flag });
  return number;
}

/**
 * Registers `grove bench REF`: the cost of serving a store model — prompt and decode tokens/s,
 * time to first token, aggregate decode at 1/2/4/8 streams, peak memory — measured through
 * `grove serve` itself in a child process, and stored (reused unless --force).
 *
 * @example
 * grove bench small:q8 --ctx 2048 --slots 4
 * grove bench small:q8 --prompt-tokens 128 --output-tokens 32 --concurrency 1,4 --json
 */
export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    .description("measure a model's serving cost through grove serve: prompt/decode tokens/s, time to first token, peak memory (stored)")
    .argument("<ref>", "name, digest or unique digest prefix of the model")
    .option("--ctx <tokens>", "context tokens per slot, as serve --ctx-size", "2048")
    .option("--slots <n>", "parallel slots, as serve --parallel", "4")
    .option("--threads <n>", "CPU threads (default as serve: 1 below 1 GiB of weights, else every core)")
    .option("--prompt-tokens <n>", "prompt length for prompt speed and time to first token", "512")
    .option("--output-tokens <n>", "tokens generated per stream", "128")
    .option("--concurrency <list>", "concurrent streams for aggregate decode, capped at --slots", "1,2,4,8")
    .option("--force", "measure again even when a result is stored")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print the result as JSON")
    .action(async (ref: string, flags: BenchFlags) => {
      const options = {
        contextSize: integerFlag(flags.ctx, "ctx"),
        slots: integerFlag(flags.slots, "slots"),
        threads: integerFlag(flags.threads, "threads"),
        promptTokens: integerFlag(flags.promptTokens, "prompt-tokens"),
        outputTokens: integerFlag(flags.outputTokens, "output-tokens"),
        concurrency: (flags.concurrency ?? "1,2,4,8").split(",").map((item) => integerFlag(item, "concurrency")!),
        force: flags.force === true,
      };
      // On a terminal the phase spins in place; elsewhere each phase is a line of the log.
      const phase = spinner("bench");
      const onProgress = process.stderr.isTTY ? (message: string) => phase.update(`bench: ${message}`) : (message: string) => void process.stderr.write(`bench: ${message}\n`);
      const outcome = await withResults(flags, async (store, results) => {
        try {
          return await benchModel(store, results, ref, { ...options, onProgress });
        } finally {
          phase.stop();
        }
      });
      if (outcome.reused) process.stderr.write(`stored result from ${outcome.result.createdAt.slice(0, 19)}Z; --force to measure again\n`);
      if (flags.json) return void process.stdout.write(`${JSON.stringify(outcome)}\n`);
      process.stdout.write(formatCost(outcome.result));
    });
}

/** The metrics of a cost result as a two-column table. */
export function formatCost(result: ResultRecord): string {
  const rows: string[][] = [];
  const metric = (name: string) => result.metrics[name];
  const number = (value: number | null | undefined, digits = 1) => (typeof value === "number" ? value.toFixed(digits) : "-");
  const withError = (name: string) => {
    const error = result.standardErrors?.[name];
    return `${number(metric(name))}${typeof error === "number" ? ` ±${error.toFixed(1)}` : ""}`;
  };
  // The single-stream decode runs after the long prompt, whose KV cache every new token attends
  // to; the aggregate rounds start from short prompts. So "1 stream" in the aggregate is faster
  // than the single-stream decode: the labels say which prompt each ran after.
  const promptTokens = (result.details as { workload?: { promptTokens?: number } }).workload?.promptTokens;
  const afterLong = promptTokens === undefined ? "after the long prompt" : `after a ${promptTokens}-token prompt`;
  rows.push([promptTokens === undefined ? "prompt tokens/s" : `prompt tokens/s (${promptTokens}-token prompt)`, withError("promptTokensPerSecond")]);
  rows.push([`decode tokens/s, 1 stream ${afterLong}`, withError("decodeTokensPerSecond")]);
  rows.push(["time to first token (ms)", withError("ttftMs")]);
  for (const name of Object.keys(result.metrics).filter((item) => item.startsWith("aggregateDecodeTokensPerSecond."))) {
    const streams = Number(name.split(".")[1]);
    rows.push([`aggregate decode tokens/s, ${streams} stream${streams === 1 ? "" : "s"} at once, short prompts`, number(metric(name))]);
  }
  const peak = metric("peakRssBytes");
  rows.push(["peak RSS (incl. Node runtime)", typeof peak === "number" ? formatBytes(peak) : "-"]);
  const settings = result.settings as { ctx?: number; slots?: number; threads?: number };
  return `${renderTable(["METRIC", "VALUE"], rows, [false, true])}\nctx ${settings.ctx}, ${settings.slots} slots, ${settings.threads} thread(s); ${result.engineVersion}; on ${describeMachine(result.machine)}\n`;
}
