// biome-ignore-all lint/suspicious/noExplicitAny: koffi's values are untyped
import { basename } from "node:path";
import { EngineError } from "../core/errors.js";
import { loadLibllamaFfi, type LibllamaFfi } from "./libllama.js";


const LLAMA_LOAD_MODE_NONE = 0;
const LLAMA_LOAD_MODE_MMAP = 1;
const PIECE_BUFFER = 256;

/** Options of {@link NativeModel.load}. */
export interface NativeModelLoadOptions {
  /** The vocabulary and metadata only, no weights (tokenizing on a thread that does not decode). @default false */
  vocabOnly?: boolean;
  /** Layers offloaded to a GPU (ignored by CPU libraries); -1 all. @default 0 */
  gpuLayers?: number;
  /** Libraries to load (a reference build); default node-llama-cpp's. */
  libraryDirectory?: string;
  /** Map the file (shared, lazily read) instead of reading it into memory. @default true */
  mmap?: boolean;
}

/**
 * A GGUF model loaded through libllama's C API: its vocabulary (tokenize, pieces, special
 * tokens), its chat template and metadata, and — unless loaded vocabulary-only — its weights, for
 * {@link NativeContext}s. Synchronous calls: use it on a thread that may block.
 */
export class NativeModel {
  readonly lib: LibllamaFfi;
  readonly handle: unknown;
  readonly vocab: unknown;
  readonly path: string;
  readonly vocabularySize: number;
  readonly trainContextSize: number;
  readonly embeddingSize: number;
  /** Beginning-of-sequence token, or -1. */
  readonly bos: number;
  /** End-of-sequence token, or -1. */
  readonly eos: number;
  /** Whether tokenizing with special tokens adds BOS. */
  readonly addBos: boolean;
  readonly #pieces = new Map<number, Uint8Array>();
  readonly #pieceBuffer = new Uint8Array(PIECE_BUFFER);
  #eog: Int32Array | undefined;
  #freed = false;

  private constructor(lib: LibllamaFfi, handle: unknown, path: string) {
    const { fn } = lib;
    this.lib = lib;
    this.handle = handle;
    this.path = path;
    this.vocab = fn.llama_model_get_vocab!(handle);
    this.vocabularySize = fn.llama_vocab_n_tokens!(this.vocab) as number;
    this.trainContextSize = fn.llama_model_n_ctx_train!(handle) as number;
    this.embeddingSize = fn.llama_model_n_embd!(handle) as number;
    this.bos = fn.llama_vocab_bos!(this.vocab) as number;
    this.eos = fn.llama_vocab_eos!(this.vocab) as number;
    this.addBos = fn.llama_vocab_get_add_bos!(this.vocab) as boolean;
  }

  /** @throws EngineError when llama.cpp cannot load the file (validate it with Grove first: some files abort the process) */
  static async load(path: string, options: NativeModelLoadOptions = {}): Promise<NativeModel> {
    const lib = await loadLibllamaFfi(options.libraryDirectory);
    const params = lib.fn.llama_model_default_params!() as Record<string, unknown>;
    params.load_mode = options.mmap === false ? LLAMA_LOAD_MODE_NONE : LLAMA_LOAD_MODE_MMAP;
    params.vocab_only = options.vocabOnly ?? false;
    params.n_gpu_layers = options.gpuLayers ?? 0;
    const handle = lib.fn.llama_model_load_from_file!(path, params);
    if (handle === null) throw new EngineError(`llama.cpp could not load ${path}`);
    return new NativeModel(lib, handle, path);
  }

  /**
   * Tokens of `text`. `addSpecial` adds BOS (and EOS) as the vocabulary asks; `parseSpecial` turns
   * special-token text (`<|im_start|>`) into those tokens instead of spelling it out.
   */
  tokenize(text: string, options: { addSpecial?: boolean; parseSpecial?: boolean } = {}): Int32Array {
    const bytes = Buffer.from(text, "utf8");
    let capacity = bytes.length + 8;
    for (;;) {
      const out = new Int32Array(capacity);
      const count = this.lib.fn.llama_tokenize!(this.vocab, bytes, bytes.length, out, capacity, options.addSpecial ?? false, options.parseSpecial ?? false) as number;
      if (count >= 0) return out.subarray(0, count);
      if (count === -2147483648) throw new EngineError("The text is too long to tokenize");
      capacity = -count;
    }
  }

