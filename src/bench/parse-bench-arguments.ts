import { existsSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { InvalidRequestError } from "../core/errors.js";
import { BENCH_MODEL_PRESETS } from "./resolve-bench-models.js";

/** The servers the bench can drive. */
export const BENCH_SERVERS = ["grove", "grove-ref", "llama-server"] as const;

/** A server the bench can drive. */
export type BenchServerName = (typeof BENCH_SERVERS)[number];

/** The bench's settings, validated. */
export interface BenchArguments {
  /** Generated models to run, by preset name. @default ["small", "llama-1b"] unless `--model` is given */
  readonly presets: readonly string[];
  /** GGUF files to run (`--model`, repeatable), absolute. @default [] */
  readonly files: readonly string[];
  /**
   * Servers to run, in order: `grove` (node-llama-cpp's prebuilt libraries, what users get),
   * `grove-ref` (Grove on the llama-server build's own libraries: the same kernels, so only the
   * loop differs), `llama-server`. @default ["grove", "llama-server"]
   */
  readonly servers: readonly BenchServerName[];
  /** Measured requests per scenario, after one discarded warm-up. @default 5 */
  readonly repeats: number;
  /** CPU threads for both servers (generation and prompt). @default os.availableParallelism() */
  readonly threads: number;
  /** Slots of both servers. @default 8 */
  readonly parallel: number;
  /** Context tokens per slot. @default 1024 */
  readonly contextSize: number;
  /** Tokens generated per request in the decode scenarios. @default 128 */
  readonly maxTokens: number;
  /** Target length of the short prompt, tokens. @default 32 */
  readonly shortPromptTokens: number;
  /** Target length of the long prompt, tokens. @default 480 */
  readonly longPromptTokens: number;
  /** Concurrent stream counts of the aggregate scenarios. @default [4, 8] */
  readonly concurrency: readonly number[];
  /**
   * Prompt tokens of the burst scenario: while all slots but one decode, one prompt this long
   * arrives, and the longest pause of the running streams is measured. 0: not run. @default 0
   */
  readonly burstPromptTokens: number;
  /** llama-server binary from `--llama-server`, if given (else env, else the build script's output). */
  readonly llamaServer: string | undefined;
  /** Print the results as JSON instead of markdown. @default false */
  readonly json: boolean;
  /** Write the results into docs/benchmarks.md. @default false */
  readonly writeDocs: boolean;
  /** Print usage and exit. @default false */
  readonly help: boolean;
}

/** The usage text of `npm run bench:serve -- --help`. */
export const BENCH_USAGE = `Usage: npm run bench:serve -- [options]

Benchmarks Grove against llama.cpp's llama-server on the same GGUF files, one server at a
time, with the same client, and prints metric | Grove | llama-server | ratio per model.

  --models LIST        generated models: ${Object.keys(BENCH_MODEL_PRESETS).join(",")} (default: all, unless --model)
  --model FILE         a GGUF file to run as well (repeatable)
  --servers LIST       grove,grove-ref,llama-server (default grove,llama-server; grove-ref
                       is Grove on the llama-server build's own libraries)
  --repeats N          measured requests per scenario after a warm-up (default 5)
  --threads N          CPU threads for both servers (default: cores)
  --parallel N         slots of both servers (default 8)
  --ctx-size N         context tokens per slot (default 1024)
  --max-tokens N       tokens generated per decode request (default 128)
  --short-prompt N     short prompt length, tokens (default 32)
  --long-prompt N      long prompt length, tokens (default 480)
  --concurrency LIST   concurrent streams of the aggregate scenarios (default 4,8)
  --burst-prompt N     while parallel-1 streams decode, send one prompt of N tokens and
                       report the longest pause of the running streams (default: not run;
                       needs --ctx-size above N)
  --llama-server PATH  llama-server binary (env GROVE_LLAMA_SERVER;
                       default ~/.cache/grove/llama.cpp/build/bin/llama-server)
  --json               print JSON instead of markdown tables
  --write-docs         replace the results section of docs/benchmarks.md
  --verbose            print the cause chain of an error
  --help               print this text
`;

function positiveInteger(flag: string, text: string | undefined, fallback: number, max = 1_000_000): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidRequestError(`${flag} must be a whole number from 1 to ${max}, got '${text}'`, { param: flag });
  }
  return value;
}

