import { basename } from "node:path";
import type { Command } from "commander";
import { InvalidRequestError } from "../../core/errors.js";
import { httpBackend } from "../../bench/quality/backends.js";
import { BUILT_IN_TASKS, evaluateModel, type EvaluateOutcome } from "../../bench/quality/evaluate.js";
import { isLmEvalConfig, readLmEvalTask } from "../../bench/quality/lm-eval/read-lm-eval-task.js";
import { readTask, scoreTask, type TaskScore } from "../../bench/quality/tasks.js";
import type { ResultRecord } from "../../results/result-store.js";
import { standardErrorsFromSamples } from "../../results/uncertainty.js";
import { withProgress } from "../progress.js";
import { renderTable } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, withResults } from "../store-access.js";

interface EvalFlags {
  database?: string;
  task: string[];
  text?: string;
  reference?: string;
  ctx?: string;
  batch?: string;
  threads?: string;
  name?: string;
  force?: boolean;
  endpoint?: string;
  model?: string;
  apiKey?: string;
  numFewshot?: string;
  applyChatTemplate?: boolean;
  fewshotAsMultiturn?: boolean;
  home?: string;
  json?: boolean;
}

function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidRequestError(`--${flag} must be a positive integer, got '${value}'`, { param: flag });
  return number;
}

/**
 * Registers `grove eval REF --task …`: perplexity and bits per byte over a text
 * (llama-perplexity's method), KL divergence against the parent, and lm-evaluation-harness-style
 * task files, measured through llama.cpp's logits and stored per model, task, settings and
 * engine version (reused unless --force). With `--endpoint URL --model NAME`, a task file is
 * scored through any OpenAI-compatible server instead (nothing stored).
 *
 * @example
 * grove eval small:q4 --task perplexity --task kl-divergence
 * grove eval small:chat --task tasks/arith.jsonl --json
 * grove eval --endpoint http://127.0.0.1:8080/v1 --model m --task tasks/arith.jsonl
 */
