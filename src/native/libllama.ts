// biome-ignore-all lint/suspicious/noExplicitAny: koffi's declared functions are untyped
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { EngineError } from "../core/errors.js";

// Grove's one path into llama.cpp's C API: the libllama (and libggml) that node-llama-cpp ships,
// through koffi. The serving engine, quantization, both trainers and evaluation call it; this
// module owns the struct layouts and checks them against this llama.cpp version at load. Calls
// block, and a GGML_ASSERT aborts the process: call it from a worker thread or process.

/** Struct sizes of this llama.cpp (node-llama-cpp 3.21.1's libllama); checked at load. */
const STRUCT_SIZES = {
  llama_model_params: 80,
  llama_context_params: 160,
  llama_opt_params: 48,
  ggml_opt_optimizer_params: 28,
  llama_batch: 56,
  llama_sampler_chain_params: 1,
  llama_logit_bias: 8,
  llama_chat_message: 16,
  ggml_threadpool_params: 528,
} as const;

/** The directory holding node-llama-cpp's prebuilt CPU libraries (libllama, libggml*). */
export function libllamaDirectory(): string {
  // The package exports only its index (dist/index.js); the binaries lie beside dist/.
  const index = createRequire(import.meta.url).resolve("@node-llama-cpp/linux-x64");
  return join(dirname(index), "..", "bins", "linux-x64");
}

const RTLD_NOW = 2;
const RTLD_NOLOAD = 4;

/** The loaded libraries: koffi, the declared functions, native symbol lookup. */
export interface LibllamaFfi {
  koffi: any;
  fn: Record<string, (...args: any[]) => any>;
  symbol: (name: string) => unknown;
  epochCallback: any;
  logCallback: any;
  /** Prototypes of the CPU backend's thread pool functions, called through the pointers ggml hands out. */
  threadpoolNew: any;
  threadpoolFree: any;
  /** The folder the libraries were loaded from. */
  directory: string;
}

let library: Promise<LibllamaFfi> | undefined;

/**
 * Loads libggml-base, libggml and libllama through koffi, declares the parts of this llama.cpp's
 * C API Grove calls directly (model and context, decode, logits, tokenizer, the optimizer), loads
 * the CPU backend and initialises llama.cpp. Once per process: the first call's
 * `libraryDirectory` (default: node-llama-cpp's prebuilt CPU binaries) wins.
 * @throws EngineError when a library is missing or a struct size differs (another llama.cpp)
 */
export function loadLibllamaFfi(libraryDirectory?: string): Promise<LibllamaFfi> {
  // Memoised as a promise: two callers at once must not declare the structs twice.
  library ??= loadLibraries(libraryDirectory);
  return library;
}

