import { renameSync, rmSync } from "node:fs";
import { readFile, rename, rm } from "node:fs/promises";
import { EngineError } from "../../core/errors.js";
import { loadLibllamaFfi, type LibllamaFfi } from "../../native/libllama.js";
import type { LoraSettings } from "./lora.js";

// The only module that trains through libllama (llama.cpp's `llama_opt_*`, as
// examples/training/finetune.cpp does), reached with koffi. Its calls block and a GGML_ASSERT
// aborts the process: it runs in the finetune worker (a child process), never in the server.

const GGML_TYPE_F32 = 0;
const GGML_TYPE_I32 = 26;
const LLAMA_LOAD_MODE_NONE = 0;
const GGML_OPT_OPTIMIZER_ADAMW = 0;

/** llama.cpp pads every context to a multiple of this many tokens. */
export const CONTEXT_GRANULARITY = 256;

/** What one training run does; the worker receives it as JSON. */
export interface TrainArguments {
  /** The model to train: an F32 GGUF (only F32 tensors train in this llama.cpp). */
  model: string;
  /** Where the trained model goes (written under `.partial`, renamed when complete). */
  output: string;
  /** The training tokens: little-endian int32, one stream (records already joined). */
  tokensFile: string;
  /** Training context: tokens per window (also batch and micro-batch, as finetune.cpp's fastest setting). */
  contextSize: number;
  /** Tokens between the starts of consecutive windows. @default half a window, as finetune.cpp */
  stride?: number;
  /** Epochs in all; training runs epochs `startEpoch` … `epochs - 1`. */
  epochs: number;
  startEpoch: number;
  /**
   * Training windows of `startEpoch` already trained (a checkpoint taken mid-epoch): that epoch
   * trains the rest of its windows only. @default 0
   */
  startStep?: number;
  /** AdamW learning rate of the first epoch. */
  learningRate: number;
  /** Learning rate of the last epoch; linear in between. */
  learningRateMin: number;
  /**
   * When set, the rate is scheduled per optimizer step instead of per epoch: a linear warm-up
   * from 0 over this many steps, then a cosine decay to `learningRateMin` at the last step (the
   * usual schedule for training from scratch, where a constant rate on one-window steps diverges).
   */
  warmupSteps?: number;
  weightDecay: number;
  /** Share of windows held out for validation loss, in [0, 1). */
  validationSplit: number;
  threads: number;
  /** Which trainer runs: Grove's ggml graph (every tensor trains) or llama_opt_epoch. @default "llama.cpp" */
  trainer?: "ggml" | "llama.cpp";
  /** Windows per optimizer step (gradient accumulation; ggml trainer only). @default 1 */
  accumulate?: number;
  /**
   * `answers`: only the tokens `lossMaskFile` marks are labels (ggml trainer only; windows holding
   * none are skipped). `all` or absent: every token. @default "all"
   */
  lossOn?: "answers" | "all";
  /** One byte per token of `tokensFile`, 1 where the loss counts the token; absent: every token counts. */
  lossMaskFile?: string;
  /**
   * Train a LoRA adapter instead of the weights (ggml trainer only): `model` stays frozen in its
   * own type, and `output` and `checkpoint` are LoRA adapter GGUFs in llama.cpp's format.
   */
  lora?: LoraSettings;
  /** A LoRA run resumed: the adapter checkpoint A and B start from. */
  adapterCheckpoint?: string;
  /** The base's digest, pinned in the adapter a LoRA run writes. */
  baseDigest?: string;
  /** Where a checkpoint is written after each epoch (for resume), if anywhere. */
  checkpoint?: string;
  /**
   * Also checkpoint mid-epoch, after the first optimizer step this many milliseconds after the
   * last checkpoint (or the start), so a long epoch interrupted loses at most this much work.
   * 0 or absent: after each epoch only.
   */
  checkpointIntervalMs?: number;
}

/** Events the trainer reports, in order. */
export type TrainEvent =
  | { event: "ready"; windows: number; trainWindows: number; validationWindows: number; tokens: number; stepsPerEpoch: number }
  | { event: "step"; epoch: number; step: number; steps: number; loss: number; meanLoss: number; validation: boolean }
  /** `learningRate`: the epoch's rate, or under `warmupSteps` (a per-step schedule) the rate of its last step. */
  | { event: "epoch"; epoch: number; trainLoss: number; validationLoss: number | null; learningRate: number; durationMs: number; tokensPerSecond: number }
  /** `step`: a mid-epoch checkpoint after that many training windows of `epoch`; absent: `epoch` is complete. */
  | { event: "checkpoint"; epoch: number; step?: number; path: string }
  | { event: "saved"; path: string };

