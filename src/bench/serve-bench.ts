/**
 * `npm run bench:serve`: Grove against llama.cpp's llama-server on the same GGUF files.
 *
 * Each server runs alone, as a child process on loopback with the same threads, slots and
 * per-slot context, and is driven over HTTP by the same client code (plain fetch and SSE
 * parsing). Results go to stdout (markdown tables, or JSON with `--json`), progress to
 * stderr; `--write-docs` also replaces the results section of docs/benchmarks.md.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ConfigError, describeErrorChain, GroveError } from "../core/errors.js";
import { benchEnvironment, type BenchEnvironment } from "./bench-environment.js";
import { BENCH_USAGE, parseBenchArguments, type BenchArguments, type BenchServerName } from "./parse-bench-arguments.js";
import { PromptBuilder } from "./prompt-builder.js";
import { metricRows, renderReport, type ModelMeasurements } from "./render-report.js";
import { resolveBenchModels, type BenchModel } from "./resolve-bench-models.js";
import { runScenarios, type ScenarioPlan, type ScenarioResults } from "./run-scenarios.js";
import { ServerProcess } from "./server-process.js";
import { removeTemporaryHomes, startBenchServer, type BenchServerPrograms } from "./start-bench-server.js";
import { countPromptTokens } from "./stream-completion.js";
import { utf8SafeTokenBias } from "./utf8-safe-token-bias.js";
import { writeDocsSection } from "./write-docs-section.js";

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const buildScript = "scripts/build-llama-server.sh";

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/**
 * The llama-server binary: `--llama-server`, else `GROVE_LLAMA_SERVER`, else the build
 * script's output. The bench is a stand-alone tool outside the service's configuration, so
 * it reads its one variable here.
 */
function findLlamaServer(flag: string | undefined): string {
  const fromEnvironment = process.env.GROVE_LLAMA_SERVER || undefined;
  const path = resolve(flag ?? fromEnvironment ?? join(homedir(), ".cache", "grove", "llama.cpp", "build", "bin", "llama-server"));
  const source = flag ? "--llama-server" : fromEnvironment ? "GROVE_LLAMA_SERVER" : "the default location";
  try {
    accessSync(path, constants.X_OK);
    if (statSync(path).isFile()) return path;
  } catch {
    // Reported below with what to do about it.
  }
  throw new ConfigError(
    `llama-server not found at ${path} (${source}). Build it with ${buildScript} ` +
      `(about 15–25 minutes on 2 cores, cached in ~/.cache/grove/llama.cpp), or point ` +
      `GROVE_LLAMA_SERVER / --llama-server at a llama-server binary. ` +
      `To measure Grove alone, pass --servers grove.`,
    { param: flag ? "--llama-server" : "GROVE_LLAMA_SERVER" },
  );
}

/** The command that reproduces this run, for the report. */
function commandLine(argv: readonly string[]): string {
  const words = argv.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`));
  return words.length === 0 ? "npm run bench:serve" : `npm run bench:serve -- ${words.join(" ")}`;
}

/** Runs every server on one model; prompts are calibrated on the first server and reused. */
async function benchModel(model: BenchModel, options: BenchArguments, programs: BenchServerPrograms): Promise<ModelMeasurements> {
  const servers: Partial<Record<BenchServerName, ScenarioResults>> = {};
  const failures: string[] = [];
  const { logitBias, bannedTokens } = await safeBias(model);
  let plan: ScenarioPlan | undefined;
  for (const name of options.servers) {
    progress(`${model.name}: starting ${name}`);
    const started = await startBenchServer(name, model.path, options, programs);
    progress(`${model.name}: ${started.commandLine}`);
    try {
      const { url, model: modelId } = started.server;
      if (!plan) {
        const count = (prompt: string) => countPromptTokens(url, modelId, prompt);
        const shortPrompt = await PromptBuilder.calibrate(options.shortPromptTokens, count);
        const longPrompt = await PromptBuilder.calibrate(options.longPromptTokens, count);
        const burstPrompt = options.burstPromptTokens > 0 ? await PromptBuilder.calibrate(options.burstPromptTokens, count) : undefined;
        progress(`${model.name}: prompts of ${shortPrompt.measuredTokens} and ${longPrompt.measuredTokens} tokens`);
        plan = {
          repeats: options.repeats,
          maxTokens: options.maxTokens,
          shortPrompt,
          longPrompt,
          concurrency: options.concurrency,
          logitBias,
          parallel: options.parallel,
          contextSize: options.contextSize,
          ...(burstPrompt === undefined ? {} : { burstPrompt }),
        };
      }
      servers[name] = await runScenarios({ name: `${model.name} ${name}`, url, model: modelId, ...(started.server.pid === undefined ? {} : { pid: started.server.pid }) }, plan, progress);
    } catch (error) {
      // One server failing (a crash under load) must not lose the others' measurements.
      progress(`${model.name}: ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      await started.stop();
    }
  }
  return { name: model.name, origin: model.origin, path: model.path, bytes: statSync(model.path).size, bannedTokens, servers, failures };
}