  /** The bytes a token stands for in generated text (control tokens: none, unless `special`). Cached. */
  piece(token: number, special = false): Uint8Array {
    const key = special ? -token - 1 : token;
    const cached = this.#pieces.get(key);
    if (cached !== undefined) return cached;
    let buffer = this.#pieceBuffer;
    let count = this.lib.fn.llama_token_to_piece!(this.vocab, token, buffer, buffer.length, 0, special) as number;
    if (count < 0) {
      buffer = new Uint8Array(-count);
      count = this.lib.fn.llama_token_to_piece!(this.vocab, token, buffer, buffer.length, 0, special) as number;
    }
    const piece = buffer.slice(0, Math.max(0, count));
    this.#pieces.set(key, piece);
    return piece;
  }

  /** The text of tokens, as llama.cpp detokenizes them (special tokens rendered when `special`). */
  detokenize(tokens: ArrayLike<number>, special = false): string {
    const input = Int32Array.from(tokens as ArrayLike<number>);
    let capacity = Math.max(64, input.length * 8);
    for (;;) {
      const out = new Uint8Array(capacity);
      const count = this.lib.fn.llama_detokenize!(this.vocab, input, input.length, out, capacity, false, special) as number;
      if (count >= 0) return Buffer.from(out.buffer, 0, count).toString("utf8");
      capacity = -count;
    }
  }

  /** The fill-in-the-middle tokens (prefix, suffix, middle), or undefined when the vocabulary lacks one. */
  fimTokens(): { readonly prefix: number; readonly suffix: number; readonly middle: number } | undefined {
    const { fn } = this.lib;
    const prefix = fn.llama_vocab_fim_pre!(this.vocab) as number;
    const suffix = fn.llama_vocab_fim_suf!(this.vocab) as number;
    const middle = fn.llama_vocab_fim_mid!(this.vocab) as number;
    return prefix < 0 || suffix < 0 || middle < 0 ? undefined : { prefix, suffix, middle };
  }

  /** A token's text as the vocabulary spells it (`<|im_end|>`, `Ġthe`). */
  tokenText(token: number): string {
    return (this.lib.fn.llama_vocab_get_text!(this.vocab, token) as string | null) ?? "";
  }

  /** True for end-of-generation tokens (EOS, EOT, `<|im_end|>`…). */
  isEog(token: number): boolean {
    return this.lib.fn.llama_vocab_is_eog!(this.vocab, token) as boolean;
  }

  /** Every end-of-generation token of the vocabulary, found once. */
  eogTokens(): Int32Array {
    if (this.#eog === undefined) {
      const found: number[] = [];
      for (let token = 0; token < this.vocabularySize; token++) if (this.isEog(token)) found.push(token);
      this.#eog = Int32Array.from(found);
    }
    return this.#eog;
  }

  /** The model's default chat template (`tokenizer.chat_template`), or undefined. */
  chatTemplate(): string | undefined {
    return (this.lib.fn.llama_model_chat_template!(this.handle, null) as string | null) ?? undefined;
  }

  /** The names of llama.cpp's built-in chat formats (`llama3`, `chatml`, `command-r`…), its `--chat-template` list. */
  builtinChatTemplates(): string[] {
    const count = this.lib.fn.llama_chat_builtin_templates!(null, 0) as number;
    const names: (string | null)[] = new Array(count).fill(null);
    this.lib.fn.llama_chat_builtin_templates!(names, count);
    return names.filter((name): name is string => typeof name === "string");
  }

  /**
   * A conversation in one of llama.cpp's built-in formats (`llama_chat_apply_template`, its
   * formatter without Jinja): roles and text only.
   * @throws EngineError when llama.cpp does not know the name
   */
  applyBuiltinChatTemplate(name: string, messages: readonly { role: string; content: string }[], addAssistant: boolean): string {
    const chat = messages.map((message) => ({ role: message.role, content: message.content }));
    const size = messages.reduce((sum, message) => sum + message.role.length + Buffer.byteLength(message.content), 0) * 2 + 256;
    let buffer = new Uint8Array(size);
    let length = this.lib.fn.llama_chat_apply_template!(name, chat, chat.length, addAssistant, buffer, buffer.length) as number;
    if (length < 0) throw new EngineError(`llama.cpp has no built-in chat template named ${JSON.stringify(name)}`);
    if (length > buffer.length) {
      buffer = new Uint8Array(length);
      length = this.lib.fn.llama_chat_apply_template!(name, chat, chat.length, addAssistant, buffer, buffer.length) as number;
    }
    return Buffer.from(buffer.buffer, 0, length).toString("utf8");
  }

