import { readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { EngineError } from "../../core/errors.js";
import { libllamaDirectory } from "../quantize/libllama-quantize.js";

// The only module that trains through libllama (llama.cpp's `llama_opt_*`, as
// examples/training/finetune.cpp does), reached with koffi. Its calls block and a GGML_ASSERT
// aborts the process: it runs in the finetune worker (a child process), never in the server.

/** Struct sizes of this llama.cpp (node-llama-cpp 3.21.1's libllama); checked at load. */
const STRUCT_SIZES = { llama_model_params: 80, llama_context_params: 160, llama_opt_params: 48, ggml_opt_optimizer_params: 28, llama_batch: 56 } as const;

const GGML_TYPE_F32 = 0;
const GGML_TYPE_I32 = 26;
const LLAMA_LOAD_MODE_NONE = 0;
const GGML_OPT_OPTIMIZER_ADAMW = 0;
const RTLD_NOW = 2;
const RTLD_NOLOAD = 4;

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
  /** Epochs in all; training runs epochs `startEpoch` … `epochs - 1`. */
  epochs: number;
  startEpoch: number;
  /** AdamW learning rate of the first epoch. */
  learningRate: number;
  /** Learning rate of the last epoch; linear in between. */
  learningRateMin: number;
  weightDecay: number;
  /** Share of windows held out for validation loss, in [0, 1). */
  validationSplit: number;
  threads: number;
  /** Where a checkpoint is written after each epoch (for resume), if anywhere. */
  checkpoint?: string;
}

/** Events the trainer reports, in order. */
export type TrainEvent =
  | { event: "ready"; windows: number; trainWindows: number; validationWindows: number; tokens: number; stepsPerEpoch: number }
  | { event: "step"; epoch: number; step: number; steps: number; loss: number; meanLoss: number; validation: boolean }
  | { event: "epoch"; epoch: number; trainLoss: number; validationLoss: number | null; learningRate: number; durationMs: number; tokensPerSecond: number }
  | { event: "checkpoint"; epoch: number; path: string }
  | { event: "saved"; path: string };

