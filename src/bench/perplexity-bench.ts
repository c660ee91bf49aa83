// `npm run bench:perplexity [-- --preset small --dtype f16 --ctx 256 --threads 2 --copies 2 --repeat 3 --write-docs]`
//
// Grove's perplexity (`grove eval --task perplexity`) against llama.cpp's own `llama-perplexity`
// (built from the source bundled in node-llama-cpp by scripts/build-llama-server.sh, outside the
// repository) on the same generated model, text, context, batch and threads: the two values and
// their relative difference, and throughput over the chunk loop (tokens evaluated per second,
// scoring included on both sides: llama-perplexity's time from "calculating perplexity" to
// "Final estimate" in its log). Grove runs twice: on the libllama node-llama-cpp ships (what
// users run) and on the libllama of the same native build llama-perplexity uses, which
// separates what Grove adds from what the binary costs.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CORPUS } from "../forge/generate/corpus.js";
import { generateModel, type GenerateModelDtype } from "../forge/generate/generate-model.js";
import type { PerplexityResult } from "./quality/measure.js";
import { runEvalWorker } from "./quality/run-eval-worker.js";
import { buildLlamaTools, parseBenchOptions } from "./bench-script.js";
import { median } from "./percentile.js";
import { benchMarkers, writeDocsSection } from "./write-docs-section.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface Options {
  preset: string;
  dtype: GenerateModelDtype;
  ctx: number;
  batch: number;
  threads: number;
  copies: number;
  repeat: number;
  writeDocs: boolean;
}

function parseOptions(argv: string[]): Options {
  return parseBenchOptions<Options>(argv, { preset: "small", dtype: "f16", ctx: 256, batch: 2048, threads: 2, copies: 2, repeat: 3, writeDocs: false }, "src/bench/perplexity-bench.ts", ["preset", "dtype"]);
}

/**
 * Seconds from the llama.cpp log timestamp (minutes.seconds.milliseconds.microseconds,
 * `0.00.031.600`) just before `marker` — another message may share the line ("ETA …").
 */
function logSeconds(line: string | undefined, marker: string): number {
  const match = new RegExp(`(\\d+)\\.(\\d{2})\\.(\\d{3})\\.(\\d{3}) I ${marker}`).exec(line ?? "");
  if (match === null) throw new Error(`No timestamp in ${line}`);
  return Number(match[1]) * 60 + Number(match[2]) + Number(match[3]) / 1e3 + Number(match[4]) / 1e6;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const bin = buildLlamaTools(ROOT);
  const work = await mkdtemp(join(tmpdir(), "grove-bench-ppl-"));
  try {
    const model = join(work, "model.gguf");
    const generated = await generateModel({ preset: options.preset, seed: 3, dtype: options.dtype, outPath: model });
    const textFile = join(work, "text.txt");
    await writeFile(textFile, Array.from({ length: options.copies }, () => CORPUS).join("\n\n"));

    const llama = (): { perplexity: number; tokensPerSecond: number; chunks: number } => {
      const run = spawnSync(join(bin, "llama-perplexity"), ["-m", model, "-f", textFile, "-c", String(options.ctx), "-b", String(options.batch), "-t", String(options.threads)], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
      const log = `${run.stdout}${run.stderr}`;
      if (run.status !== 0) throw new Error(`llama-perplexity failed:\n${log.slice(-2000)}`);
      const lines = log.split("\n");
      const start = lines.find((line) => line.includes("calculating perplexity over"));
      const end = lines.find((line) => line.includes("Final estimate: PPL ="));
      const chunks = Number(/over (\d+) chunks/.exec(start ?? "")?.[1]);
      const perplexity = Number(/PPL = ([\d.]+)/.exec(end ?? "")?.[1]);
      return { perplexity, chunks, tokensPerSecond: (chunks * options.ctx) / (logSeconds(end, "Final estimate") - logSeconds(start, "perplexity: calculating")) };
    };
    const grove = (libraryDirectory?: string): Promise<PerplexityResult> =>
      runEvalWorker<PerplexityResult>({ op: "perplexity", model, textFile, contextSize: options.ctx, batchSize: options.batch, threads: options.threads, ...(libraryDirectory === undefined ? {} : { libraryDirectory }) });

    const rounds: { llama: number; shipped: number; native: number }[] = [];
    let values = { llama: 0, shipped: 0, native: 0, chunks: 0 };
    for (let round = 0; round < options.repeat; round++) {
      const reference = llama();
      const shipped = await grove();
      const native = await grove(bin);
      values = { llama: reference.perplexity, shipped: shipped.perplexity, native: native.perplexity, chunks: reference.chunks };
      rounds.push({ llama: reference.tokensPerSecond, shipped: shipped.tokensPerSecond, native: native.tokensPerSecond });
      process.stderr.write(`round ${round + 1}: llama-perplexity ${reference.tokensPerSecond.toFixed(0)} tokens/s, grove (shipped libllama) ${shipped.tokensPerSecond.toFixed(0)}, grove (native libllama) ${native.tokensPerSecond.toFixed(0)}\n`);
    }
    const rate = { llama: median(rounds.map((r) => r.llama))!, shipped: median(rounds.map((r) => r.shipped))!, native: median(rounds.map((r) => r.native))! };
    const difference = (value: number): string => `${(((value - values.llama) / values.llama) * 100).toFixed(4)}%`;
    const command = `npm run bench:perplexity -- --preset ${options.preset} --dtype ${options.dtype} --ctx ${options.ctx} --batch ${options.batch} --threads ${options.threads} --copies ${options.copies} --repeat ${options.repeat}`;
    const report = [
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores), with \`${command}\`.`,
      "",
      `Model: generated \`${options.preset}\` ${options.dtype.toUpperCase()} (${generated.parameterCount.toLocaleString("en")} parameters); text: Grove's corpus ×${options.copies}, ${values.chunks} chunks of ${options.ctx}; batch ${options.batch}; ${options.threads} threads; throughput is the median of ${options.repeat} rounds.`,
      "",
      "| evaluator | perplexity | vs llama-perplexity | tokens/s | ratio |",
      "| --- | ---: | ---: | ---: | ---: |",
      `| llama.cpp \`llama-perplexity\` (native build) | ${values.llama.toFixed(4)} | — | ${rate.llama.toFixed(0)} | 1.00 |`,
      `| \`grove eval\` on node-llama-cpp's libllama (shipped) | ${values.shipped.toFixed(4)} | ${difference(values.shipped)} | ${rate.shipped.toFixed(0)} | ${(rate.shipped / rate.llama).toFixed(2)} |`,
      `| \`grove eval\` on the native build's libllama | ${values.native.toFixed(4)} | ${difference(values.native)} | ${rate.native.toFixed(0)} | ${(rate.native / rate.llama).toFixed(2)} |`,
      "",
      `Rounds (tokens/s, llama / shipped / native): ${rounds.map((r) => `${r.llama.toFixed(0)} / ${r.shipped.toFixed(0)} / ${r.native.toFixed(0)}`).join("; ")}.`,
    ].join("\n");
    process.stdout.write(`${report}\n`);
    if (options.writeDocs) await writeDocsSection(join(ROOT, "docs", "benchmarks.md"), report, benchMarkers("perplexity", `${options.preset} ${options.dtype}`));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