/**
 * How many windows of `contextSize` tokens a stream of `tokens` makes at `stride` (default
 * finetune.cpp's half a window; a whole window for pretraining on plenty of text).
 */
export function windowCount(tokens: number, contextSize: number, stride = Math.floor(contextSize / 2)): number {
  return Math.max(0, Math.floor((tokens - contextSize - 1) / stride));
}

/** How a run cuts its token stream: both trainers share it, so they train the same windows. */
export interface WindowPlan {
  /** Tokens per window. */
  n: number;
  stride: number;
  windows: number;
  /** The first `trainWindows` windows train; the rest validate. */
  trainWindows: number;
  /** Training windows of the first epoch already done (a mid-epoch resume). */
  startStep: number;
}

/** @throws EngineError when the stream makes too few windows, or `startStep` lies outside an epoch */
export function planWindows(tokens: number, args: Pick<TrainArguments, "contextSize" | "stride" | "validationSplit" | "startStep">): WindowPlan {
  const n = args.contextSize;
  const stride = args.stride ?? Math.floor(n / 2);
  const windows = windowCount(tokens, n, stride);
  const trainWindows = Math.min(windows, Math.max(1, Math.floor(windows * (1 - args.validationSplit))));
  if (windows < 1 || (args.validationSplit > 0 && windows - trainWindows < 1)) {
    throw new EngineError(`${tokens} training tokens make ${windows} windows of ${n}; too few to train${args.validationSplit > 0 ? " and validate" : ""}`);
  }
  const startStep = args.startStep ?? 0;
  if (!Number.isInteger(startStep) || startStep < 0 || startStep >= trainWindows) {
    throw new EngineError(`startStep ${startStep} is outside the ${trainWindows} training windows of an epoch`);
  }
  return { n, stride, windows, trainWindows, startStep };
}

/**
 * The learning rate of optimizer step `step` (1-based, counted over the whole run of `totalSteps`)
 * under a warm-up of `warmupSteps` and cosine decay to `learningRateMin`.
 */