/** How many windows of `contextSize` tokens a stream of `tokens` makes with finetune.cpp's stride of half a window. */
export function windowCount(tokens: number, contextSize: number): number {
  const stride = Math.floor(contextSize / 2);
  return Math.max(0, Math.floor((tokens - contextSize - 1) / stride));
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

/* eslint-disable @typescript-eslint/no-explicit-any -- koffi's declared functions are untyped */
interface TrainingLibrary {
  koffi: any;
  fn: Record<string, (...args: any[]) => any>;
  symbol: (name: string) => Pointer;
  epochCallback: any;
}

let library: TrainingLibrary | undefined;

/**
 * Loads libggml-base, libggml and libllama through koffi, declares the training API of this
 * llama.cpp, loads the CPU backend and initialises llama.cpp.
 * @throws EngineError when a library is missing or a struct size differs (another llama.cpp)
 */
export async function loadTrainingLibrary(): Promise<TrainingLibrary> {
  if (library !== undefined) return library;
  const koffi = (await import("koffi")).default;
  const directory = libllamaDirectory();
  const paths = { base: join(directory, "libggml-base.so"), ggml: join(directory, "libggml.v0.4.0.so"), llama: join(directory, "libllama.v0.4.0.so") };
  const load = (path: string): any => {
    try {
      return koffi.load(path);
    } catch (error) {
      throw new EngineError(`Cannot load ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const base = load(paths.base);
  const ggml = load(paths.ggml);
  const llama = load(paths.llama);
  const libc = koffi.load("libc.so.6");

  koffi.struct("llama_model_params", {
    devices: "void *",
    tensor_buft_overrides: "void *",
    n_gpu_layers: "int32_t",
    split_mode: "int32_t",
    load_mode: "int32_t",
    lazy_mode: "int32_t",
    main_gpu: "int32_t",
    tensor_split: "void *",
    progress_callback: "void *",
    progress_callback_user_data: "void *",
    kv_overrides: "void *",
    vocab_only: "bool",
    check_tensors: "bool",
    use_extra_bufts: "bool",
    no_host: "bool",
    no_alloc: "bool",
    load_mtp: "bool",
  });
  koffi.struct("llama_context_params", {
    n_ctx: "uint32_t",
    n_batch: "uint32_t",
    n_ubatch: "uint32_t",
    n_seq_max: "uint32_t",
    n_rs_seq: "uint32_t",
    n_outputs_max: "uint32_t",
    n_outputs_max_per_seq: "uint32_t",
    n_threads: "int32_t",
    n_threads_batch: "int32_t",
    ctx_type: "int32_t",
    rope_scaling_type: "int32_t",
    pooling_type: "int32_t",
    attention_type: "int32_t",
    flash_attn_type: "int32_t",
    rope_freq_base: "float",
    rope_freq_scale: "float",
    yarn_ext_factor: "float",
    yarn_attn_factor: "float",
    yarn_beta_fast: "float",
    yarn_beta_slow: "float",
    yarn_orig_ctx: "uint32_t",
    defrag_thold: "float",
    cb_eval: "void *",
    cb_eval_user_data: "void *",
    type_k: "int32_t",
    type_v: "int32_t",
    abort_callback: "void *",
    abort_callback_data: "void *",
    embeddings: "bool",
    offload_kqv: "bool",
    no_perf: "bool",
    op_offload: "bool",
    swa_full: "bool",
    kv_unified: "bool",
    samplers: "void *",
    n_samplers: "size_t",
    ctx_other: "void *",
  });
  koffi.struct("llama_opt_params", {
    n_ctx_train: "uint32_t",
    param_filter: "void *",
    param_filter_ud: "void *",
    get_opt_pars: "void *",
    get_opt_pars_ud: "void *",
    optimizer_type: "int32_t",
  });
  koffi.struct("ggml_opt_optimizer_params", {
    adamw_alpha: "float",
    adamw_beta1: "float",
    adamw_beta2: "float",
    adamw_eps: "float",
    adamw_wd: "float",
    sgd_alpha: "float",
    sgd_wd: "float",
  });
  koffi.struct("llama_batch", {
    n_tokens: "int32_t",
    token: "void *",
    embd: "void *",
    pos: "void *",
    n_seq_id: "void *",
    seq_id: "void *",
    logits: "void *",
  });
  for (const [name, expected] of Object.entries(STRUCT_SIZES)) {
    const size = koffi.sizeof(name);
    if (size !== expected) throw new EngineError(`${name} is ${size} bytes as declared, expected ${expected}: the struct layout does not match this llama.cpp version`);
  }
  const epochCallback = koffi.proto(
    "void ggml_opt_epoch_callback(bool train, void *opt_ctx, void *dataset, void *result, int64_t ibatch, int64_t ibatch_max, int64_t t_start_us)",
  );

  const fn: Record<string, (...args: any[]) => any> = {
    ggml_backend_load_all_from_path: ggml.func("void ggml_backend_load_all_from_path(const char *dir)"),
    llama_backend_init: llama.func("void llama_backend_init(void)"),
    llama_model_default_params: llama.func("llama_model_params llama_model_default_params(void)"),
    llama_context_default_params: llama.func("llama_context_params llama_context_default_params(void)"),
    llama_model_load_from_file: llama.func("void *llama_model_load_from_file(const char *path, llama_model_params params)"),
    llama_init_from_model: llama.func("void *llama_init_from_model(void *model, llama_context_params params)"),
    llama_n_ctx: llama.func("uint32_t llama_n_ctx(void *ctx)"),
    llama_model_get_vocab: llama.func("void *llama_model_get_vocab(void *model)"),
    llama_vocab_bos: llama.func("int32_t llama_vocab_bos(void *vocab)"),
    llama_vocab_n_tokens: llama.func("int32_t llama_vocab_n_tokens(void *vocab)"),
    llama_batch_get_one: llama.func("llama_batch llama_batch_get_one(_Inout_ int32_t *tokens, int32_t n_tokens)"),
    llama_decode: llama.func("int32_t llama_decode(void *ctx, llama_batch batch)"),
    llama_get_memory: llama.func("void *llama_get_memory(void *ctx)"),
    llama_memory_clear: llama.func("void llama_memory_clear(void *mem, bool data)"),
    llama_opt_init: llama.func("void llama_opt_init(void *ctx, void *model, llama_opt_params params)"),
    llama_opt_epoch: llama.func(
      "void llama_opt_epoch(void *ctx, void *dataset, void *result_train, void *result_eval, int64_t idata_split, ggml_opt_epoch_callback *cb_train, ggml_opt_epoch_callback *cb_eval)",
    ),
    llama_model_save_to_file: llama.func("void llama_model_save_to_file(void *model, const char *path)"),
    llama_free: llama.func("void llama_free(void *ctx)"),
    llama_model_free: llama.func("void llama_model_free(void *model)"),
    ggml_opt_dataset_init: base.func("void *ggml_opt_dataset_init(int32_t type_data, int32_t type_label, int64_t ne_datapoint, int64_t ne_label, int64_t ndata, int64_t ndata_shard)"),
    ggml_opt_dataset_free: base.func("void ggml_opt_dataset_free(void *dataset)"),
    ggml_opt_dataset_data: base.func("void *ggml_opt_dataset_data(void *dataset)"),
    ggml_opt_dataset_labels: base.func("void *ggml_opt_dataset_labels(void *dataset)"),
    ggml_get_data: base.func("void *ggml_get_data(void *tensor)"),
    ggml_opt_result_init: base.func("void *ggml_opt_result_init(void)"),
    ggml_opt_result_reset: base.func("void ggml_opt_result_reset(void *result)"),
    ggml_opt_result_free: base.func("void ggml_opt_result_free(void *result)"),
    ggml_opt_result_ndata: base.func("void ggml_opt_result_ndata(void *result, _Out_ int64_t *ndata)"),
    ggml_opt_result_loss: base.func("void ggml_opt_result_loss(void *result, _Out_ double *loss, _Out_ double *unc)"),
    ggml_opt_get_default_optimizer_params: base.func("ggml_opt_optimizer_params ggml_opt_get_default_optimizer_params(void *userdata)"),
  };
  const dlopen = libc.func("void *dlopen(const char *path, int flags)");
  const dlsym = libc.func("void *dlsym(void *handle, const char *name)");
  const handles = [paths.llama, paths.base].map((path) => dlopen(path, RTLD_NOW | RTLD_NOLOAD));
  const symbol = (name: string): Pointer => {
    for (const handle of handles) {
      if (handle === null) continue;
      const address = dlsym(handle, name);
      if (address !== null) return address;
    }
    throw new EngineError(`libllama does not export ${name}`);
  };
  fn.ggml_backend_load_all_from_path!(directory);
  fn.llama_backend_init!();
  library = { koffi, fn, symbol, epochCallback };
  return library;
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
  const lib = await loadTrainingLibrary();
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

  const n = args.contextSize;
  const stride = Math.floor(n / 2);
  const windows = windowCount(tokens.length, n);
  const trainWindows = Math.min(windows, Math.max(1, Math.floor(windows * (1 - args.validationSplit))));
  if (windows < 1 || (args.validationSplit > 0 && windows - trainWindows < 1)) {
    throw new EngineError(`${tokens.length} training tokens make ${windows} windows of ${n}; too few to train${args.validationSplit > 0 ? " and validate" : ""}`);
  }
  const dataset = fn.ggml_opt_dataset_init!(GGML_TYPE_I32, GGML_TYPE_I32, n, n, windows, 1);
  const data = new Int32Array(koffi.view(fn.ggml_get_data!(fn.ggml_opt_dataset_data!(dataset)), windows * n * 4));
  const labels = new Int32Array(koffi.view(fn.ggml_get_data!(fn.ggml_opt_dataset_labels!(dataset)), windows * n * 4));
  for (let index = 0; index < windows; index++) {
    data.set(tokens.subarray(index * stride, index * stride + n), index * n);
    labels.set(tokens.subarray(index * stride + 1, index * stride + 1 + n), index * n);
  }

  // The optimizer reads its parameters through a native callback from a block rewritten per epoch.
  const optimizerBlock = koffi.alloc("ggml_opt_optimizer_params", 1);
  const defaults = fn.ggml_opt_get_default_optimizer_params!(null) as Struct;
  const writeOptimizer = (learningRate: number): void => {
    koffi.encode(optimizerBlock, "ggml_opt_optimizer_params", { ...defaults, adamw_alpha: learningRate, adamw_wd: args.weightDecay, sgd_alpha: learningRate, sgd_wd: args.weightDecay });
  };
  writeOptimizer(learningRateAt(args, args.startEpoch));
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
  let previous = { train: 0, validation: 0 };
  const onStep = (train: boolean, result: Pointer, step: number, steps: number): void => {
    const loss = [0];
    fn.ggml_opt_result_loss!(result, loss, [0]);
    const meanLoss = loss[0]!;
    const key = train ? "train" : "validation";
    // The result holds the running mean; the step's own loss is the difference of the sums.
    const stepLoss = meanLoss * step - previous[key] * (step - 1);
    previous[key] = meanLoss;
    emit({ event: "step", epoch, step, steps, loss: stepLoss, meanLoss, validation: !train });
  };
  const callback = koffi.register(
    (train: boolean, _opt: Pointer, _dataset: Pointer, result: Pointer, ibatch: number | bigint, ibatchMax: number | bigint) =>
      onStep(train, result, Number(ibatch), Number(ibatchMax)),
    koffi.pointer(lib.epochCallback),
  );
  try {
    for (; epoch < args.epochs; epoch++) {
      const learningRate = learningRateAt(args, epoch);
      writeOptimizer(learningRate);
      previous = { train: 0, validation: 0 };
      const started = performance.now();
      fn.llama_opt_epoch!(ctx, dataset, resultTrain, resultEval, trainWindows, callback, callback);
      const durationMs = performance.now() - started;
      const trainLoss = [0];
      fn.ggml_opt_result_loss!(resultTrain, trainLoss, [0]);
      let validationLoss: number | null = null;
      if (windows > trainWindows) {
        const value = [0];
        fn.ggml_opt_result_loss!(resultEval, value, [0]);
        validationLoss = value[0]!;
      }
      emit({ event: "epoch", epoch, trainLoss: trainLoss[0]!, validationLoss, learningRate, durationMs, tokensPerSecond: (windows * n) / (durationMs / 1000) });
      fn.ggml_opt_result_reset!(resultTrain);
      fn.ggml_opt_result_reset!(resultEval);
      if (args.checkpoint !== undefined && epoch < args.epochs - 1) {
        await saveModel(fn, model, args.checkpoint);
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

/** Saves under `.partial`, then renames: a reader never sees half a file. */
async function saveModel(fn: TrainingLibrary["fn"], model: Pointer, path: string): Promise<void> {
  const partial = `${path}.partial`;
  try {
    fn.llama_model_save_to_file!(model, partial);
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}
