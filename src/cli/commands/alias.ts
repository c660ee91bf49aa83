import type { Command } from "commander";
import { taskEvaluator } from "../../bench/quality/evaluate.js";
import { ConflictError, InvalidRequestError } from "../../core/errors.js";
import { DEFAULT_MAX_REGRESSION, formatPercent, formatScore, migrateAlias, type MigrateAliasResult } from "../../results/migration/migrate-alias.js";
import { AliasBook, describeTargets, type AliasView } from "../../store/alias-book.js";
import type { AliasEvent } from "../../store/registry.js";
import { renderTable, shortDigest } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, REGISTRY_DATABASE_FLAG_HELP, withResults, withStore } from "../store-access.js";

interface HomeFlags {
  home?: string;
  database?: string;
  json?: boolean;
}

interface MigrateFlags extends HomeFlags {
  to: string;
  task: string[];
  maxRegression?: string;
  ctx?: string;
  threads?: string;
}

/**
 * Registers `grove alias set|ls|rm|history`, `grove migrate` and `grove rollback`.
 *
 * @example
 * grove alias set chat small:f16=90 small:q8_0=10
 * grove migrate chat --to small:q8_0 --task perplexity --task tasks/qa.jsonl --max-regression 0.02
 * grove rollback chat
 */
export function registerAliasCommands(program: Command): void {
  const alias = program.command("alias").description("served names that route to one or more models by weight (canary rollout)");

  alias
    .command("set")
    .description("create or replace an alias: every request for NAME goes to one of the models, chosen by weight")
    .argument("<name>", "the alias, family[:tag]; may not be a model's name")
    .argument("<models...>", "MODEL[=WEIGHT] (name, digest or prefix; weight > 0, default 1)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the alias as JSON")
    .action(async (name: string, models: string[], flags: HomeFlags) => {
      const specs = models.map((text) => AliasBook.parseTarget(text));
      const { alias: result } = await withStore(flags, (store) => new AliasBook(store).set(name, specs));
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : `${formatAliases([result])}\n`);
    });

  alias
    .command("ls")
    .description("list aliases with their models, weights and shares")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the aliases as JSON")
    .action(async (flags: HomeFlags) => {
      const aliases = await withStore(flags, (store) => new AliasBook(store).list());
      if (flags.json) return void process.stdout.write(`${JSON.stringify(aliases)}\n`);
      process.stdout.write(aliases.length === 0 ? "no aliases\n" : `${formatAliases(aliases)}\n`);
    });

  alias
    .command("rm")
    .description("remove an alias (its history stays: grove rollback restores it)")
    .argument("<name>", "the alias")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .action(async (name: string, flags: HomeFlags) => {
      const event = await withStore(flags, (store) => new AliasBook(store).remove(name));
      process.stdout.write(`removed ${event.alias} (was ${describeTargets(event.from)})\n`);
    });

  alias
    .command("history")
    .description("every change of an alias: sets, removals, migration decisions with scores, rollbacks")
    .argument("<name>", "the alias")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the history as JSON")
    .action(async (name: string, flags: HomeFlags) => {
      const history = await withStore(flags, (store) => new AliasBook(store).history(name));
      process.stdout.write(flags.json ? `${JSON.stringify(history)}\n` : `${formatHistory(history)}\n`);
    });

  program
    .command("migrate")
    .description("move an alias to a candidate model only if it does not regress on the tasks (evaluated, results reused)")
    .argument("<alias>", "the alias to move")
    .requiredOption("--to <ref>", "the candidate model")
    .option("--task <task>", "perplexity or a task file (.jsonl); repeatable, at least one", (value: string, all: string[]) => [...all, value], [] as string[])
    .option("--max-regression <fraction>", `largest regression accepted per task, relative to the current score (default ${DEFAULT_MAX_REGRESSION} = ${formatPercent(DEFAULT_MAX_REGRESSION)})`)
    .option("--ctx <tokens>", "context of the evaluations (default: evaluate's)")
    .option("--threads <n>", "CPU threads of the evaluations (default: every core)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the decision as JSON")
    .action(async (name: string, flags: MigrateFlags) => {
      const maxRegression = flags.maxRegression === undefined ? undefined : Number(flags.maxRegression);
      if (maxRegression !== undefined && (flags.maxRegression!.trim() === "" || !Number.isFinite(maxRegression))) {
        throw new InvalidRequestError(`--max-regression must be a fraction such as 0.02, got '${flags.maxRegression}'`, { param: "max-regression" });
      }
      const evaluate = {
        ...(flags.ctx === undefined ? {} : { contextSize: positiveInteger(flags.ctx, "ctx") }),
        ...(flags.threads === undefined ? {} : { threads: positiveInteger(flags.threads, "threads") }),
      };
      const result = await withResults(flags, async (store, results) => {
        return await migrateAlias(store, {
          alias: name,
          to: flags.to,
          tasks: flags.task,
          ...(maxRegression === undefined ? {} : { maxRegression }),
          evaluate: taskEvaluator(store, results, evaluate),
          onEvaluate: (model, task) => void process.stderr.write(`evaluating the ${model} model on ${task}\n`),
        });
      });
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatMigration(result));
      // The refusal is the command's answer, but scripts need it in the exit status.
      if (!result.switched) throw new ConflictError(`migration of ${result.alias} refused: ${result.reason}`);
    });

  program
    .command("rollback")
    .description("restore the targets an alias had before its last change (set, migration or removal)")
    .argument("<alias>", "the alias")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the history entry as JSON")
    .action(async (name: string, flags: HomeFlags) => {
      const event = await withStore(flags, (store) => new AliasBook(store).rollback(name));
      process.stdout.write(flags.json ? `${JSON.stringify(event)}\n` : `${event.alias}: ${describeTargets(event.from)} → ${describeTargets(event.to)} (${event.reason})\n`);
    });
}

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidRequestError(`--${flag} must be a positive integer, got '${value}'`, { param: flag });
  return number;
}

