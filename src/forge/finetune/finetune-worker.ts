// The finetune worker: `node finetune-worker.js ARGS.json`. Converts the parent to F32 when asked
// (only F32 tensors train), trains through Grove's ggml graph or libllama's trainer, and prints one JSON line per event on
// stdout, ending with {"event":"done"} or {"event":"error","error":…}. llama.cpp logs to stderr;
// a GGML_ASSERT aborts the process, which the parent reports as a failed job.
import { readFile } from "node:fs/promises";
import { loadLibllama } from "../quantize/libllama-quantize.js";
import { trainWithGgml } from "./ggml-train.js";
import { trainWithLibllama, type TrainArguments, type TrainEvent } from "./libllama-train.js";

/** The worker's arguments: the training run, and the model to convert to F32 first, if any. */
export interface FinetuneWorkerArguments extends TrainArguments {
  /** A non-F32 parent: converted to F32 at `model` before training. */
  convertFrom?: string;
}

const LLAMA_FTYPE_ALL_F32 = 0;

function emit(event: TrainEvent | { event: "converted" } | { event: "done" } | { event: "error"; error: string }): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

try {
  const args = JSON.parse(await readFile(process.argv[2] ?? "", "utf8")) as FinetuneWorkerArguments;
  if (args.convertFrom !== undefined) {
    const quantizer = await loadLibllama();
    const params = quantizer.defaultParams();
    params.ftype = LLAMA_FTYPE_ALL_F32;
    params.nthread = args.threads;
    params.allow_requantize = true; // a quantized parent is dequantized
    const status = quantizer.quantize(args.convertFrom, args.model, params);
    if (status !== 0) throw new Error(`llama.cpp could not convert ${args.convertFrom} to F32 (status ${status})`);
    emit({ event: "converted" });
  }
  await (args.trainer === "ggml" ? trainWithGgml : trainWithLibllama)(args, emit);
  emit({ event: "done" });
} catch (error) {
  emit({ event: "error", error: (error as Error).message });
  process.exitCode = 1;
}
