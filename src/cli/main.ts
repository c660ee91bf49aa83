import { Command, CommanderError } from "commander";
import { describeErrorChain, GroveError } from "../core/errors.js";

type Register = (program: Command) => void;

/**
 * Each module of commands, with the top-level commands it registers, in `grove --help`'s order.
 * Loaded on demand: importing every command's dependencies (the server, the engine, zod's schemas)
 * cost about 0.6 s of CPU before any command ran, the 2–3 s `grove keys create` took on a busy
 * machine; a command now loads only its own module.
 */
const COMMAND_MODULES: readonly (readonly [names: readonly string[], load: () => Promise<Register>])[] = [
  [["serve"], async () => (await import("./commands/serve.js")).registerServeCommand],
  [["run"], async () => (await import("./commands/run.js")).registerRunCommand],
  [["create"], async () => (await import("./commands/create.js")).registerCreateCommand],
  [["inspect"], async () => (await import("./commands/inspect.js")).registerInspectCommand],
  [["diff"], async () => (await import("./commands/diff.js")).registerDiffCommand],
  [["import"], async () => (await import("./commands/import.js")).registerImportCommand],
  [["pull"], async () => (await import("./commands/pull.js")).registerPullCommand],
  [["merge"], async () => (await import("./commands/merge.js")).registerMergeCommand],
  [["quantize"], async () => (await import("./commands/quantize.js")).registerQuantizeCommand],
  [["recipe", "build"], async () => (await import("./commands/recipe.js")).registerRecipeCommands],
  [["finetune", "jobs"], async () => (await import("./commands/finetune.js")).registerFinetuneCommand],
  [["eval"], async () => (await import("./commands/eval.js")).registerEvalCommand],
  [["bench"], async () => (await import("./commands/bench.js")).registerBenchCommand],
  [["plan"], async () => (await import("./commands/plan.js")).registerPlanCommand],
  [["leaderboard", "front"], async () => (await import("./commands/leaderboard.js")).registerLeaderboardCommands],
  [["results"], async () => (await import("./commands/results.js")).registerResultsCommands],
  [["ls", "show", "tree", "tag", "cp", "rm", "gc"], async () => (await import("./commands/store-commands.js")).registerStoreCommands],
  [["ps", "stop"], async () => (await import("./commands/ps.js")).registerPsCommands],
  [["alias", "migrate", "rollback"], async () => (await import("./commands/alias.js")).registerAliasCommands],
  [["keys"], async () => (await import("./commands/keys.js")).registerKeysCommand],
  [["usage", "price"], async () => (await import("./commands/usage.js")).registerUsageCommands],
  [["upstream"], async () => (await import("./commands/upstream.js")).registerUpstreamCommands],
];

/**
 * Builds the `grove` command tree. Every command gets `--help` from commander. With `command`, a
 * top-level command name, only the module holding it is loaded; without it (or for a name no
 * module registers: commander then says it is unknown), every command.
 */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command("grove")
    .description("Grove: open-weight GGUF models as a measured, OpenAI-compatible service")
    .version(process.env.npm_package_version ?? "0.1.0")
    .option("--verbose", "print the cause chain of errors")
    .showHelpAfterError()
    .exitOverride();
  const only = COMMAND_MODULES.find(([names]) => command !== undefined && names.includes(command));
  const registers = await Promise.all((only === undefined ? COMMAND_MODULES : [only]).map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code. The one place CLI errors are caught. */
export async function main(argv: string[]): Promise<number> {
  // The first word that is not an option is the command (the one global option takes no value).
  const program = await buildProgram(argv.slice(2).find((argument) => !argument.startsWith("-")));
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed help/version or the usage error.
      return error.exitCode;
    }
    const verbose = argv.includes("--verbose");
    const message = verbose ? describeErrorChain(error) : error instanceof Error ? error.message : String(error);
    const prefix = error instanceof GroveError ? `error (${error.code})` : "error";
    process.stderr.write(`${prefix}: ${message}\n`);
    if (verbose && error instanceof Error && !(error instanceof GroveError) && error.stack) {
      process.stderr.write(`${error.stack}\n`);
    }
    return 1;
  }
}
