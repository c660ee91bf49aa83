import { EngineError } from "../../core/errors.js";
import { loadLibllamaFfi, type LibllamaFfi } from "../../native/libllama.js";

// Quality measurements straight from llama.cpp's logits (koffi → libllama, the library
// node-llama-cpp ships): node-llama-cpp hands out next-token probabilities only as a Map per
// position, ~20 ms each at a 32k vocabulary; here a row of logits is a Float32Array view.
// Blocking and abortable by GGML_ASSERT: run in the eval worker process.

const LLAMA_LOAD_MODE_MMAP = 1;

/** A model loaded for evaluation. */
export interface EvalModel {
  readonly path: string;
  readonly model: unknown;
  readonly vocab: unknown;
  readonly vocabularySize: number;
  readonly addBos: boolean;
  readonly bos: number;
  readonly contextLength: number;
}

/** How contexts are shaped; the defaults are llama-perplexity's. */
export interface EvalContextOptions {
  /** Tokens per sequence (chunk). */
  contextSize: number;
  /** Logical batch: `batch / contextSize` chunks are evaluated together. @default 2048 */
  batchSize?: number;
  /** Physical batch. @default 512 */
  ubatchSize?: number;
  threads: number;
}

interface Struct {
  [field: string]: unknown;
}

/** A context with a reusable batch: the views write straight into llama_batch's arrays. */
export class EvalContext {
  readonly ctx: unknown;
  readonly sequences: number;
  readonly contextSize: number;
  readonly batchSize: number;
  readonly #lib: LibllamaFfi;
  readonly #batch: Struct;
  readonly #token: Int32Array;
  readonly #pos: Int32Array;
  readonly #nSeqId: Int32Array;
  readonly #seqId: Int32Array[];
  readonly #logits: Int8Array;
  readonly #vocabularySize: number;