  /** A metadata value as text, or undefined (arrays are not readable this way). */
  metadata(key: string): string | undefined {
    const buffer = new Uint8Array(4096);
    const count = this.lib.fn.llama_model_meta_val_str!(this.handle, key, buffer, buffer.length) as number;
    if (count < 0) return undefined;
    return Buffer.from(buffer.buffer, 0, Math.min(count, buffer.length - 1)).toString("utf8");
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.lib.fn.llama_model_free!(this.handle);
  }
}

/** How a {@link NativeContext} is shaped. */
export interface NativeContextOptions {
  /** Independent sequences (slots), each with its own KV stream unless `unified`. */
  sequences: number;
  /** Tokens each sequence holds; with `unified`, the size of the one shared cache as well. */
  contextSize: number;
  /**
   * One KV buffer shared by every sequence (llama.cpp's `kv_unified`, llama-server's `--kv-unified`):
   * each may grow to `contextSize` as long as the others leave room, and `decode` returns 1 when
   * the shared cache is full. @default false
   */
  unified?: boolean;
  /** Most tokens one `decode` takes (logical batch). @default 2048, at most sequences × contextSize */
  batchSize?: number;
  /** Tokens computed at once inside a decode (physical batch). @default 512 */
  ubatchSize?: number;
  threads: number;
  /** K and V cache types (ggml type ids: 1 f16, 8 q8_0, 2 q4_0). @default 1 */
  cacheTypeK?: number;
  cacheTypeV?: number;
  /** -1 auto, 0 off, 1 on. @default -1 */
  flashAttention?: number;
  /** An embeddings context: pooled (or last-token) vectors instead of logits. @default false */
  embeddings?: boolean;
  /** llama.cpp's `llama_pooling_type` of an embeddings context: -1 the model's own, 0 none, 1 mean, 2 cls, 3 last. @default -1 */
  poolingType?: number;
  /** Attach a persistent ggml thread pool (polling at this level, 0–100) instead of starting threads per graph; undefined: none. */
  threadpoolPoll?: number;
}

/** The ggml type ids of the KV cache types Grove offers. */
export const CACHE_TYPES = { f16: 1, q8_0: 8, q4_0: 2, f32: 0, bf16: 30 } as const;

/**
 * A llama.cpp context over a {@link NativeModel}: one KV stream per sequence (`kv_unified`
 * false, as llama-server's slots) or one shared by all (`unified`), a reusable batch whose arrays are written directly, logits and
 * embeddings as Float32Array views, KV edits per sequence, and an optional persistent thread pool.
 */
export class NativeContext {
  readonly model: NativeModel;
  readonly handle: unknown;
  readonly memory: unknown;
  readonly sequences: number;
  readonly contextSize: number;
  readonly batchSize: number;
  readonly #batch: Record<string, unknown>;
  readonly token: Int32Array;
  readonly pos: Int32Array;
  readonly #nSeqId: Int32Array;
  readonly #seqId: Int32Array[];
  readonly logits: Int8Array;
  #threadpool: unknown = null;
  #count = 0;
  #freed = false;