export function learningRateAtStep(args: Pick<TrainArguments, "learningRate" | "learningRateMin">, warmupSteps: number, step: number, totalSteps: number): number {
  if (step <= warmupSteps) return (args.learningRate * step) / Math.max(1, warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return args.learningRateMin + 0.5 * (args.learningRate - args.learningRateMin) * (1 + Math.cos(Math.PI * progress));
}

/** The learning rate of `epoch`: linear from `learningRate` to `learningRateMin` over the run. */
export function learningRateAt(args: Pick<TrainArguments, "learningRate" | "learningRateMin" | "epochs">, epoch: number): number {
  if (args.epochs <= 1) return args.learningRate;
  return args.learningRate + ((args.learningRateMin - args.learningRate) * epoch) / (args.epochs - 1);
}

type Pointer = unknown;
interface Struct {
  [field: string]: unknown;
}

/**
 * Full fine-tuning of `args.model` on `args.tokensFile` with llama.cpp's optimizer (AdamW), as
 * `examples/training/finetune.cpp` does: windows of `contextSize` tokens at a stride of half a
 * window, labels shifted by one, the last `validationSplit` of the windows held out. Reports
 * every optimizer step; writes a checkpoint after each epoch when asked; saves the result as
 * llama.cpp's saver writes it (its context length is the training context and its metadata
 * llama.cpp's defaults: the caller repackages the tensors). Blocking: run in a worker process.
 *
 * @throws EngineError when llama.cpp cannot load the model or the data is too short
 */
export async function trainWithLibllama(args: TrainArguments, emit: (event: TrainEvent) => void): Promise<void> {
  if (args.lossOn === "answers" && args.lossMaskFile !== undefined) {
    // llama_opt_epoch writes a 1 at labels[token] for every position (no ignore label: a
    // negative one is an out-of-bounds write), between building the graph and evaluating it,
    // with no callback in between; and a zero label row would still not be masked (ggml-train.ts).
    throw new EngineError("llama.cpp's trainer cannot mask labels: the loss on answers only needs the ggml trainer");
  }
  const lib = await loadLibllamaFfi();
  const { koffi, fn } = lib;
  const tokenBytes = await readFile(args.tokensFile);
  const tokens = new Int32Array(tokenBytes.buffer, tokenBytes.byteOffset, Math.floor(tokenBytes.length / 4));

  const modelParams = fn.llama_model_default_params!() as Struct;
  modelParams.load_mode = LLAMA_LOAD_MODE_NONE; // weights in writable buffers, not mmap'd
  const model = fn.llama_model_load_from_file!(args.model, modelParams);
  if (model === null) throw new EngineError(`llama.cpp could not load ${args.model} for training`);
  const vocab = fn.llama_model_get_vocab!(model);
  const vocabularySize = fn.llama_vocab_n_tokens!(vocab) as number;
  for (const token of tokens) {
    if (token < 0 || token >= vocabularySize) throw new EngineError(`The training tokens hold ${token}, outside this model's vocabulary of ${vocabularySize}`);
  }

  const contextParams = fn.llama_context_default_params!() as Struct;
  Object.assign(contextParams, {
    n_ctx: args.contextSize,
    n_batch: args.contextSize,
    n_ubatch: args.contextSize,
    n_seq_max: 1,
    n_threads: args.threads,
    n_threads_batch: args.threads,
    type_k: GGML_TYPE_F32, // OUT_PROD has no F16 kernel
    type_v: GGML_TYPE_F32,
  });
  const ctx = fn.llama_init_from_model!(model, contextParams);
  if (ctx === null) throw new EngineError("llama.cpp could not create a training context");
  const actualContext = fn.llama_n_ctx!(ctx) as number;
  if (actualContext !== args.contextSize) {
    throw new EngineError(`llama.cpp made a context of ${actualContext} tokens, not ${args.contextSize}: the training context must be a multiple of ${CONTEXT_GRANULARITY}`);
  }

  // The thread trap: llama_opt_epoch never hands n_threads to the CPU backend; one decode does.
  const warmup = Int32Array.of(fn.llama_vocab_bos!(vocab) >= 0 ? (fn.llama_vocab_bos!(vocab) as number) : 0);
  if ((fn.llama_decode!(ctx, fn.llama_batch_get_one!(warmup, 1)) as number) !== 0) throw new EngineError("llama.cpp could not run the warm-up decode");
  fn.llama_memory_clear!(fn.llama_get_memory!(ctx), true);

  const { n, stride, windows, trainWindows, startStep } = planWindows(tokens.length, args);
  /** A dataset of the windows from `first` on (llama_opt_epoch always starts at a dataset's first window). */
  const makeDataset = (first: number): Pointer => {
    const count = windows - first;
    const made = fn.ggml_opt_dataset_init!(GGML_TYPE_I32, GGML_TYPE_I32, n, n, count, 1);
    const data = new Int32Array(koffi.view(fn.ggml_get_data!(fn.ggml_opt_dataset_data!(made)), count * n * 4));
    const labels = new Int32Array(koffi.view(fn.ggml_get_data!(fn.ggml_opt_dataset_labels!(made)), count * n * 4));
    for (let index = first; index < windows; index++) {
      data.set(tokens.subarray(index * stride, index * stride + n), (index - first) * n);
      labels.set(tokens.subarray(index * stride + 1, index * stride + 1 + n), (index - first) * n);
    }
    return made;
  };
  const dataset = makeDataset(0);

  // The optimizer reads its parameters through a native callback from a block rewritten per epoch.
  const optimizerBlock = koffi.alloc("ggml_opt_optimizer_params", 1);
  const defaults = fn.ggml_opt_get_default_optimizer_params!(null) as Struct;
  const writeOptimizer = (learningRate: number): void => {
    koffi.encode(optimizerBlock, "ggml_opt_optimizer_params", { ...defaults, adamw_alpha: learningRate, adamw_wd: args.weightDecay, sgd_alpha: learningRate, sgd_wd: args.weightDecay });
  };
  const stepRate = (epochIndex: number, step: number): number =>
    learningRateAtStep(args, args.warmupSteps!, epochIndex * trainWindows + step, args.epochs * trainWindows);
  writeOptimizer(args.warmupSteps === undefined ? learningRateAt(args, args.startEpoch) : stepRate(args.startEpoch, startStep + 1));
  fn.llama_opt_init!(ctx, model, {
    n_ctx_train: 0,
    param_filter: lib.symbol("llama_opt_param_filter_all"),
    param_filter_ud: null,
    get_opt_pars: lib.symbol("ggml_opt_get_constant_optimizer_params"),
    get_opt_pars_ud: optimizerBlock,
    optimizer_type: GGML_OPT_OPTIMIZER_ADAMW,
  });

  const resultTrain = fn.ggml_opt_result_init!();
  const resultEval = fn.ggml_opt_result_init!();
  emit({ event: "ready", windows, trainWindows, validationWindows: windows - trainWindows, tokens: tokens.length, stepsPerEpoch: trainWindows });

  let epoch = args.startEpoch;
  // Training windows of this epoch trained before this call of llama_opt_epoch (a resumed epoch).
  let offset = startStep;
  let previous = { train: 0, validation: 0 };
  const interval = args.checkpointIntervalMs ?? 0;
  let lastCheckpoint = performance.now();
  const onStep = (train: boolean, result: Pointer, ibatch: number, ibatchMax: number): void => {
    const loss = [0];
    fn.ggml_opt_result_loss!(result, loss, [0]);
    const meanLoss = loss[0]!;
    const key = train ? "train" : "validation";
    // The result holds the running mean; the step's own loss is the difference of the sums.
    const stepLoss = meanLoss * ibatch - previous[key] * (ibatch - 1);
    previous[key] = meanLoss;
    const step = train ? offset + ibatch : ibatch;
    const steps = train ? offset + ibatchMax : ibatchMax;
    // Per-step schedule: the block is read again by the next optimizer step.
    if (train && args.warmupSteps !== undefined) writeOptimizer(stepRate(epoch, step + 1));
    emit({ event: "step", epoch, step, steps, loss: stepLoss, meanLoss, validation: !train });
    if (train && interval > 0 && args.checkpoint !== undefined && step < trainWindows && performance.now() - lastCheckpoint >= interval) {
      // Between two optimizer steps the weights are whole: save them (synchronously, inside the callback).
      saveModelSync(fn, model, args.checkpoint);
      lastCheckpoint = performance.now();
      emit({ event: "checkpoint", epoch, step, path: args.checkpoint });
    }
  };
  const callback = koffi.register(
    (train: boolean, _opt: Pointer, _dataset: Pointer, result: Pointer, ibatch: number | bigint, ibatchMax: number | bigint) =>
      onStep(train, result, Number(ibatch), Number(ibatchMax)),
    koffi.pointer(lib.epochCallback),
  );
  try {
    for (; epoch < args.epochs; epoch++) {
      const learningRate = args.warmupSteps === undefined ? learningRateAt(args, epoch) : stepRate(epoch, offset + 1);
      writeOptimizer(learningRate);
      previous = { train: 0, validation: 0 };
      const started = performance.now();
      if (offset > 0) {
        // A resumed epoch: the windows it had not reached, then the validation windows as always.
        const rest = makeDataset(offset);
        try {
          fn.llama_opt_epoch!(ctx, rest, resultTrain, resultEval, trainWindows - offset, callback, callback);
        } finally {
          fn.ggml_opt_dataset_free!(rest);
        }
      } else {
        fn.llama_opt_epoch!(ctx, dataset, resultTrain, resultEval, trainWindows, callback, callback);
      }
      const durationMs = performance.now() - started;
      const trainedWindows = windows - offset;
      offset = 0;
      const trainLoss = [0];
      fn.ggml_opt_result_loss!(resultTrain, trainLoss, [0]);
      let validationLoss: number | null = null;
      if (windows > trainWindows) {
        const value = [0];
        fn.ggml_opt_result_loss!(resultEval, value, [0]);
        validationLoss = value[0]!;
      }
      // Under a per-step schedule the rate the epoch ended at, not its first step's (a warm-up's ~0).
      const endRate = args.warmupSteps === undefined ? learningRate : stepRate(epoch, trainWindows);
      emit({ event: "epoch", epoch, trainLoss: trainLoss[0]!, validationLoss, learningRate: endRate, durationMs, tokensPerSecond: (trainedWindows * n) / (durationMs / 1000) });
      fn.ggml_opt_result_reset!(resultTrain);
      fn.ggml_opt_result_reset!(resultEval);
      if (args.checkpoint !== undefined && epoch < args.epochs - 1) {
        await saveModel(fn, model, args.checkpoint);
        lastCheckpoint = performance.now();
        emit({ event: "checkpoint", epoch, path: args.checkpoint });
      }
    }
  } finally {
    koffi.unregister(callback);
  }
  await saveModel(fn, model, args.output);
  emit({ event: "saved", path: args.output });
  fn.ggml_opt_result_free!(resultTrain);
  fn.ggml_opt_result_free!(resultEval);
  fn.ggml_opt_dataset_free!(dataset);
  fn.llama_free!(ctx);
  fn.llama_model_free!(model);
}

/** {@link saveModel} without awaiting: for the optimizer's callback, which must not yield. */
function saveModelSync(fn: LibllamaFfi["fn"], model: Pointer, path: string): void {
  const partial = `${path}.partial`;
  try {
    fn.llama_model_save_to_file!(model, partial);
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}

/** Saves under `.partial`, then renames: a reader never sees half a file. */
async function saveModel(fn: LibllamaFfi["fn"], model: Pointer, path: string): Promise<void> {
  const partial = `${path}.partial`;
  try {
    fn.llama_model_save_to_file!(model, partial);
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}