  private constructor(lib: LibllamaFfi, ctx: unknown, sequences: number, contextSize: number, batchSize: number, vocabularySize: number) {
    this.#lib = lib;
    this.ctx = ctx;
    this.sequences = sequences;
    this.contextSize = contextSize;
    this.batchSize = batchSize;
    this.#vocabularySize = vocabularySize;
    const { koffi, fn } = lib;
    this.#batch = fn.llama_batch_init!(batchSize, 0, 1) as Struct;
    this.#token = new Int32Array(koffi.view(this.#batch.token, batchSize * 4));
    this.#pos = new Int32Array(koffi.view(this.#batch.pos, batchSize * 4));
    this.#nSeqId = new Int32Array(koffi.view(this.#batch.n_seq_id, batchSize * 4));
    this.#logits = new Int8Array(koffi.view(this.#batch.logits, batchSize));
    const pointers = koffi.decode(this.#batch.seq_id, "void *", batchSize) as unknown[];
    this.#seqId = pointers.map((pointer) => new Int32Array(koffi.view(pointer, 4)));
  }

  /**
   * A context of `sequences × contextSize` tokens (one KV stream per sequence), as
   * llama-perplexity makes: `sequences = max(1, batch / contextSize)`.
   */
  static async create(model: EvalModel, options: EvalContextOptions): Promise<EvalContext> {
    const lib = await loadLibllamaFfi();
    // A chunk is decoded in one batch: at least one context of tokens.
    const batch = Math.max(options.batchSize ?? 2048, options.contextSize);
    const sequences = Math.max(1, Math.floor(batch / options.contextSize));
    const total = sequences * options.contextSize;
    const params = lib.fn.llama_context_default_params!() as Struct;
    Object.assign(params, {
      n_ctx: total,
      n_batch: Math.min(batch, total),
      n_ubatch: options.ubatchSize ?? 512,
      n_seq_max: sequences,
      n_threads: options.threads,
      n_threads_batch: options.threads,
    });
    const ctx = lib.fn.llama_init_from_model!(model.model, params);
    if (ctx === null) throw new EngineError(`llama.cpp could not create a context of ${total} tokens for ${model.path}`);
    return new EvalContext(lib, ctx, sequences, options.contextSize, Math.min(batch, total), model.vocabularySize);
  }

  /** Empties the KV cache. */
  clear(): void {
    this.#lib.fn.llama_memory_clear!(this.#lib.fn.llama_get_memory!(this.ctx), true);
  }

  /**
   * Decodes `tokens[i]` at `positions[i]` in sequence `sequences[i]`, asking for logits where
   * `outputs[i]`. Up to batchSize tokens.
   * @throws EngineError when llama_decode fails
   */
  decode(tokens: ArrayLike<number>, positions: ArrayLike<number>, sequenceIds: ArrayLike<number>, outputs: ArrayLike<boolean>): void {
    const count = tokens.length;
    if (count > this.batchSize) throw new EngineError(`A batch of ${count} tokens is larger than ${this.batchSize}`);
    for (let index = 0; index < count; index++) {
      this.#token[index] = tokens[index]!;
      this.#pos[index] = positions[index]!;
      this.#nSeqId[index] = 1;
      this.#seqId[index]![0] = sequenceIds[index]!;
      this.#logits[index] = outputs[index] ? 1 : 0;
    }
    this.#batch.n_tokens = count;
    const status = this.#lib.fn.llama_decode!(this.ctx, this.#batch) as number;
    if (status !== 0) throw new EngineError(`llama_decode failed with status ${status}`);
  }

  /** `rows` rows of logits starting at the output of batch index `index` (contiguous outputs). */
  logitRows(index: number, rows: number): Float32Array {
    const pointer = this.#lib.fn.llama_get_logits_ith!(this.ctx, index);
    if (pointer === null) throw new EngineError(`llama.cpp has no logits for batch index ${index}`);
    return new Float32Array(this.#lib.koffi.view(pointer, rows * this.#vocabularySize * 4));
  }

  dispose(): void {
    this.#lib.fn.llama_batch_free!(this.#batch);
    this.#lib.fn.llama_free!(this.ctx);
  }
}

/** Loads a GGUF for evaluation (mmap, CPU). @throws EngineError when llama.cpp cannot */
export async function loadEvalModel(path: string): Promise<EvalModel> {
  const { fn } = await loadLibllamaFfi();
  const params = fn.llama_model_default_params!() as Struct;
  params.load_mode = LLAMA_LOAD_MODE_MMAP;
  const model = fn.llama_model_load_from_file!(path, params);
  if (model === null) throw new EngineError(`llama.cpp could not load ${path}`);
  const vocab = fn.llama_model_get_vocab!(model);
  return {
    path,
    model,
    vocab,
    vocabularySize: fn.llama_vocab_n_tokens!(vocab) as number,
    addBos: fn.llama_vocab_get_add_bos!(vocab) as boolean,
    bos: fn.llama_vocab_bos!(vocab) as number,
    contextLength: fn.llama_model_n_ctx_train!(model) as number,
  };
}

/** Frees a model loaded by {@link loadEvalModel}. */
export async function freeEvalModel(model: EvalModel): Promise<void> {
  (await loadLibllamaFfi()).fn.llama_model_free!(model.model);
}

/** Tokenizes as llama.cpp's `common_tokenize` (special tokens parsed). */
export async function tokenize(model: EvalModel, text: string, addSpecial: boolean): Promise<Int32Array> {
  const { fn } = await loadLibllamaFfi();
  const bytes = Buffer.byteLength(text, "utf8");
  let capacity = bytes + 2 * Number(addSpecial) + 8;
  for (;;) {
    const out = new Int32Array(capacity);
    const count = fn.llama_tokenize!(model.vocab, text, bytes, out, capacity, addSpecial, true) as number;
    if (count >= 0) return out.slice(0, count);
    capacity = -count;
  }
}

/** The bytes of one token's text (special tokens rendered), for bits per byte. */
export async function tokenBytes(model: EvalModel, token: number): Promise<number> {
  const { fn } = await loadLibllamaFfi();
  const buffer = new Uint8Array(256);
  const count = fn.llama_token_to_piece!(model.vocab, token, buffer, buffer.length, 0, true) as number;
  return count >= 0 ? count : -count;
}

/** log Σ exp(row) over one row of logits, stably. */
export function logSumExp(logits: Float32Array, offset: number, length: number): number {
  let max = -Infinity;
  for (let index = offset; index < offset + length; index++) if (logits[index]! > max) max = logits[index]!;
  let sum = 0;
  for (let index = offset; index < offset + length; index++) sum += Math.exp(logits[index]! - max);
  return max + Math.log(sum);
}

/** Index of the largest value of one row. */
export function argmax(logits: Float32Array, offset: number, length: number): number {
  let best = 0;
  let max = -Infinity;
  for (let index = 0; index < length; index++) {
    if (logits[offset + index]! > max) {
      max = logits[offset + index]!;
      best = index;
    }
  }
  return best;
}