async function loadLibraries(libraryDirectory: string | undefined): Promise<LibllamaFfi> {
  const koffi = (await import("koffi")).default;
  // Another build of the same llama.cpp source (a bench compares Grove's own overhead on it) may
  // be given; its libraries carry no version in their names.
  const directory = libraryDirectory ?? libllamaDirectory();
  // node-llama-cpp names its libraries by variant (libllama.v0.4.0.so, libllama.cuda.v0.4.0.so).
  const files = existsSync(directory) ? readdirSync(directory) : [];
  const named = (stem: string): string => {
    const versioned = files.find((file) => file.startsWith(`${stem}.`) && /\.v\d+\.\d+\.\d+\.so$/.test(file));
    return join(directory, versioned ?? `${stem}.so`);
  };
  const paths = { base: join(directory, "libggml-base.so"), ggml: named("libggml"), llama: named("libllama") };
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
  koffi.struct("llama_sampler_chain_params", { no_perf: "bool" });
  koffi.struct("llama_logit_bias", { token: "int32_t", bias: "float" });
  koffi.struct("llama_chat_message", { role: "const char *", content: "const char *" });
  koffi.struct("llama_token_data", { id: "int32_t", logit: "float", p: "float" });
  koffi.struct("llama_token_data_array", { data: "void *", size: "size_t", selected: "int64_t", sorted: "bool" });
  koffi.struct("ggml_threadpool_params", {
    cpumask: koffi.array("bool", 512),
    n_threads: "int32_t",
    prio: "int32_t",
    poll: "uint32_t",
    strict_cpu: "bool",
    paused: "bool",
  });
  for (const [name, expected] of Object.entries(STRUCT_SIZES)) {
    const size = koffi.sizeof(name);
    if (size !== expected) throw new EngineError(`${name} is ${size} bytes as declared, expected ${expected}: the struct layout does not match this llama.cpp version`);
  }
  const logCallback = koffi.proto("void ggml_log_callback(int level, const char *text, void *user_data)");
  const threadpoolNew = koffi.proto("void *ggml_threadpool_new_fn(_Inout_ ggml_threadpool_params *params)");
  const threadpoolFree = koffi.proto("void ggml_threadpool_free_fn(void *pool)");
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
    llama_batch_init: llama.func("llama_batch llama_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max)"),
    llama_batch_free: llama.func("void llama_batch_free(llama_batch batch)"),
    llama_get_logits: llama.func("float *llama_get_logits(void *ctx)"),
    llama_get_logits_ith: llama.func("float *llama_get_logits_ith(void *ctx, int32_t i)"),
    llama_synchronize: llama.func("void llama_synchronize(void *ctx)"),
    llama_vocab_get_add_bos: llama.func("bool llama_vocab_get_add_bos(void *vocab)"),
    llama_tokenize: llama.func("int32_t llama_tokenize(void *vocab, const char *text, int32_t text_len, _Out_ int32_t *tokens, int32_t n_tokens_max, bool add_special, bool parse_special)"),
    llama_model_n_ctx_train: llama.func("int32_t llama_model_n_ctx_train(void *model)"),
    llama_token_to_piece: llama.func("int32_t llama_token_to_piece(void *vocab, int32_t token, _Out_ uint8_t *buf, int32_t length, int32_t lstrip, bool special)"),
    llama_vocab_is_eog: llama.func("bool llama_vocab_is_eog(void *vocab, int32_t token)"),
    llama_batch_get_one: llama.func("llama_batch llama_batch_get_one(_Inout_ int32_t *tokens, int32_t n_tokens)"),
    llama_decode: llama.func("int32_t llama_decode(void *ctx, llama_batch batch)"),
    llama_get_memory: llama.func("void *llama_get_memory(void *ctx)"),
    llama_memory_clear: llama.func("void llama_memory_clear(void *mem, bool data)"),
    llama_opt_init: llama.func("void llama_opt_init(void *ctx, void *model, llama_opt_params params)"),
    llama_opt_epoch: llama.func(
      "void llama_opt_epoch(void *ctx, void *dataset, void *result_train, void *result_eval, int64_t idata_split, ggml_opt_epoch_callback *cb_train, ggml_opt_epoch_callback *cb_eval)",
    ),
    llama_model_save_to_file: llama.func("void llama_model_save_to_file(void *model, const char *path)"),
    llama_log_set: llama.func("void llama_log_set(ggml_log_callback *callback, void *user_data)"),
    // Serving: vocabulary and model facts.
    llama_vocab_eos: llama.func("int32_t llama_vocab_eos(void *vocab)"),
    llama_vocab_eot: llama.func("int32_t llama_vocab_eot(void *vocab)"),
    llama_vocab_fim_pre: llama.func("int32_t llama_vocab_fim_pre(void *vocab)"),
    llama_vocab_fim_suf: llama.func("int32_t llama_vocab_fim_suf(void *vocab)"),
    llama_vocab_fim_mid: llama.func("int32_t llama_vocab_fim_mid(void *vocab)"),
    llama_vocab_get_add_eos: llama.func("bool llama_vocab_get_add_eos(void *vocab)"),
    llama_vocab_get_text: llama.func("const char *llama_vocab_get_text(void *vocab, int32_t token)"),
    llama_vocab_is_control: llama.func("bool llama_vocab_is_control(void *vocab, int32_t token)"),
    llama_chat_builtin_templates: llama.func("int32_t llama_chat_builtin_templates(_Out_ const char **output, size_t len)"),
    llama_chat_apply_template: llama.func("int32_t llama_chat_apply_template(const char *tmpl, const llama_chat_message *chat, size_t n_msg, bool add_ass, _Out_ uint8_t *buf, int32_t length)"),
    llama_model_chat_template: llama.func("const char *llama_model_chat_template(void *model, const char *name)"),
    llama_model_meta_val_str: llama.func("int32_t llama_model_meta_val_str(void *model, const char *key, _Out_ uint8_t *buf, size_t buf_size)"),
    llama_model_n_embd: llama.func("int32_t llama_model_n_embd(void *model)"),
    llama_model_has_encoder: llama.func("bool llama_model_has_encoder(void *model)"),
    llama_detokenize: llama.func("int32_t llama_detokenize(void *vocab, const int32_t *tokens, int32_t n_tokens, _Out_ uint8_t *text, int32_t text_len_max, bool remove_special, bool unparse_special)"),
    // Serving: contexts, KV memory, embeddings, adapters, threads.
    llama_n_ctx_seq: llama.func("uint32_t llama_n_ctx_seq(void *ctx)"),
    llama_n_batch: llama.func("uint32_t llama_n_batch(void *ctx)"),
    llama_pooling_type: llama.func("int32_t llama_pooling_type(void *ctx)"),
    llama_get_embeddings_seq: llama.func("float *llama_get_embeddings_seq(void *ctx, int32_t seq_id)"),
    llama_get_embeddings_ith: llama.func("float *llama_get_embeddings_ith(void *ctx, int32_t i)"),
    llama_memory_seq_rm: llama.func("bool llama_memory_seq_rm(void *mem, int32_t seq_id, int32_t p0, int32_t p1)"),
    llama_memory_seq_cp: llama.func("void llama_memory_seq_cp(void *mem, int32_t src, int32_t dst, int32_t p0, int32_t p1)"),
    llama_memory_seq_pos_max: llama.func("int32_t llama_memory_seq_pos_max(void *mem, int32_t seq_id)"),
    llama_adapter_lora_init: llama.func("void *llama_adapter_lora_init(void *model, const char *path)"),
    llama_adapter_lora_free: llama.func("void llama_adapter_lora_free(void *adapter)"),
    llama_set_adapters_lora: llama.func("int32_t llama_set_adapters_lora(void *ctx, void **adapters, size_t n_adapters, float *scales)"),
    llama_attach_threadpool: llama.func("void llama_attach_threadpool(void *ctx, void *pool, void *pool_batch)"),
    llama_detach_threadpool: llama.func("void llama_detach_threadpool(void *ctx)"),
    llama_set_n_threads: llama.func("void llama_set_n_threads(void *ctx, int32_t n_threads, int32_t n_threads_batch)"),
    // Serving: llama.cpp's samplers.
    llama_sampler_chain_default_params: llama.func("llama_sampler_chain_params llama_sampler_chain_default_params(void)"),
    llama_sampler_chain_init: llama.func("void *llama_sampler_chain_init(llama_sampler_chain_params params)"),
    llama_sampler_chain_add: llama.func("void llama_sampler_chain_add(void *chain, void *sampler)"),
    llama_sampler_init_greedy: llama.func("void *llama_sampler_init_greedy(void)"),
    llama_sampler_init_dist: llama.func("void *llama_sampler_init_dist(uint32_t seed)"),
    llama_sampler_init_top_k: llama.func("void *llama_sampler_init_top_k(int32_t k)"),
    llama_sampler_init_top_p: llama.func("void *llama_sampler_init_top_p(float p, size_t min_keep)"),
    llama_sampler_init_min_p: llama.func("void *llama_sampler_init_min_p(float p, size_t min_keep)"),
    llama_sampler_init_temp: llama.func("void *llama_sampler_init_temp(float t)"),
    llama_sampler_init_penalties: llama.func("void *llama_sampler_init_penalties(int32_t n_vocab, int32_t penalty_last_n, float penalty_repeat, float penalty_freq, float penalty_present)"),
    llama_sampler_init_logit_bias: llama.func("void *llama_sampler_init_logit_bias(int32_t n_vocab, int32_t n_logit_bias, const llama_logit_bias *logit_bias)"),
    llama_sampler_init_grammar: llama.func("void *llama_sampler_init_grammar(void *vocab, const char *grammar, const char *root)"),
    llama_sampler_sample: llama.func("int32_t llama_sampler_sample(void *sampler, void *ctx, int32_t idx)"),
    llama_sampler_apply: llama.func("void llama_sampler_apply(void *sampler, _Inout_ llama_token_data_array *cur_p)"),
    llama_sampler_accept: llama.func("void llama_sampler_accept(void *sampler, int32_t token)"),
    llama_sampler_free: llama.func("void llama_sampler_free(void *sampler)"),
    // The thread pool: its constructor lives in the CPU backend ggml chose at run time.
    ggml_backend_reg_by_name: ggml.func("void *ggml_backend_reg_by_name(const char *name)"),
    ggml_backend_reg_get_proc_address: ggml.func("void *ggml_backend_reg_get_proc_address(void *reg, const char *name)"),
    ggml_threadpool_params_init: base.func("void ggml_threadpool_params_init(_Inout_ ggml_threadpool_params *params, int n_threads)"),
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
  // glibc's allocator tuning (serving: see fixMmapThreshold in native-model.ts).
  fn.mallopt = libc.func("int mallopt(int param, int value)");
  const dlopen = libc.func("void *dlopen(const char *path, int flags)");
  const dlsym = libc.func("void *dlsym(void *handle, const char *name)");
  const handles = [paths.llama, paths.base].map((path) => dlopen(path, RTLD_NOW | RTLD_NOLOAD));
  const symbol = (name: string): unknown => {
    for (const handle of handles) {
      if (handle === null) continue;
      const address = dlsym(handle, name);
      if (address !== null) return address;
    }
    throw new EngineError(`libllama does not export ${name}`);
  };
  // Backends are registered once per process: a worker thread loading this module again finds
  // them (a build without dynamic backends has its CPU backend registered from the start).
  if (fn.ggml_backend_reg_by_name!("CPU") === null) fn.ggml_backend_load_all_from_path!(directory);
  fn.llama_backend_init!();
  return { koffi, fn, symbol, epochCallback, logCallback, threadpoolNew, threadpoolFree, directory };
}

