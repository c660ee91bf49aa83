// Peak memory and speed of a LoRA fine-tune (docs/benchmarks.md, "LoRA fine-tuning"): runs Grove's
// ggml trainer with LoRA on MODEL in this process and prints VmRSS/VmHWM (MiB) with every event.
// Usage: node scripts/bench-lora-memory.mjs MODEL.gguf [windows=4] [threads=2]
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trainWithGgml } from "../dist/forge/finetune/ggml-train.js";

const [, , model, windows = "4", threads = "2"] = process.argv;
if (model === undefined) throw new Error("usage: node scripts/bench-lora-memory.mjs MODEL.gguf [windows] [threads]");
const memory = () =>
  Object.fromEntries(
    readFileSync("/proc/self/status", "utf8")
      .split("\n")
      .filter((line) => /^Vm(RSS|HWM)/.test(line))
      .map((line) => [line.split(":")[0], Math.round(parseInt(line.split(/:\s+/)[1], 10) / 1024)]),
  );
const contextSize = 256;
const stride = 128;
// Speed and memory depend on the shape, not on the token values: a fixed pseudo-random stream.
const tokens = Int32Array.from({ length: contextSize + stride * Number(windows) + 11 }, (_, index) => (index * 7919 + 13) % 32000);
const tokensFile = join(tmpdir(), `grove-lora-bench-${process.pid}.bin`);
writeFileSync(tokensFile, Buffer.from(tokens.buffer));
console.log(JSON.stringify({ phase: "start", fileMiB: Math.round(statSync(model).size / 2 ** 20), ...memory() }));
const started = performance.now();
await trainWithGgml(
  {
    model,
    output: join(tmpdir(), `grove-lora-bench-${process.pid}.gguf`),
    tokensFile,
    contextSize,
    stride,
    epochs: 1,
    startEpoch: 0,
    learningRate: 1e-4,
    learningRateMin: 1e-4,
    weightDecay: 0,
    validationSplit: 0,
    threads: Number(threads),
    trainer: "ggml",
    lora: { rank: 8, alpha: 16, dropout: 0.05, targets: ["q", "k", "v", "o", "gate", "up", "down"] },
  },
  (event) => console.log(JSON.stringify({ ...event, seconds: ((performance.now() - started) / 1000).toFixed(1), ...memory() })),
);
console.log(JSON.stringify({ phase: "end", ...memory() }));