  private constructor(model: NativeModel, handle: unknown, sequences: number, contextSize: number, batchSize: number) {
    const { fn, koffi } = model.lib;
    this.model = model;
    this.handle = handle;
    this.memory = fn.llama_get_memory!(handle);
    this.sequences = sequences;
    this.contextSize = contextSize;
    this.batchSize = batchSize;
    this.#batch = fn.llama_batch_init!(batchSize, 0, 1) as Record<string, unknown>;
    this.token = new Int32Array(koffi.view(this.#batch.token, batchSize * 4));
    this.pos = new Int32Array(koffi.view(this.#batch.pos, batchSize * 4));
    this.#nSeqId = new Int32Array(koffi.view(this.#batch.n_seq_id, batchSize * 4));
    this.logits = new Int8Array(koffi.view(this.#batch.logits, batchSize));
    const pointers = koffi.decode(this.#batch.seq_id, "void *", batchSize) as unknown[];
    this.#seqId = pointers.map((pointer) => new Int32Array(koffi.view(pointer, 4)));
  }

  /** @throws EngineError when llama.cpp cannot make the context (memory, an unsupported cache type) */
  static create(model: NativeModel, options: NativeContextOptions): NativeContext {
    const { fn } = model.lib;
    const unified = options.unified ?? false;
    const total = unified ? options.contextSize : options.sequences * options.contextSize;
    const batchSize = Math.min(options.batchSize ?? 2048, total);
    const params = fn.llama_context_default_params!() as Record<string, unknown>;
    Object.assign(params, {
      n_ctx: total,
      n_batch: batchSize,
      n_ubatch: Math.min(options.ubatchSize ?? 512, batchSize),
      n_seq_max: options.sequences,
      n_threads: options.threads,
      n_threads_batch: options.threads,
      kv_unified: unified,
      flash_attn_type: options.flashAttention ?? -1,
      type_k: options.cacheTypeK ?? CACHE_TYPES.f16,
      type_v: options.cacheTypeV ?? CACHE_TYPES.f16,
      embeddings: options.embeddings ?? false,
      pooling_type: options.poolingType ?? -1,
      no_perf: true,
    });
    const handle = fn.llama_init_from_model!(model.handle, params);
    if (handle === null) {
      throw new EngineError(`llama.cpp could not create a context of ${options.sequences} × ${options.contextSize} tokens for ${model.path} (memory, or a cache type this build cannot use)`);
    }
    const context = new NativeContext(model, handle, options.sequences, options.contextSize, batchSize);
    if (options.threadpoolPoll !== undefined) context.#attachThreadpool(options.threads, options.threadpoolPoll);
    return context;
  }

  /**
   * A persistent thread pool: ggml otherwise starts and joins its threads for every graph, a fixed
   * cost per decode step that collapses under load (issue 17: 13.5 against 1,880 tokens/s for a
   * small model on a loaded machine). The constructor lives in the CPU backend ggml chose at run
   * time, reached as llama.cpp's tools reach it.
   */
  #attachThreadpool(threads: number, poll: number): void {
    const { fn, koffi } = this.model.lib;
    const registry = fn.ggml_backend_reg_by_name!("CPU");
    const create = registry === null ? null : fn.ggml_backend_reg_get_proc_address!(registry, "ggml_threadpool_new");
    if (create === null) return;
    const params: Record<string, unknown> = { cpumask: new Array(512).fill(false), n_threads: 0, prio: 0, poll: 0, strict_cpu: false, paused: false };
    fn.ggml_threadpool_params_init!(params, threads);
    params.poll = poll;
    const pool = koffi.call(create, this.model.lib.threadpoolNew, params);
    if (pool === null) return;
    fn.llama_attach_threadpool!(this.handle, pool, pool);
    this.#threadpool = pool;
  }

  /** Tokens in the batch being built. */
  get count(): number {
    return this.#count;
  }

  /** Starts a new batch. */
  clearBatch(): void {
    this.#count = 0;
  }

  /** Adds one token to the batch; returns its index (the row of its logits when `output`). */
  add(token: number, position: number, sequence: number, output: boolean): number {
    const index = this.#count++;
    this.token[index] = token;
    this.pos[index] = position;
    this.#nSeqId[index] = 1;
    this.#seqId[index]![0] = sequence;
    this.logits[index] = output ? 1 : 0;
    return index;
  }

  /**
   * Decodes the batch built with {@link add}.
   * @returns llama_decode's status: 0 done, 1 no room in the KV cache, 2 aborted, < 0 error
   */
  decode(): number {
    this.#batch.n_tokens = this.#count;
    return this.model.lib.fn.llama_decode!(this.handle, this.#batch) as number;
  }

  /** The logits of batch index `index` (an output of the last decode): a view valid until the next decode. */
  logitsAt(index: number): Float32Array {
    const pointer = this.model.lib.fn.llama_get_logits_ith!(this.handle, index);
    if (pointer === null) throw new EngineError(`llama.cpp has no logits for batch index ${index}`);
    return new Float32Array(this.model.lib.koffi.view(pointer, this.model.vocabularySize * 4));
  }

  /** The pooling type llama.cpp chose for this context (0 none: one embedding per output token). */
  get poolingType(): number {
    return this.model.lib.fn.llama_pooling_type!(this.handle) as number;
  }

  /** The pooled embedding of a sequence, or (no pooling) the embedding of batch index `index`; copied. */
  embedding(sequence: number, index: number): Float32Array {
    const { fn, koffi } = this.model.lib;
    const pooled = (fn.llama_pooling_type!(this.handle) as number) !== 0;
    const pointer = pooled ? fn.llama_get_embeddings_seq!(this.handle, sequence) : fn.llama_get_embeddings_ith!(this.handle, index);
    if (pointer === null) throw new EngineError("llama.cpp returned no embedding");
    return new Float32Array(koffi.view(pointer, this.model.embeddingSize * 4)).slice();
  }

  /** Drops positions `from`… of a sequence (all of it with 0). */
  removeTokens(sequence: number, from: number): void {
    if (!this.model.lib.fn.llama_memory_seq_rm!(this.memory, sequence, from, -1)) {
      this.model.lib.fn.llama_memory_seq_rm!(this.memory, sequence, -1, -1);
    }
  }

  /** Copies a sequence's whole KV into another (n > 1 choices share their prompt). */
  copySequence(source: number, target: number): void {
    this.model.lib.fn.llama_memory_seq_rm!(this.memory, target, -1, -1);
    this.model.lib.fn.llama_memory_seq_cp!(this.memory, source, target, -1, -1);
  }

  /** Empties every sequence. */
  clear(): void {
    this.model.lib.fn.llama_memory_clear!(this.memory, true);
  }

  /** Applies these LoRA adapters (loaded on the model) with their scales, replacing the set applied before; none: the bare model. */
  setAdapters(adapters: readonly unknown[], scales: readonly number[]): void {
    const status = (adapters.length === 0
      ? this.model.lib.fn.llama_set_adapters_lora!(this.handle, null, 0, null)
      : this.model.lib.fn.llama_set_adapters_lora!(this.handle, adapters, adapters.length, Float32Array.from(scales))) as number;
    if (status !== 0) throw new EngineError(`llama.cpp could not apply the adapters (status ${status})`);
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    const { fn } = this.model.lib;
    fn.llama_batch_free!(this.#batch);
    fn.llama_free!(this.handle);
    if (this.#threadpool !== null) {
      const registry = fn.ggml_backend_reg_by_name!("CPU");
      const release = fn.ggml_backend_reg_get_proc_address!(registry, "ggml_threadpool_free");
      if (release !== null) this.model.lib.koffi.call(release, this.model.lib.threadpoolFree, this.#threadpool);
    }
  }
}

/**
 * Loads a LoRA adapter for a model; freed with the model, or alone with `llama_adapter_lora_free`
 * once no context applies it. @throws EngineError (naming the file, not its directory)
 */
export function loadAdapter(model: NativeModel, path: string): unknown {
  const adapter = model.lib.fn.llama_adapter_lora_init!(model.handle, path);
  if (adapter === null) throw new EngineError(`llama.cpp could not load the adapter ${basename(path)}`);
  return adapter;
}

const M_MMAP_THRESHOLD = -3;
const MMAP_THRESHOLD_BYTES = 128 * 1024;

/**
 * Keeps glibc's mmap threshold at its initial 128 KiB instead of letting it grow. Every change of
 * a context's LoRA adapter set makes llama.cpp free and reallocate its scheduler and compute
 * buffer (`sched_reserve`); with glibc's dynamic threshold, a freed multi-MiB buffer raises the
 * threshold, the next one comes from the heap, and the heap fragments: 8 adapters taking turns on
 * the `small` model grew the process by 20 MiB (for 7 MiB of adapters). With the threshold fixed,
 * large buffers are mapped and unmapped and resident memory stays flat. Process-wide, once.
 */
export function fixMmapThreshold(lib: LibllamaFfi): void {
  try {
    lib.fn.mallopt?.(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
  } catch {
    // Another C library: nothing to tune.
  }
}
