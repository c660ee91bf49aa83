// The fine-tune job, run in the job worker process (native/job-host.ts): converts the parent to
// F32 when asked (only F32 tensors train) and trains through Grove's ggml graph or libllama's
// trainer, emitting one event per step. llama.cpp logs to stderr; a GGML_ASSERT aborts the
// process, which the parent reports as a failed job.
import { loadLibllama } from "../quantize/libllama-quantize.js";
import { trainWithGgml } from "./ggml-train.js";
import { trainWithLibllama, type TrainArguments, type TrainEvent } from "./libllama-train.js";

/** The worker's arguments: the training run, and the model to convert to F32 first, if any. */
export interface FinetuneWorkerArguments extends TrainArguments {
  /** A non-F32 parent: converted to F32 at `model` before training. */
  convertFrom?: string;
}

const LLAMA_FTYPE_ALL_F32 = 0;

/** The fine-tune job (run by native/job-worker.ts in a child process): events go out through `emit`. */
export async function run(args: FinetuneWorkerArguments, emit: (event: TrainEvent | { event: "converted" }) => void): Promise<null> {
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
  return null;
}