export function registerEvalCommand(program: Command): void {
  program
    .command("eval")
    .description("measure a model's quality: perplexity, KL divergence to its parent, task files (results stored)")
    .argument("[ref]", "name, digest or unique digest prefix of the model")
    .option("--task <task>", `${BUILT_IN_TASKS.join(", ")}, a task file (.jsonl) or an lm-evaluation-harness task config (.yaml); repeatable`, (value: string, all: string[]) => [...all, value], [] as string[])
    .option("--text <file>", "text for perplexity and KL divergence (default: Grove's built-in corpus)")
    .option("--reference <ref>", "model to measure KL divergence against (default: the parent)")
    .option("--ctx <tokens>", "tokens per chunk, or the context of task requests (default 512 / 2048, at most the model's)")
    .option("--batch <tokens>", "logical batch: batch/ctx chunks evaluated together, as llama-perplexity's -b (default 2048)")
    .option("--threads <n>", "CPU threads (default: every core)")
    .option("--name <task>", "name of the task file's results (default: its file name)")
    .option("--force", "measure again even when a result is stored")
    .option("--num-fewshot <n>", "lm-eval task configs: few-shot examples per document (overrides num_fewshot)")
    .option("--apply-chat-template", "lm-eval task configs: render prompts with the model's chat template")
    .option("--fewshot-as-multiturn [bool]", "with --apply-chat-template: few-shot examples as chat turns (default true; 'false' joins them into one user turn)", (value: string) => !["false", "0", "no"].includes(value.toLowerCase()))
    .option("--endpoint <url>", "score a task file through an OpenAI-compatible server (…/v1) instead")
    .option("--model <name>", "the model name to send to --endpoint")
    .option("--api-key <key>", "bearer key for --endpoint")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print the results as JSON")
    .action(async (ref: string | undefined, flags: EvalFlags) => {
      if (flags.task.length === 0) throw new InvalidRequestError(`Name what to measure with --task (${BUILT_IN_TASKS.join(", ")} or a task file)`, { param: "task" });
      if (flags.endpoint !== undefined) {
        if (flags.model === undefined) throw new InvalidRequestError("--endpoint needs --model NAME", { param: "model" });
        if (ref !== undefined) throw new InvalidRequestError("Give either a store model or --endpoint, not both", { param: "endpoint" });
        const backend = httpBackend(flags.endpoint, flags.model, flags.apiKey);
        const scores: (TaskScore & { task: string })[] = [];
        for (const path of flags.task) {
          if ((BUILT_IN_TASKS as readonly string[]).includes(path)) throw new InvalidRequestError(`${path} needs raw logits: run it on a store model, not through --endpoint`, { param: "task" });
          if (flags.applyChatTemplate) throw new InvalidRequestError("--apply-chat-template needs the model's template: run it on a store model, not through --endpoint", { param: "apply-chat-template" });
          const numFewshot = fewshotFlag(flags.numFewshot);
          const task = isLmEvalConfig(path) ? await readLmEvalTask(path, numFewshot === undefined ? {} : { numFewshot }) : await readTask(path, flags.name);
          if (isLmEvalConfig(path) && flags.name !== undefined) task.name = flags.name;
          scores.push({ task: task.name, ...(await scoreTask(task, backend)) });
        }
        const rows = scores.map((score) => ({
          task: score.task,
          metrics: score.metrics,
          standardErrors: score.items === undefined ? undefined : standardErrorsFromSamples(score.metrics, { unit: "item", values: score.items }),
          flags: score.flags,
          note: flags.endpoint!,
        }));
        process.stdout.write(flags.json ? `${JSON.stringify(scores)}\n` : formatScores(rows));
        return;
      }
      if (ref === undefined) throw new InvalidRequestError("Name the model to evaluate (or use --endpoint)", { param: "ref" });
      const outcomes = await withResults(flags, async (store, results) => {
        const done: EvaluateOutcome[] = [];
        for (const task of flags.task) {
          const outcome = await withProgress(basename(task), { unit: "count" }, (bar) =>
            evaluateModel(store, results, ref, {
              task,
              ...optional({
                text: flags.text,
                reference: flags.reference,
                contextSize: integerFlag(flags.ctx, "ctx"),
                batchSize: integerFlag(flags.batch, "batch"),
                threads: integerFlag(flags.threads, "threads"),
                taskName: flags.name,
                numFewshot: fewshotFlag(flags.numFewshot),
                applyChatTemplate: flags.applyChatTemplate,
                fewshotAsMultiturn: flags.fewshotAsMultiturn,
                onProgress: bar.drawn
                  ? (finished: number, total: number, perplexity?: number) => bar.update(finished, total, perplexity === undefined ? "" : `ppl ${perplexity.toFixed(3)}`)
                  : undefined,
              }),
              force: flags.force === true,
            }),
          );
          done.push(outcome);
        }
        return done;
      });
      if (flags.json) return void process.stdout.write(`${JSON.stringify(outcomes)}\n`);
      process.stdout.write(formatScores(outcomes.map(({ result, reused }) => ({ task: result.task, metrics: result.metrics, standardErrors: result.standardErrors, flags: result.flags, note: describe(result, reused) }))));
    });
}

function fewshotFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 64) throw new InvalidRequestError(`--num-fewshot must be an integer from 0 to 64, got '${value}'`, { param: "num-fewshot" });
  return number;
}

function optional<T extends Record<string, unknown>>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

function describe(result: ResultRecord, reused: boolean): string {
  const settings = Object.entries(result.settings)
    .map(([key, value]) => `${key} ${typeof value === "string" && value.startsWith("sha256:") ? value.slice(0, 19) : String(value)}`)
    .join(", ");
  return `${settings}${reused ? `; stored result from ${result.createdAt.slice(0, 19)}Z, --force to measure again` : ""}`;
}

/** One line per task: its metrics, its flags, where it came from. */
export function formatScores(rows: { task: string; metrics: Record<string, number | null>; standardErrors?: Record<string, number | null> | undefined; flags: string[]; note: string }[]): string {
  const format = (value: number | null): string => (value === null ? "-" : Math.abs(value) >= 100 ? value.toFixed(2) : value.toPrecision(4));
  const table = rows.map((row) => [
    row.task,
    Object.entries(row.metrics)
      // llama-perplexity's per-token error is kept in the result; the per-chunk one is shown as ±.
      .filter(([name]) => !(name === "perplexityError" && typeof row.standardErrors?.perplexity === "number"))
      .map(([name, value]) => `${name} ${format(value)}${typeof row.standardErrors?.[name] === "number" ? ` ±${format(row.standardErrors[name])}` : ""}`)
      .join("  "),
    row.flags.length > 0 ? `FLAGGED: ${row.flags.join(", ")} (not a score)` : "",
    row.note,
  ]);
  return `${renderTable(["TASK", "METRICS", "FLAGS", "SETTINGS"], table)}\n`;
}