/** Grove accepts at most this many `logit_bias` entries (OpenAI's limit too). */
const MAX_BIAS_ENTRIES = 1024;

/** The UTF-8 safety bias of a model, or none when the vocabulary needs more entries than a request may carry. */
async function safeBias(model: BenchModel): Promise<{ logitBias: Record<string, number>; bannedTokens: number }> {
  const { logitBias, bannedTokens } = await utf8SafeTokenBias(model.path);
  if (bannedTokens > MAX_BIAS_ENTRIES) {
    progress(`${model.name}: ${bannedTokens} tokens are partial UTF-8, more than logit_bias may hold: sending no bias`);
    return { logitBias: {}, bannedTokens: 0 };
  }
  if (bannedTokens > 0) progress(`${model.name}: banning ${bannedTokens} partial-UTF-8 tokens with logit_bias on both servers`);
  return { logitBias: { ...logitBias }, bannedTokens };
}

function settingsLine(options: BenchArguments): string {
  return (
    `${options.threads} threads, ${options.parallel} slots × ${options.contextSize} tokens, ` +
    `${options.repeats} repeats after a warm-up, ${options.maxTokens} tokens per decode request ` +
    `(temperature 0, ignore_eos), prompts of ~${options.shortPromptTokens} and ~${options.longPromptTokens} tokens, ` +
    `concurrency ${options.concurrency.join(" and ")}`
  );
}

function markdown(results: ModelMeasurements[], options: BenchArguments, environment: BenchEnvironment, command: string): string {
  const header = [
    `## Grove vs llama-server (${environment.date.slice(0, 10)})`,
    "",
    `- Machine: ${environment.cpu}, ${environment.cores} cores, ${environment.memoryGib} GiB RAM; Node ${environment.node}`,
    `- node-llama-cpp ${environment.nodeLlamaCpp ?? "unknown"}; llama-server from llama.cpp ${environment.llamaCppCommit ?? "unknown"}`,
    `- Settings: ${settingsLine(options)}`,
    `- Command: \`${command}\``,
    "- Ratio = Grove / llama-server: above 1 is better for Grove on ↑ rows, worse on ↓ rows.",
    "",
  ];
  return [...header, ...results.map((result) => renderReport(result, options.concurrency))].join("\n");
}

function json(results: ModelMeasurements[], options: BenchArguments, environment: BenchEnvironment, command: string): string {
  return `${JSON.stringify(
    {
      environment,
      command,
      settings: options,
      models: results.map((result) => ({
        name: result.name,
        origin: result.origin,
        path: result.path,
        bytes: result.bytes,
        bannedTokens: result.bannedTokens,
        rows: metricRows(result, options.concurrency),
        samples: result.servers,
      })),
    },
    // Keep missing values as null, so every row has the same keys.
    (_key, value: unknown) => (value === undefined ? null : value),
    2,
  )}\n`;
}

/**
 * Runs the benchmark with the given arguments (argv without `node` and the script) and
 * resolves to the exit code: 0 on success, 1 on any error, which is printed to stderr.
 */
export async function serveBench(argv: readonly string[]): Promise<number> {
  try {
    const options = parseBenchArguments(argv);
    if (options.help) {
      process.stdout.write(BENCH_USAGE);
      return 0;
    }
    const llamaServer = options.servers.includes("llama-server") || options.servers.includes("grove-ref") ? findLlamaServer(options.llamaServer) : undefined;
    const groveBin = join(repositoryRoot, "bin", "grove.js");
    if (!existsSync(join(repositoryRoot, "dist", "cli", "main.js"))) {
      throw new ConfigError("Grove is not built (dist/cli/main.js is missing): run npm run build");
    }
    const models = await resolveBenchModels({
      presets: options.presets,
      files: options.files,
      cacheDirectory: join(homedir(), ".cache", "grove", "bench-models"),
      groveBin,
      progress,
    });
    const environment = benchEnvironment(repositoryRoot, llamaServer);
    const command = commandLine(argv);
    const programs: BenchServerPrograms = { groveBin, llamaServer, environment: process.env };
    const results: ModelMeasurements[] = [];
    for (const model of models) results.push(await benchModel(model, options, programs));
    const report = markdown(results, options, environment, command);
    process.stdout.write(options.json ? json(results, options, environment, command) : report);
    if (options.writeDocs) {
      const path = join(repositoryRoot, "docs", "benchmarks.md");
      await writeDocsSection(path, report);
      progress(`wrote the results into ${path}`);
    }
    return 0;
  } catch (error) {
    const verbose = argv.includes("--verbose");
    const message = verbose ? describeErrorChain(error) : error instanceof Error ? error.message : String(error);
    process.stderr.write(`${error instanceof GroveError ? `error (${error.code})` : "error"}: ${message}\n`);
    if (verbose && error instanceof Error && !(error instanceof GroveError) && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  } finally {
    ServerProcess.killAll();
    removeTemporaryHomes();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.on("exit", () => {
    ServerProcess.killAll();
    removeTemporaryHomes();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping the servers`);
      ServerProcess.killAll();
      process.exit(130);
    });
  }
  serveBench(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
