/**
 * `npm run bench:kernels -- --model FILE [--threads N] [--repeats N]`: how fast llama.cpp's own
 * kernels run a model in each set of libraries, with no server in the way — Grove's decode loop
 * called directly (prompt of 512 tokens, then 128 tokens decoded one at a time, as llama-bench's
 * `pp512` and `tg128`) on node-llama-cpp's prebuilt libraries and on the reference build's, and
 * `llama-bench` itself from the reference build. Where the prebuilt libraries are slower here, the
 * difference is the binary's, not Grove's. Each library set runs in its own child process (a
 * process loads one set).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { benchEnvironment } from "./bench-environment.js";
import { median } from "./percentile.js";

const PROMPT_TOKENS = 512;
const DECODE_TOKENS = 128;

interface KernelSample {
  readonly promptTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
}

/** One measurement in this process, on the libraries of `directory` (undefined: prebuilt). */
async function measure(model: string, threads: number, directory: string | undefined): Promise<KernelSample> {
  const { NativeContext, NativeModel } = await import("../native/native-model.js");
  const loaded = await NativeModel.load(model, { mmap: false, ...(directory === undefined ? {} : { libraryDirectory: directory }) });
  const context = NativeContext.create(loaded, { sequences: 1, contextSize: PROMPT_TOKENS + DECODE_TOKENS + 16, batchSize: PROMPT_TOKENS, ubatchSize: PROMPT_TOKENS, threads, threadpoolPoll: 50 });
  try {
    const token = loaded.bos >= 0 ? loaded.bos : 1;
    // One warm-up decode, as llama-bench does.
    context.clearBatch();
    context.add(token, 0, 0, true);
    context.decode();
    context.clear();
    const promptStart = performance.now();
    context.clearBatch();
    for (let position = 0; position < PROMPT_TOKENS; position++) context.add(token, position, 0, position === PROMPT_TOKENS - 1);
    if (context.decode() !== 0) throw new Error("the prompt decode failed");
    const promptMs = performance.now() - promptStart;
    context.clear();
    const decodeStart = performance.now();
    for (let position = 0; position < DECODE_TOKENS; position++) {
      context.clearBatch();
      context.add(token, position, 0, true);
      if (context.decode() !== 0) throw new Error("a decode failed");
    }
    const decodeMs = performance.now() - decodeStart;
    return { promptTokensPerSecond: (PROMPT_TOKENS * 1000) / promptMs, decodeTokensPerSecond: (DECODE_TOKENS * 1000) / decodeMs };
  } finally {
    context.free();
    loaded.free();
  }
}

/** `llama-bench`'s pp512 and tg128 for the model, or undefined when it is not built. */
function llamaBench(binary: string, model: string, threads: number, repeats: number): KernelSample | undefined {
  if (!existsSync(binary)) return undefined;
  const output = execFileSync(binary, ["-m", model, "-t", String(threads), "-p", String(PROMPT_TOKENS), "-n", String(DECODE_TOKENS), "-r", String(repeats), "-o", "json"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const rows = JSON.parse(output) as { n_prompt: number; n_gen: number; avg_ts: number }[];
  const prompt = rows.find((row) => row.n_prompt > 0 && row.n_gen === 0);
  const decode = rows.find((row) => row.n_gen > 0 && row.n_prompt === 0);
  if (prompt === undefined || decode === undefined) return undefined;
  return { promptTokensPerSecond: prompt.avg_ts, decodeTokensPerSecond: decode.avg_ts };
}

/** Runs {@link measure} in a child process (one library set per process). */
function measureInChild(model: string, threads: number, directory: string | undefined): KernelSample {
  const script = fileURLToPath(import.meta.url);
  const result = spawnSync(process.execPath, [script, "--child", "--model", model, "--threads", String(threads), ...(directory === undefined ? [] : ["--libllama-dir", directory])], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`the measurement failed: ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!) as KernelSample;
}

const HELP = `Usage: npm run bench:kernels -- --model FILE [options]

Times llama.cpp's kernels with no server in the way: Grove's decode loop on node-llama-cpp's
prebuilt libraries, the same loop on the reference build's libraries, and llama-bench itself
(pp${PROMPT_TOKENS} and tg${DECODE_TOKENS}, tokens per second, median of the repeats).

  --model FILE         a GGUF file (repeatable; required)
  --threads N          CPU threads (default 1)
  --repeats N          measurements per library set (default 3)
  --llama-bench PATH   llama-bench binary (default ~/.cache/grove/llama.cpp/build/bin/llama-bench)
  --libllama-dir DIR   the reference libraries (default: llama-bench's folder)
  --help               print this text
`;

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} must be a whole number of 1 or more, not "${text}"`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", multiple: true },
      threads: { type: "string" },
      repeats: { type: "string" },
      "llama-bench": { type: "string" },
      "libllama-dir": { type: "string" },
      child: { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const threads = positiveInteger("--threads", values.threads ?? "1");
  if (values.child) {
    process.stdout.write(`${JSON.stringify(await measure(values.model![0]!, threads, values["libllama-dir"]))}\n`);
    return;
  }
  const models = (values.model ?? []).map((model) => resolve(model));
  if (models.length === 0) throw new Error("Name a model: --model FILE (repeatable)");
  const repeats = positiveInteger("--repeats", values.repeats ?? "3");
  const llamaBenchBinary = values["llama-bench"] ?? join(homedir(), ".cache", "grove", "llama.cpp", "build", "bin", "llama-bench");
  const reference = values["libllama-dir"] ?? dirname(llamaBenchBinary);
  const environment = benchEnvironment(resolve(dirname(fileURLToPath(import.meta.url)), "..", ".."), llamaBenchBinary);
  const lines = [
    `## llama.cpp's kernels in each library set (${environment.date.slice(0, 10)})`,
    "",
    `- Machine: ${environment.cpu}, ${environment.cores} cores; ${threads} thread${threads === 1 ? "" : "s"}; median of ${repeats}`,
    `- Command: \`npm run bench:kernels -- ${process.argv.slice(2).join(" ")}\``,
    `- pp${PROMPT_TOKENS}: one ${PROMPT_TOKENS}-token prompt decoded at once; tg${DECODE_TOKENS}: ${DECODE_TOKENS} tokens decoded one at a time (tok/s). No server, no sampling.`,
    "",
    `| model | prebuilt (Grove's loop) pp${PROMPT_TOKENS} | tg${DECODE_TOKENS} | reference build (Grove's loop) pp${PROMPT_TOKENS} | tg${DECODE_TOKENS} | llama-bench (reference) pp${PROMPT_TOKENS} | tg${DECODE_TOKENS} |`,
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const model of models) {
    process.stderr.write(`[kernels] ${model}\n`);
    const prebuilt = Array.from({ length: repeats }, () => measureInChild(model, threads, undefined));
    const built = existsSync(reference) ? Array.from({ length: repeats }, () => measureInChild(model, threads, reference)) : [];
    const bench = llamaBench(llamaBenchBinary, model, threads, repeats);
    const cell = (samples: KernelSample[], key: keyof KernelSample) => (samples.length === 0 ? "—" : median(samples.map((sample) => sample[key]))!.toFixed(1));
    lines.push(
      `| ${model.split("/").at(-1)} | ${cell(prebuilt, "promptTokensPerSecond")} | ${cell(prebuilt, "decodeTokensPerSecond")} | ${cell(built, "promptTokensPerSecond")} | ${cell(built, "decodeTokensPerSecond")} | ${bench?.promptTokensPerSecond.toFixed(1) ?? "—"} | ${bench?.decodeTokensPerSecond.toFixed(1) ?? "—"} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