function list(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

/**
 * Parses and checks the bench's argv (without `node` and the script). Every problem is an
 * {@link InvalidRequestError} naming the flag.
 *
 * @example parseBenchArguments(["--models", "small", "--repeats", "2"])
 */
export function parseBenchArguments(argv: readonly string[]): BenchArguments {
  let parsed: ReturnType<typeof parseRaw>;
  try {
    parsed = parseRaw(argv);
  } catch (error) {
    throw new InvalidRequestError(`${error instanceof Error ? error.message : String(error)}\n\n${BENCH_USAGE}`, { cause: error });
  }
  const { values } = parsed;
  const files = (values.model ?? []).map((file) => resolve(file));
  for (const file of files) {
    if (!existsSync(file) || !statSync(file).isFile()) {
      throw new InvalidRequestError(`--model ${file}: no such file`, { param: "--model" });
    }
  }
  const presets = list(values.models) ?? (files.length > 0 ? [] : Object.keys(BENCH_MODEL_PRESETS));
  for (const preset of presets) {
    if (!Object.hasOwn(BENCH_MODEL_PRESETS, preset)) {
      throw new InvalidRequestError(
        `--models: unknown model '${preset}'; known: ${Object.keys(BENCH_MODEL_PRESETS).join(", ")} (or pass a file with --model)`,
        { param: "--models" },
      );
    }
  }
  if (presets.length + files.length === 0 && !values.help) {
    throw new InvalidRequestError("No model to run: give --models or --model", { param: "--models" });
  }
  const servers = list(values.servers) ?? ["grove", "llama-server"];
  for (const server of servers) {
    if (!(BENCH_SERVERS as readonly string[]).includes(server)) {
      throw new InvalidRequestError(`--servers: unknown server '${server}'; known: ${BENCH_SERVERS.join(", ")}`, { param: "--servers" });
    }
  }
  if (servers.length === 0) throw new InvalidRequestError("--servers names no server", { param: "--servers" });
  const parallel = positiveInteger("--parallel", values.parallel, 8, 64);
  const contextSize = positiveInteger("--ctx-size", values["ctx-size"], 1024);
  const maxTokens = positiveInteger("--max-tokens", values["max-tokens"], 128);
  const shortPromptTokens = positiveInteger("--short-prompt", values["short-prompt"], 32);
  const longPromptTokens = positiveInteger("--long-prompt", values["long-prompt"], 480);
  const concurrency = (list(values.concurrency) ?? ["4", "8"]).map((text) => positiveInteger("--concurrency", text, 1, parallel));
  // A prompt may grow by a few tokens over its target (calibration is within 5 %), so leave room.
  const margin = (tokens: number) => Math.ceil(tokens * 1.1) + 4;
  if (margin(shortPromptTokens) + maxTokens > contextSize) {
    throw new InvalidRequestError(`--short-prompt + --max-tokens must fit in --ctx-size ${contextSize} with room to spare`, { param: "--max-tokens" });
  }
  if (margin(longPromptTokens) + 1 > contextSize) {
    throw new InvalidRequestError(`--long-prompt must fit in --ctx-size ${contextSize} with room to spare`, { param: "--long-prompt" });
  }
  const burstPromptTokens = values["burst-prompt"] === undefined ? 0 : positiveInteger("--burst-prompt", values["burst-prompt"], 0);
  if (burstPromptTokens > 0 && margin(burstPromptTokens) + 1 > contextSize) {
    throw new InvalidRequestError(`--burst-prompt must fit in --ctx-size ${contextSize} with room to spare`, { param: "--burst-prompt" });
  }
  if (burstPromptTokens > 0 && parallel < 2) throw new InvalidRequestError("--burst-prompt needs --parallel 2 or more (streams beside the prompt)", { param: "--burst-prompt" });
  return Object.freeze({
    presets,
    files,
    servers: [...new Set(servers)] as BenchServerName[],
    repeats: positiveInteger("--repeats", values.repeats, 5, 1000),
    threads: positiveInteger("--threads", values.threads, availableParallelism(), 512),
    parallel,
    contextSize,
    maxTokens,
    shortPromptTokens,
    longPromptTokens,
    concurrency,
    burstPromptTokens,
    llamaServer: values["llama-server"],
    json: values.json ?? false,
    writeDocs: values["write-docs"] ?? false,
    help: values.help ?? false,
  });
}

function parseRaw(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      models: { type: "string" },
      model: { type: "string", multiple: true },
      servers: { type: "string" },
      repeats: { type: "string" },
      threads: { type: "string" },
      parallel: { type: "string" },
      "ctx-size": { type: "string" },
      "max-tokens": { type: "string" },
      "short-prompt": { type: "string" },
      "long-prompt": { type: "string" },
      concurrency: { type: "string" },
      "burst-prompt": { type: "string" },
      "llama-server": { type: "string" },
      json: { type: "boolean" },
      "write-docs": { type: "boolean" },
      help: { type: "boolean" },
      verbose: { type: "boolean" },
    },
  });
}
