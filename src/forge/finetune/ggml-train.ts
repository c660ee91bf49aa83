// biome-ignore-all lint/suspicious/noExplicitAny: koffi's declared functions are untyped
import { closeSync, copyFileSync, existsSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { EngineError } from "../../core/errors.js";
import { libllamaDirectory, loadLibllamaFfi } from "../../native/libllama.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout, type ValidatedTensor } from "../../gguf/gguf-tensor-layout.js";
import { ggmlTypeByName } from "../../gguf/ggml-types.js";
import { GGML_TRAIN_ARCHITECTURES, ggmlTrainArchitecture } from "./ggml-train-architectures.js";
import type { Ggml, Shape } from "./ggml-graph-types.js";
import { learningRateAt, learningRateAtStep, planWindows, type TrainArguments, type TrainEvent } from "./libllama-train.js";
import { frozenTypeProblem, writeLoraAdapter } from "./lora.js";
import { createLoraTensors } from "./lora-tensors.js";
import { readLossMask } from "./loss-mask.js";

// Grove's own training graph: the Llama architecture written with ggml's operators and trained
// with ggml's optimizer (ggml-opt, AdamW), through the libggml that node-llama-cpp ships. It
// exists because llama.cpp's trainer (`llama_opt_epoch`) runs the model's inference graph, whose
// keys and values pass through the KV cache: that write has no backward pass, so `attn_k` and
// `attn_v` never train, and `token_embd` is left out of the parameters (a FIXME in
// `llama_opt_init`). Here attention reads K and V straight from the projections and the
// embeddings are a `get_rows` with a backward pass, so every tensor trains. The forward pass is
// the same arithmetic as llama.cpp's `llm_build_llama` (RMS norm, RoPE "normal" mode, causal
// softmax attention, SwiGLU), so a model trained here serves unchanged through llama.cpp. Other
// architectures (Qwen2, Qwen3) are this graph with the differences ggml-train-architectures.ts names.

const GGML_TYPE_F32 = 0;
const GGML_TYPE_I32 = 26;
const GGML_BACKEND_DEVICE_TYPE_CPU = 0;
const GGML_OPT_LOSS_TYPE_CROSS_ENTROPY = 2;
const GGML_OPT_BUILD_TYPE_OPT = 30;
const GGML_OPT_OPTIMIZER_TYPE_ADAMW = 0;
/** Llama 3's per-frequency RoPE factors (llama.cpp's `rope_freqs`, passed to every RoPE). */
const ROPE_FACTORS = "rope_freqs.weight";
/** ggml's GGML_DEFAULT_GRAPH_SIZE: ggml_opt_init builds the static forward graph at this size. */
const GRAPH_SIZE = 2048;
/**
 * Nodes of a LoRA run's graph (forward, backward and optimizer): each adapted projection adds
 * about 17, so a 16-block model adapted everywhere needs ~3,300 — past the static graph's 2,048.
 * A LoRA run therefore builds its graph per step at this size (ggml-opt's non-static mode, as
 * llama.cpp's own trainer does).
 */
const LORA_GRAPH_SIZE = 16384;

type Pointer = unknown;

let declared: { koffi: any; g: Ggml; fn: Record<string, (...args: any[]) => any>; symbol: (name: string) => unknown } | undefined;

/** Declares the ggml functions the graph needs (once per process). */
async function loadGgml(): Promise<NonNullable<typeof declared>> {
  if (declared !== undefined) return declared;
  const ffi = await loadLibllamaFfi();
  const { koffi } = ffi;
  const directory = libllamaDirectory();
  const versioned = join(directory, "libggml.v0.4.0.so");
  const base = koffi.load(join(directory, "libggml-base.so"));
  const registry = koffi.load(existsSync(versioned) ? versioned : join(directory, "libggml.so"));
  koffi.struct("ggml_init_params", { mem_size: "size_t", mem_buffer: "void *", no_alloc: "bool" });
  koffi.struct("ggml_opt_params", {
    backend_sched: "void *",
    ctx_compute: "void *",
    inputs: "void *",
    outputs: "void *",
    loss_type: "int32_t",
    build_type: "int32_t",
    opt_period: "int32_t",
    get_opt_pars: "void *",
    get_opt_pars_ud: "void *",
    optimizer: "int32_t",
  });
  const op2 = (name: string): [string, (...args: any[]) => any] => [name, base.func(`void *${name}(void *ctx, void *a, void *b)`)];
  const op1 = (name: string): [string, (...args: any[]) => any] => [name, base.func(`void *${name}(void *ctx, void *a)`)];
  const g: Ggml = Object.fromEntries([
    ["ggml_init", base.func("void *ggml_init(ggml_init_params params)")],
    ["ggml_free", base.func("void ggml_free(void *ctx)")],
    ["ggml_new_tensor_1d", base.func("void *ggml_new_tensor_1d(void *ctx, int32_t type, int64_t ne0)")],
    ["ggml_new_tensor_2d", base.func("void *ggml_new_tensor_2d(void *ctx, int32_t type, int64_t ne0, int64_t ne1)")],
    ["ggml_set_name", base.func("void *ggml_set_name(void *tensor, const char *name)")],
    ["ggml_set_param", base.func("void ggml_set_param(void *tensor)")],
    ["ggml_set_input", base.func("void ggml_set_input(void *tensor)")],
    ["ggml_set_output", base.func("void ggml_set_output(void *tensor)")],
    op2("ggml_get_rows"),
    op2("ggml_mul"),
    op2("ggml_add"),
    op2("ggml_mul_mat"),
    op1("ggml_cont"),
    op1("ggml_transpose"),
    op1("ggml_silu"),
    ["ggml_rms_norm", base.func("void *ggml_rms_norm(void *ctx, void *a, float eps)")],
    ["ggml_scale", base.func("void *ggml_scale(void *ctx, void *a, float s)")],
    ["ggml_reshape_2d", base.func("void *ggml_reshape_2d(void *ctx, void *a, int64_t ne0, int64_t ne1)")],
    ["ggml_reshape_3d", base.func("void *ggml_reshape_3d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2)")],
    ["ggml_permute", base.func("void *ggml_permute(void *ctx, void *a, int axis0, int axis1, int axis2, int axis3)")],
    [
      "ggml_rope_ext",
      base.func(
        "void *ggml_rope_ext(void *ctx, void *a, void *b, void *c, int n_dims, int mode, int n_ctx_orig, float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow)",
      ),
    ],
    ["ggml_soft_max_ext", base.func("void *ggml_soft_max_ext(void *ctx, void *a, void *mask, float scale, float max_bias)")],
    ["ggml_tensor_overhead", base.func("size_t ggml_tensor_overhead(void)")],
    ["ggml_graph_overhead_custom", base.func("size_t ggml_graph_overhead_custom(size_t size, bool grads)")],
    ["ggml_backend_alloc_ctx_tensors", base.func("void *ggml_backend_alloc_ctx_tensors(void *ctx, void *backend)")],
    ["ggml_backend_buffer_free", base.func("void ggml_backend_buffer_free(void *buffer)")],
    ["ggml_backend_tensor_set", base.func("void ggml_backend_tensor_set(void *tensor, void *data, size_t offset, size_t size)")],
    ["ggml_backend_tensor_get", base.func("void ggml_backend_tensor_get(void *tensor, _Out_ void *data, size_t offset, size_t size)")],
    ["ggml_backend_free", base.func("void ggml_backend_free(void *backend)")],
    ["ggml_backend_dev_backend_reg", base.func("void *ggml_backend_dev_backend_reg(void *device)")],
    ["ggml_backend_reg_get_proc_address", base.func("void *ggml_backend_reg_get_proc_address(void *reg, const char *name)")],
    ["ggml_backend_sched_new", base.func("void *ggml_backend_sched_new(void **backends, void **bufts, int n_backends, size_t graph_size, bool parallel, bool op_offload)")],
    ["ggml_backend_sched_free", base.func("void ggml_backend_sched_free(void *sched)")],
    ["ggml_opt_init", base.func("void *ggml_opt_init(ggml_opt_params params)")],
    ["ggml_opt_free", base.func("void ggml_opt_free(void *opt)")],
    ["ggml_opt_alloc", base.func("void ggml_opt_alloc(void *opt, bool backward)")],
    ["ggml_opt_eval", base.func("void ggml_opt_eval(void *opt, void *result)")],
    ["ggml_opt_labels", base.func("void *ggml_opt_labels(void *opt)")],
    ["ggml_opt_reset", base.func("void ggml_opt_reset(void *opt, bool optimizer)")],
    ["ggml_opt_prepare_alloc", base.func("void ggml_opt_prepare_alloc(void *opt, void *ctx, void *graph, void *inputs, void *outputs)")],
    ["ggml_new_graph_custom", base.func("void *ggml_new_graph_custom(void *ctx, size_t size, bool grads)")],
    ["ggml_build_forward_expand", base.func("void ggml_build_forward_expand(void *graph, void *tensor)")],
    ["ggml_backend_dev_by_type", registry.func("void *ggml_backend_dev_by_type(int type)")],
    ["ggml_backend_dev_init", base.func("void *ggml_backend_dev_init(void *device, const char *params)")],
  ]);
  koffi.proto("void grove_ggml_set_n_threads(void *backend, int n_threads)");
  declared = { koffi, g, fn: ffi.fn, symbol: ffi.symbol };
  return declared;
}

function readShape(metadata: Map<string, { value: unknown }>, tensors: Map<string, ValidatedTensor>, file: string, lora: boolean): Shape {
  const named = metadata.get("general.architecture")?.value;
  const architecture = ggmlTrainArchitecture(named);
  if (architecture === undefined) throw new EngineError(`Grove's trainer knows the ${GGML_TRAIN_ARCHITECTURES.join(", ")} architectures; ${file} is ${String(named)}`);
  const number = (key: string, fallback?: number): number => {
    const value = metadata.get(`${architecture.name}.${key}`)?.value;
    if (value === undefined) {
      if (fallback !== undefined) return fallback;
      throw new EngineError(`${file} has no ${architecture.name}.${key}`);
    }
    return Number(value);
  };
  const embedding = number("embedding_length");
  const heads = number("attention.head_count");
  const headSize = number("attention.key_length", embedding / heads);
  if (number("attention.value_length", headSize) !== headSize) throw new EngineError(`${file} has keys and values of different head sizes; the trainer expects one`);
  const scaling = metadata.get(`${architecture.name}.rope.scaling.type`)?.value ?? "none";
  if (scaling !== "none" && scaling !== "linear") throw new EngineError(`${file} uses ${String(scaling)} RoPE scaling; Grove's trainer knows none and linear`);
  const embeddings = tensors.get("token_embd.weight");
  if (embeddings === undefined) throw new EngineError(`${file} has no token_embd.weight`);
  for (const tensor of tensors.values()) {
    if (!lora) {
      if (tensor.type !== "F32") throw new EngineError(`Grove's trainer trains F32 tensors; ${tensor.name} of ${file} is ${tensor.type}`);
      continue;
    }
    // LoRA leaves the base in its own type: each must be one ggml can back-propagate through.
    const problem = frozenTypeProblem(tensor.type, tensor.shape.length);
    if (problem !== undefined) throw new EngineError(`LoRA cannot train on ${tensor.name} of ${file}: it is ${problem}`);
  }
  return {
    architecture,
    embedding,
    heads,
    headSize,
    headsKv: number("attention.head_count_kv", heads),
    blocks: number("block_count"),
    feedForward: number("feed_forward_length"),
    vocabulary: embeddings.shape[1]!,
    ropeBase: number("rope.freq_base", 10000),
    ropeScale: scaling === "linear" ? 1 / number("rope.scaling.factor", 1) : 1,
    ropeDimensions: number("rope.dimension_count", headSize),
    rmsEpsilon: number("attention.layer_norm_rms_epsilon", 1e-5),
    contextLength: number("context_length"),
  };
}

/**
 * Full training of an F32 model of one of {@link GGML_TRAIN_ARCHITECTURES} with Grove's own ggml graph: the same
 * arguments, events, windows, schedules and checkpoints as {@link trainWithLibllama}, but every
 * tensor trains (token embeddings and attention keys and values included). The output (and each
 * checkpoint) is the input file with its tensor data replaced, written under `.partial` and
 * renamed. Blocking: run in a worker process.
 *
 * @throws EngineError for a model it cannot train (another architecture, not F32) or data too short
 */
export async function trainWithGgml(args: TrainArguments, emit: (event: TrainEvent) => void): Promise<void> {
  const { koffi, g, fn, symbol } = await loadGgml();
  const header = await readGgufHeader(args.model);
  const layout = ggufTensorLayout(header);
  const lora = args.lora;
  const shape = readShape(header.metadata, layout.tensors, args.model, lora !== undefined);
  const n = args.contextSize;
  const tokenBytes = await readFile(args.tokensFile);
  const tokens = new Int32Array(tokenBytes.buffer, tokenBytes.byteOffset, Math.floor(tokenBytes.length / 4));
  for (const token of tokens) {
    if (token < 0 || token >= shape.vocabulary) throw new EngineError(`The training tokens hold ${token}, outside this model's vocabulary of ${shape.vocabulary}`);
  }
  const { stride, windows, trainWindows, startStep } = planWindows(tokens.length, args);
  const lossMask = args.lossOn === "answers" && args.lossMaskFile !== undefined ? await readLossMask(args.lossMaskFile, tokens.length) : undefined;

  const cleanup: (() => void)[] = [];
  try {
    // The CPU backend, with the thread count set on it (ggml's default is 4 threads: on 2 cores
    // that is the trap docs/ENGINE-NOTES.md measures).
    const device = g.ggml_backend_dev_by_type!(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (device === null) throw new EngineError("ggml has no CPU backend loaded");
    const backend = g.ggml_backend_dev_init!(device, null);
    cleanup.push(() => g.ggml_backend_free!(backend));
    const setThreads = g.ggml_backend_reg_get_proc_address!(g.ggml_backend_dev_backend_reg!(device), "ggml_backend_set_n_threads");
    if (setThreads !== null) koffi.call(setThreads, "grove_ggml_set_n_threads", backend, args.threads);

    // Weights and fixed inputs live in one statically allocated context.
    const loraCount = lora === undefined ? 0 : 2 * lora.targets.length * shape.blocks + lora.targets.length;
    const weightsContext = g.ggml_init!({ mem_size: (layout.tensors.size + loraCount + 8) * Number(g.ggml_tensor_overhead!()), mem_buffer: null, no_alloc: true });
    cleanup.push(() => g.ggml_free!(weightsContext));
    const weights = new Map<string, Pointer>();
    for (const tensor of layout.tensors.values()) {
      if (tensor.shape.length > 2) throw new EngineError(`${tensor.name} has ${tensor.shape.length} dimensions; the trainer expects at most 2`);
      // A full fine-tune trains F32 weights (checked above); a LoRA run keeps the file's type.
      const type = ggmlTypeByName(tensor.type).id;
      const made = tensor.shape.length === 1 ? g.ggml_new_tensor_1d!(weightsContext, type, tensor.shape[0]) : g.ggml_new_tensor_2d!(weightsContext, type, tensor.shape[0], tensor.shape[1]);
      g.ggml_set_name!(made, tensor.name);
      weights.set(tensor.name, made);
    }
    const inputTokens = g.ggml_new_tensor_1d!(weightsContext, GGML_TYPE_I32, n);
    const positions = g.ggml_new_tensor_1d!(weightsContext, GGML_TYPE_I32, n);
    const mask = g.ggml_new_tensor_2d!(weightsContext, GGML_TYPE_F32, n, n);
    // 1 for a position whose label counts, 0 for one the loss mask leaves out (see loadWindow).
    const labelRows = g.ggml_new_tensor_2d!(weightsContext, GGML_TYPE_F32, 1, n);
    for (const input of [inputTokens, positions, mask, labelRows]) g.ggml_set_input!(input);
    const adapter = lora === undefined ? undefined : createLoraTensors(g, weightsContext, lora, shape, layout.tensors, n);
    const weightsBuffer = g.ggml_backend_alloc_ctx_tensors!(weightsContext, backend);
    if (weightsBuffer === null) throw new EngineError("ggml could not allocate the model's weights");
    cleanup.push(() => g.ggml_backend_buffer_free!(weightsBuffer));
    const file = openSync(args.model, "r");
    try {
      for (const tensor of layout.tensors.values()) {
        const data = Buffer.alloc(tensor.bytes);
        let read = 0;
        while (read < tensor.bytes) read += readSync(file, data, read, tensor.bytes - read, tensor.fileOffset + read);
        g.ggml_backend_tensor_set!(weights.get(tensor.name), data, 0, tensor.bytes);
      }
    } finally {
      closeSync(file);
    }
    g.ggml_backend_tensor_set!(positions, Int32Array.from({ length: n }, (_, index) => index), 0, n * 4);
    const maskData = new Float32Array(n * n);
    for (let query = 0; query < n; query++) for (let key = query + 1; key < n; key++) maskData[query * n + key] = -Infinity;
    g.ggml_backend_tensor_set!(mask, maskData, 0, n * n * 4);
    // Llama 3's RoPE factors are a fixed table (ggml has no gradient for them), not a weight.
    if (adapter === undefined) {
      for (const name of weights.keys()) if (name !== ROPE_FACTORS) g.ggml_set_param!(weights.get(name));
    } else {
      await adapter.initialize(args.adapterCheckpoint);
    }

    const weight = (name: string): Pointer => {
      const found = weights.get(name);
      if (found === undefined) throw new EngineError(`${args.model} has no ${name}`);
      return found;
    };
    const headSize = shape.headSize;
    // The forward graph: llama.cpp's builder for the architecture, with attention reading K and V directly.
    const buildForward = (c: Pointer): Pointer => {
      const norm = (input: Pointer, name: string): Pointer => g.ggml_mul!(c, g.ggml_rms_norm!(c, input, shape.rmsEpsilon), weight(name));
      /** W·x for the named projection, plus (alpha / rank)·B·A·dropout(x) where LoRA adapts it. */
      const project = (name: string, input: Pointer): Pointer => {
        const base = g.ggml_mul_mat!(c, weight(name), input);
        const branch = adapter?.pairs.get(name);
        if (branch === undefined) return base;
        const dropped = branch.mask === undefined ? input : g.ggml_mul!(c, input, branch.mask);
        // The scale goes on the rank-wide product, the smallest tensor of the branch.
        const reduced = g.ggml_scale!(c, g.ggml_mul_mat!(c, branch.a, dropped), lora!.alpha / lora!.rank);
        return g.ggml_add!(c, base, g.ggml_mul_mat!(c, branch.b, reduced));
      };
      const rope = (input: Pointer): Pointer =>
        g.ggml_rope_ext!(c, input, positions, weights.get(ROPE_FACTORS) ?? null, shape.ropeDimensions, shape.architecture.ropeType, shape.contextLength, shape.ropeBase, shape.ropeScale, 0, 1, 32, 1);
      // The architecture's additions, as llama.cpp builds them: a bias where the file has one
      // (build_qkv, build_attn's wo_b, the output's bias), per-head query and key norms (Qwen3).
      const bias = (input: Pointer, name: string): Pointer => (weights.has(name) ? g.ggml_add!(c, input, weights.get(name)) : input);
      const headNorm = (heads: Pointer, name: string): Pointer => (shape.architecture.headNorms ? norm(heads, name) : heads);
      let hidden = g.ggml_get_rows!(c, weight("token_embd.weight"), inputTokens);
      for (let block = 0; block < shape.blocks; block++) {
        const prefix = `blk.${block}.`;
        const attentionInput = norm(hidden, `${prefix}attn_norm.weight`);
        const projected = (name: string, heads: number): Pointer =>
          g.ggml_reshape_3d!(c, bias(project(`${prefix}${name}.weight`, attentionInput), `${prefix}${name}.bias`), headSize, heads, n);
        const q = rope(headNorm(projected("attn_q", shape.heads), `${prefix}attn_q_norm.weight`));
        const k = rope(headNorm(projected("attn_k", shape.headsKv), `${prefix}attn_k_norm.weight`));
        const v = projected("attn_v", shape.headsKv);
        const scores = g.ggml_mul_mat!(c, g.ggml_permute!(c, k, 0, 2, 1, 3), g.ggml_permute!(c, q, 0, 2, 1, 3));
        const attention = g.ggml_soft_max_ext!(c, scores, mask, 1 / Math.sqrt(headSize), 0);
        const values = g.ggml_cont!(c, g.ggml_transpose!(c, g.ggml_permute!(c, v, 0, 2, 1, 3)));
        const mixed = g.ggml_cont!(c, g.ggml_permute!(c, g.ggml_mul_mat!(c, values, attention), 0, 2, 1, 3));
        const attended = bias(project(`${prefix}attn_output.weight`, g.ggml_reshape_2d!(c, mixed, headSize * shape.heads, n)), `${prefix}attn_output.bias`);
        const feedForwardInput = g.ggml_add!(c, attended, hidden);
        const normed = norm(feedForwardInput, `${prefix}ffn_norm.weight`);
        const gate = g.ggml_silu!(c, project(`${prefix}ffn_gate.weight`, normed));
        const up = project(`${prefix}ffn_up.weight`, normed);
        hidden = g.ggml_add!(c, project(`${prefix}ffn_down.weight`, g.ggml_mul!(c, gate, up)), feedForwardInput);
      }
      const unmaskedLogits = bias(g.ggml_mul_mat!(c, weights.get("output.weight") ?? weight("token_embd.weight"), norm(hidden, "output_norm.weight")), "output.bias");
      const logits = lossMask === undefined ? unmaskedLogits : g.ggml_mul!(c, unmaskedLogits, labelRows);
      g.ggml_set_output!(logits);
      return logits;
    };
    const graphSize = adapter === undefined ? GRAPH_SIZE : LORA_GRAPH_SIZE;
    const newComputeContext = (): Pointer =>
      g.ggml_init!({ mem_size: 16 * graphSize * Number(g.ggml_tensor_overhead!()) + 4 * Number(g.ggml_graph_overhead_custom!(graphSize, true)), mem_buffer: null, no_alloc: true });
    // A full fine-tune builds its graph once (static); a LoRA run once per step (see LORA_GRAPH_SIZE).
    const computeContext = adapter === undefined ? newComputeContext() : null;
    if (computeContext !== null) cleanup.push(() => g.ggml_free!(computeContext));
    const logits = computeContext === null ? null : buildForward(computeContext);

    const scheduler = g.ggml_backend_sched_new!([backend], null, 1, graphSize * 4, false, false);
    cleanup.push(() => g.ggml_backend_sched_free!(scheduler));
    const optimizerBlock = koffi.alloc("ggml_opt_optimizer_params", 1);
    const defaults = fn.ggml_opt_get_default_optimizer_params!(null) as Record<string, number>;
    const writeOptimizer = (learningRate: number): void => {
      koffi.encode(optimizerBlock, "ggml_opt_optimizer_params", { ...defaults, adamw_alpha: learningRate, adamw_wd: args.weightDecay, sgd_alpha: learningRate, sgd_wd: args.weightDecay });
    };
    const stepRate = (epochIndex: number, step: number): number => learningRateAtStep(args, args.warmupSteps!, epochIndex * trainWindows + step, args.epochs * trainWindows);
    writeOptimizer(args.warmupSteps === undefined ? learningRateAt(args, args.startEpoch) : stepRate(args.startEpoch, startStep + 1));
    const optimizer = g.ggml_opt_init!({
      backend_sched: scheduler,
      ctx_compute: computeContext,
      inputs: computeContext === null ? null : inputTokens,
      outputs: logits,
      loss_type: GGML_OPT_LOSS_TYPE_CROSS_ENTROPY,
      build_type: GGML_OPT_BUILD_TYPE_OPT,
      opt_period: args.accumulate ?? 1,
      get_opt_pars: symbol("ggml_opt_get_constant_optimizer_params"),
      get_opt_pars_ud: optimizerBlock,
      optimizer: GGML_OPT_OPTIMIZER_TYPE_ADAMW,
    });
    cleanup.push(() => g.ggml_opt_free!(optimizer));
    let stepContext: Pointer = null;
    cleanup.push(() => void (stepContext !== null && g.ggml_free!(stepContext)));
    let backwardSteps = 0;
    /** Allocates the graph of the next evaluation (building it first in a LoRA run). */
    const prepare = (backward: boolean): void => {
      if (computeContext === null) {
        if (stepContext !== null) g.ggml_free!(stepContext);
        stepContext = newComputeContext();
        const output = buildForward(stepContext);
        const graph = g.ggml_new_graph_custom!(stepContext, graphSize, true);
        g.ggml_build_forward_expand!(graph, output);
        g.ggml_opt_prepare_alloc!(optimizer, stepContext, graph, inputTokens, output);
      }
      g.ggml_opt_alloc!(optimizer, backward);
      // Rebuilt graphs accumulate gradients even at opt_period 1, and ggml-opt resets the
      // accumulators only for static graphs: clear them at the start of each optimizer step.
      if (computeContext === null && backward && backwardSteps++ % (args.accumulate ?? 1) === 0) g.ggml_opt_reset!(optimizer, false);
    };
    const labelData = new Float32Array(shape.vocabulary * n);

    /**
     * Windows go in as their tokens and their next tokens, one-hot, as labels; only labels the
     * loss counts (n, or the answer tokens under a loss mask; none: the window is skipped).
     *
     * A masked position needs more than a zero label row. ggml's cross-entropy sums
     * -labels·log_softmax(logits) over rows and divides by the row count (n), so a zero row adds
     * nothing to the loss but still counts in the mean; and its backward is
     * (softmax(logits) - labels)·d/n, which for a zero row is softmax(logits)·d/n, not 0 — it
     * would push the prediction at every prompt token towards uniform. So the logits are
     * multiplied by `labelRows` (0 on masked rows: their gradient stops there) and the loss,
     * sum over answer tokens / n, is rescaled to their mean by the caller (n / the count).
     */
    let previousStart = -1;
    const rowData = new Float32Array(n);
    /** Fills `rowData` with window `index`'s label weights; returns how many count (0: skip the window). */
    const countLabels = (index: number): number => {
      const start = index * stride;
      let counted = 0;
      for (let position = 0; position < n; position++) counted += rowData[position] = lossMask === undefined ? 1 : lossMask[start + position + 1]!;
      return counted;
    };
    /** Loads window `index` (after countLabels of it, and after prepare()). */
    const loadWindow = (index: number): void => {
      const start = index * stride;
      g.ggml_backend_tensor_set!(inputTokens, tokens.subarray(start, start + n), 0, n * 4);
      // Only the n ones of the last window are cleared, not the whole n × vocabulary array.
      if (previousStart >= 0) for (let position = 0; position < n; position++) labelData[position * shape.vocabulary + tokens[previousStart + position + 1]!] = 0;
      previousStart = start;
      for (let position = 0; position < n; position++) labelData[position * shape.vocabulary + tokens[start + position + 1]!] = rowData[position]!;
      // After prepare(): a LoRA run's labels tensor is new with each step's graph.
      g.ggml_backend_tensor_set!(g.ggml_opt_labels!(optimizer), labelData, 0, labelData.byteLength);
      if (lossMask !== undefined) g.ggml_backend_tensor_set!(labelRows, rowData, 0, rowData.byteLength);
    };

    const resultTrain = fn.ggml_opt_result_init!();
    const resultEval = fn.ggml_opt_result_init!();
    cleanup.push(() => {
      fn.ggml_opt_result_free!(resultTrain);
      fn.ggml_opt_result_free!(resultEval);
    });
    const meanLoss = (result: Pointer): number => {
      const loss = [0];
      fn.ggml_opt_result_loss!(result, loss, [0]);
      return loss[0]!;
    };
    const save = async (path: string): Promise<void> => {
      if (adapter === undefined) saveWeights(g, args.model, layout.tensors, weights, path);
      else await writeLoraAdapter({ basePath: args.model, ...(args.baseDigest === undefined ? {} : { baseDigest: args.baseDigest as never }), alpha: lora!.alpha, rank: lora!.rank, pairs: adapter.read(), outPath: path });
    };

    emit({ event: "ready", windows, trainWindows, validationWindows: windows - trainWindows, tokens: tokens.length, stepsPerEpoch: trainWindows });
    const interval = args.checkpointIntervalMs ?? 0;
    let lastCheckpoint = performance.now();
    let offset = startStep;
    for (let epoch = args.startEpoch; epoch < args.epochs; epoch++) {
      const learningRate = args.warmupSteps === undefined ? learningRateAt(args, epoch) : stepRate(epoch, offset + 1);
      writeOptimizer(learningRate);
      const started = performance.now();
      const trainLosses = new WindowLosses(() => meanLoss(resultTrain), n);
      for (let step = offset + 1; step <= trainWindows; step++) {
        const counted = countLabels(step - 1);
        if (counted === 0) continue; // no answer token: nothing to learn
        if (args.warmupSteps !== undefined) writeOptimizer(stepRate(epoch, step));
        prepare(true);
        loadWindow(step - 1);
        adapter?.drawMasks(epoch, step);
        g.ggml_opt_eval!(optimizer, resultTrain);
        const stepLoss = trainLosses.add(counted);
        emit({ event: "step", epoch, step, steps: trainWindows, loss: stepLoss, meanLoss: trainLosses.mean, validation: false });
        if (interval > 0 && args.checkpoint !== undefined && step < trainWindows && performance.now() - lastCheckpoint >= interval) {
          await save(args.checkpoint);
          lastCheckpoint = performance.now();
          emit({ event: "checkpoint", epoch, step, path: args.checkpoint });
        }
      }
      const validationLosses = new WindowLosses(() => meanLoss(resultEval), n);
      for (let index = trainWindows; index < windows; index++) {
        const counted = countLabels(index);
        if (counted === 0) continue;
        prepare(false);
        loadWindow(index);
        adapter?.drawMasks(epoch, undefined);
        g.ggml_opt_eval!(optimizer, resultEval);
        const loss = validationLosses.add(counted);
        emit({ event: "step", epoch, step: index - trainWindows + 1, steps: windows - trainWindows, loss, meanLoss: validationLosses.mean, validation: true });
      }
      const durationMs = performance.now() - started;
      offset = 0;
      emit({
        event: "epoch",
        epoch,
        trainLoss: trainLosses.mean,
        validationLoss: validationLosses.evaluations > 0 ? validationLosses.mean : null,
        // Under a per-step schedule the rate the epoch ended at, not its first step's (a warm-up's ~0).
        learningRate: args.warmupSteps === undefined ? learningRate : stepRate(epoch, trainWindows),
        durationMs,
        tokensPerSecond: ((trainLosses.evaluations + validationLosses.evaluations) * n) / (durationMs / 1000),
      });
      fn.ggml_opt_result_reset!(resultTrain);
      fn.ggml_opt_result_reset!(resultEval);
      if (args.checkpoint !== undefined && epoch < args.epochs - 1) {
        await save(args.checkpoint);
        lastCheckpoint = performance.now();
        emit({ event: "checkpoint", epoch, path: args.checkpoint });
      }
    }
    await save(args.output);
    emit({ event: "saved", path: args.output });
  } finally {
    for (const release of cleanup.reverse()) release();
  }
}

/**
 * Each window's loss, from ggml-opt's running mean over the windows evaluated, rescaled from
 * ggml's normalisation (sum over counted labels / n) to the mean over the counted labels; and the
 * mean over every counted label so far. Without a loss mask every window counts n labels, and
 * this is ggml's own mean.
 */
class WindowLosses {
  evaluations = 0;
  #previous = 0;
  #sum = 0;
  #labels = 0;

  constructor(
    private readonly runningMean: () => number,
    private readonly n: number,
  ) {}

  /** Records the window just evaluated, which counted `labels` labels; returns its loss. */
  add(labels: number): number {
    this.evaluations++;
    const mean = this.runningMean();
    const window = ((mean * this.evaluations - this.#previous * (this.evaluations - 1)) * this.n) / labels;
    this.#previous = mean;
    this.#sum += window * labels;
    this.#labels += labels;
    return window;
  }

  /** Mean loss per counted label. */
  get mean(): number {
    return this.#labels === 0 ? Number.NaN : this.#sum / this.#labels;
  }
}

/** Writes `source` with every tensor's data replaced by the trained weights: under `.partial`, then renamed. */
function saveWeights(g: Ggml, source: string, tensors: Map<string, ValidatedTensor>, weights: Map<string, Pointer>, path: string): void {
  const partial = `${path}.partial`;
  try {
    copyFileSync(source, partial);
    const descriptor = openSync(partial, "r+");
    try {
      for (const tensor of tensors.values()) {
        const data = Buffer.alloc(tensor.bytes);
        g.ggml_backend_tensor_get!(weights.get(tensor.name), data, 0, tensor.bytes);
        writeSync(descriptor, data, 0, tensor.bytes, tensor.fileOffset);
      }
    } finally {
      closeSync(descriptor);
    }
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}
