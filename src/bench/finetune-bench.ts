// `npm run bench:finetune [-- --preset small --ctx 256 --threads 2 --epochs 3 --repeat 2 --write-docs]`
//
// Fine-tuning speed of `grove finetune` against llama.cpp's own `llama-finetune` (built from the
// source bundled in node-llama-cpp by scripts/build-llama-server.sh, outside the repository) on
// the same generated F32 model, the same text, context, threads and learning rate. Both tools
// window the token stream the same way (n_ctx tokens at a stride of n_ctx/2, 5% held out), so
// each epoch processes the same tokens. Fixed costs (start-up, tokenization, load, save, import)
// are removed by timing whole runs of 1 and of E epochs: tokens/s = (E−1)·windows·ctx / (t_E − t_1).
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CORPUS } from "../forge/generate/corpus.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { windowCount } from "../forge/finetune/libllama-train.js";
import { buildLlamaTools, parseBenchOptions } from "./bench-script.js";
import { median } from "./percentile.js";
import { benchMarkers, writeDocsSection } from "./write-docs-section.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface Options {
  preset: string;
  ctx: number;
  threads: number;
  epochs: number;
  repeat: number;
  copies: number;
  writeDocs: boolean;
}

function parseOptions(argv: string[]): Options {
  return parseBenchOptions<Options>(argv, { preset: "small", ctx: 256, threads: 2, epochs: 3, repeat: 2, copies: 2, writeDocs: false }, "src/bench/finetune-bench.ts", ["preset"]);
}

function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = performance.now();
  const result = spawnSync(command, args, { encoding: "utf8", env, maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}):\n${(result.stderr ?? "").slice(-2000)}`);
  return seconds;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const llamaFinetune = join(buildLlamaTools(ROOT), "llama-finetune");
  const grove = join(ROOT, "bin", "grove.js");

  const work = await mkdtemp(join(tmpdir(), "grove-bench-finetune-"));
  try {
    const model = join(work, "model.gguf");
    const generated = await generateModel({ preset: options.preset, seed: 1, dtype: "f32", outPath: model });
    const text = Array.from({ length: options.copies }, () => CORPUS).join("\n\n");
    await writeFile(join(work, "data.txt"), text);
    await writeFile(join(work, "data.jsonl"), `${JSON.stringify({ text })}\n`);
    const home = join(work, "home");
    const env = { ...process.env, GROVE_HOME: home };
    timed(process.execPath, [grove, "import", model, "--name", "bench:base"], env);

    const common = { lr: "1e-4", valSplit: "0.05" };
    const groveRun = (epochs: number, trainer: "llama.cpp" | "ggml" = "llama.cpp"): number =>
      timed(process.execPath, [grove, "finetune", "bench:base", "--data", join(work, "data.jsonl"), "--trainer", trainer, "--epochs", String(epochs), "--ctx", String(options.ctx), "--threads", String(options.threads), "--lr", common.lr, "--val-split", common.valSplit, "--json"], env);
    const llamaRun = (epochs: number): number =>
      timed(llamaFinetune, ["-m", model, "-f", join(work, "data.txt"), "-c", String(options.ctx), "-b", String(options.ctx), "-ub", String(options.ctx), "-t", String(options.threads), "--epochs", String(epochs), "-lr", common.lr, "-val-split", common.valSplit, "-o", join(work, "llama-out.gguf")]);

    // Grove's token count: its one record is BOS + text + EOS; llama-finetune's stream is BOS + text.
    groveRun(1);
    const tokens = (JSON.parse(spawnSync(process.execPath, [grove, "jobs", "--json"], { encoding: "utf8", env }).stdout) as { parameters: { tokens: number } }[])[0]!.parameters.tokens;
    const windows = { grove: windowCount(tokens, options.ctx), llama: windowCount(tokens - 1, options.ctx) };

    const samples = { grove: [] as number[], llama: [] as number[], ggml: [] as number[] };
    for (let round = 0; round < options.repeat; round++) {
      // Interleaved, so drift of the machine hits both tools alike.
      const llama = llamaRun(options.epochs) - llamaRun(1);
      const groveSeconds = groveRun(options.epochs) - groveRun(1);
      samples.llama.push(((options.epochs - 1) * windows.llama * options.ctx) / llama);
      samples.grove.push(((options.epochs - 1) * windows.grove * options.ctx) / groveSeconds);
      // Grove's own ggml trainer on the same windows: more work per token (every tensor trains).
      const ggmlSeconds = groveRun(options.epochs, "ggml") - groveRun(1, "ggml");
      samples.ggml.push(((options.epochs - 1) * windows.grove * options.ctx) / ggmlSeconds);
      process.stderr.write(`round ${round + 1}: grove ${samples.grove.at(-1)!.toFixed(0)} tokens/s, grove --trainer ggml ${samples.ggml.at(-1)!.toFixed(0)}, llama-finetune ${samples.llama.at(-1)!.toFixed(0)} tokens/s\n`);
    }
    const groveRate = median(samples.grove)!;
    const llamaRate = median(samples.llama)!;
    const ggmlRate = median(samples.ggml)!;
    const command = `npm run bench:finetune -- --preset ${options.preset} --ctx ${options.ctx} --threads ${options.threads} --epochs ${options.epochs} --repeat ${options.repeat} --copies ${options.copies}`;
    const report = [
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} cores), with \`${command}\`.`,
      "",
      `Model: generated \`${options.preset}\` preset, F32, ${generated.parameterCount.toLocaleString("en")} parameters; data: Grove's corpus ×${options.copies} (${tokens} tokens, ${windows.grove} windows of ${options.ctx}); AdamW, lr 1e-4, 5% validation; ${options.threads} threads; median of ${options.repeat} rounds; fixed costs removed by timing ${options.epochs}-epoch and 1-epoch runs.`,
      "",
      "| tool | tokens/s per epoch (train + validation) | ratio |",
      "| --- | ---: | ---: |",
      `| llama.cpp \`llama-finetune\` | ${llamaRate.toFixed(0)} | 1.00 |`,
      `| \`grove finetune --trainer llama.cpp\` (the same llama_opt_epoch) | ${groveRate.toFixed(0)} | ${(groveRate / llamaRate).toFixed(2)} |`,
      `| \`grove finetune --trainer ggml\` (Grove's graph; every tensor trains) | ${ggmlRate.toFixed(0)} | ${(ggmlRate / llamaRate).toFixed(2)} |`,
      "",
      `Rounds: grove ${samples.grove.map((value) => value.toFixed(0)).join(", ")}; grove --trainer ggml ${samples.ggml.map((value) => value.toFixed(0)).join(", ")}; llama-finetune ${samples.llama.map((value) => value.toFixed(0)).join(", ")}.`,
    ].join("\n");
    process.stdout.write(`${report}\n`);
    if (options.writeDocs) await writeDocsSection(join(ROOT, "docs", "benchmarks.md"), report, benchMarkers("finetune"));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
