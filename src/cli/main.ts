import { Command, CommanderError } from "commander";
import { describeErrorChain, GroveError } from "../core/errors.js";
import { registerAliasCommands } from "./commands/alias.js";
import { registerCreateCommand } from "./commands/create.js";
import { registerDiffCommand } from "./commands/diff.js";
import { registerBenchCommand } from "./commands/bench.js";
import { registerEvalCommand } from "./commands/eval.js";
import { registerPlanCommand } from "./commands/plan.js";
import { registerFinetuneCommand } from "./commands/finetune.js";
import { registerImportCommand } from "./commands/import.js";
import { registerInspectCommand } from "./commands/inspect.js";
import { registerKeysCommand } from "./commands/keys.js";
import { registerLeaderboardCommands } from "./commands/leaderboard.js";
import { registerResultsCommands } from "./commands/results.js";
import { registerMergeCommand } from "./commands/merge.js";
import { registerPsCommands } from "./commands/ps.js";
import { registerPullCommand } from "./commands/pull.js";
import { registerQuantizeCommand } from "./commands/quantize.js";
import { registerRecipeCommands } from "./commands/recipe.js";
import { registerRunCommand } from "./commands/run.js";
import { registerServeCommand } from "./commands/serve.js";
import { registerStoreCommands } from "./commands/store-commands.js";
import { registerUsageCommands } from "./commands/usage.js";
import { registerUpstreamCommands } from "./commands/upstream.js";

/** Builds the `grove` command tree. Every command gets `--help` from commander. */
export function buildProgram(): Command {
  const program = new Command("grove")
    .description("Grove: open-weight GGUF models as a measured, OpenAI-compatible service")
    .version(process.env.npm_package_version ?? "0.1.0")
    .option("--verbose", "print the cause chain of errors")
    .showHelpAfterError()
    .exitOverride();
  registerServeCommand(program);
  registerRunCommand(program);
  registerCreateCommand(program);
  registerInspectCommand(program);
  registerDiffCommand(program);
  registerImportCommand(program);
  registerPullCommand(program);
  registerMergeCommand(program);
  registerQuantizeCommand(program);
  registerRecipeCommands(program);
  registerFinetuneCommand(program);
  registerEvalCommand(program);
  registerBenchCommand(program);
  registerPlanCommand(program);
  registerLeaderboardCommands(program);
  registerResultsCommands(program);
  registerStoreCommands(program);
  registerPsCommands(program);
  registerAliasCommands(program);
  registerKeysCommand(program);
  registerUsageCommands(program);
  registerUpstreamCommands(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code. The one place CLI errors are caught. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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