/** One row per alias target: alias, model, weight, share. */
export function formatAliases(aliases: readonly AliasView[]): string {
  const rows = aliases.flatMap((alias) =>
    alias.targets.map((target, index) => [
      index === 0 ? alias.name : "",
      `${shortDigest(target.digest)}${target.names.length > 0 ? ` (${target.names.join(", ")})` : ""}`,
      String(target.weight),
      `${(target.share * 100).toFixed(1)} %`,
    ]),
  );
  return renderTable(["ALIAS", "MODEL", "WEIGHT", "SHARE"], rows, [false, false, true, true]);
}

/** The comparison table of a migration and its verdict. */
export function formatMigration(result: MigrateAliasResult): string {
  const rows = result.scores.map((score) => [
    score.task,
    `${score.metric} (${score.higherIsBetter ? "higher" : "lower"} is better)`,
    formatScore(score.current),
    formatScore(score.candidate),
    score.regression === null ? "-" : formatPercent(score.regression),
    typeof score.standardError === "number" ? `±${formatScore(score.standardError)}${score.paired ? " paired" : ""}` : "-",
    verdictText(score, result.maxRegression),
  ]);
  const table = renderTable(["TASK", "METRIC", "CURRENT", "CANDIDATE", "REGRESSION", "NOISE (SE)", "VERDICT"], rows, [false, false, true, true, true, true, false]);
  const verdict = result.switched
    ? `switched ${result.alias}: ${shortDigest(result.current)} → ${shortDigest(result.candidate)} (${result.reason})`
    : `refused: ${result.alias} still points at ${shortDigest(result.current)} (${result.reason})`;
  return `current   ${result.current}\ncandidate ${result.candidate}\n${table}\n${verdict}\n`;
}

/** The verdict column: REGRESSED in capitals, a difference within noise never called either way. */
function verdictText(score: MigrateAliasResult["scores"][number], maxRegression: number): string {
  if (score.verdict === undefined) return score.regression !== null && score.regression <= maxRegression + 1e-12 ? "ok" : "REGRESSED";
  if (score.verdict === "regressed" || score.verdict === "no score") return score.verdict === "regressed" ? "REGRESSED" : "NO SCORE";
  if (score.verdict === "within noise") return score.regression !== null && score.regression > maxRegression + 1e-12 ? "within noise (refused: not shown as good)" : "within noise";
  return score.verdict;
}

function formatHistory(history: readonly AliasEvent[]): string {
  const rows = history.map((event) => [
    `#${event.id}`,
    event.at.slice(0, 19).replace("T", " "),
    event.action,
    event.decision,
    describeTargets(event.from),
    describeTargets(event.to),
    event.reason,
    event.scores.map((score) => `${score.task} ${score.metric} ${formatScore(score.current)} → ${formatScore(score.candidate)}`).join("; "),
  ]);
  return renderTable(["ID", "TIME (UTC)", "ACTION", "DECISION", "FROM", "TO", "REASON", "SCORES"], rows);
}
