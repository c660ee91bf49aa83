import { InvalidModelFileError, InvalidRequestError } from "../core/errors.js";
import type { MemoryEstimate } from "../core/wire.js";

export type { MemoryEstimate };
import { readGgufHeader, type GgufHeader } from "../gguf/gguf-header-reader.js";
import { GgufMetadataReader } from "../gguf/gguf-metadata-reader.js";
import { ggufTensorLayout } from "../gguf/gguf-tensor-layout.js";

/** KV cache element types `grove serve` can be given, with their bytes per element. */
export const KV_CACHE_TYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  f32: 4,
  f16: 2,
  bf16: 2,
  q8_0: 34 / 32,
  q5_1: 24 / 32,
  q5_0: 22 / 32,
  q4_1: 20 / 32,
  q4_0: 18 / 32,
});

/**
 * Resident memory of a `grove serve` process before any model is loaded: Node.js, V8's heap,
 * fastify and the web app's static server, the gateway's clients, the decode worker thread and
 * the ggml/llama shared libraries. Measured on this machine (Linux x64, Node 20, node-llama-cpp
 * 3.21.1's CPU libraries) as the peak RSS of `grove serve` with the test-tiny preset after a
 * `grove bench` workload (135.9 MiB at ctx 512 × 4), less that model's weights, KV cache and
 * compute buffers (2.9 MiB); see docs/benchmarks.md, "Memory estimate against measured peak".
 * It was 156 MiB with node-llama-cpp's context (its whole package loaded at start), 136 MiB
 * before the service layer and the web app. Other platforms and Node versions differ: check
 * against `grove bench`.
 */
export const SERVING_BASELINE_BYTES = 133 * 1024 * 1024;

/** llama.cpp pads the context to a multiple of this (`GGML_PAD(n_ctx, 256)`). */
const CONTEXT_PAD = 256;
/** node-llama-cpp's default batch, and llama.cpp's default micro-batch. */
const MAX_UBATCH = 512;

/** What to estimate for. */
export interface MemoryEstimateOptions {
  /** Context tokens per slot, as `grove serve --ctx-size`. */
  contextSize: number;
  /** Parallel slots, as `grove serve --parallel`. */
  slots: number;
  /** KV cache element type. @default "f16" */
  cacheType?: string;
  /** Bytes of the serving process without a model. @default SERVING_BASELINE_BYTES */
  baselineBytes?: number;
}


/**
 * Estimates the memory `grove serve` takes for a model at `contextSize` × `slots`, from the GGUF
 * header alone (metadata and tensor table), following what llama.cpp allocates:
 *
 * - weights: the bytes of every tensor (`ggml_nbytes`), mapped from the file;
 * - KV cache: `n_layer × cells × (n_embd_k_gqa + n_embd_v_gqa) × bytes per element`, where node-llama-cpp
 *   asks for `pad256(ctx × slots)` cells and llama.cpp, with one stream per slot, gives each
 *   stream `pad256(n_ctx / slots)` of them;
 * - compute buffer (flash attention on, as llama.cpp's `auto` resolves on the CPU): for one
 *   micro-batch of `n_ubatch` tokens the logits `n_vocab × n_ubatch × 4`, the feed-forward and
 *   residual activations `(n_ff + 2·n_embd) × n_ubatch × 4`, and the F16 attention mask
 *   `n_ctx_seq × n_ubatch × 2` — what `sched_reserve` reports for the generated presets to
 *   the 0.01 MiB, and an upper bound for larger vocabularies, where ggml-alloc reuses the
 *   feed-forward memory for the logits (the 1B shape: 90 MiB estimated, 70.5 MiB reserved);
 * - the output buffer, `n_vocab × slots × 4`;
 * - the serving process itself ({@link SERVING_BASELINE_BYTES}).
 *
 * Not counted: the CPU backend's repacked copies of Q4_0/IQ4_NL/Q4_K weights on machines where
 * llama.cpp repacks them (check a measured peak), and mixture-of-experts or sliding-window
 * layouts (estimated as dense full attention).
 *
 * @throws InvalidModelFileError when the header lacks the shapes
 * @throws InvalidRequestError for a non-positive context or slot count, or an unknown cache type
 */
export function estimateMemory(header: GgufHeader, options: MemoryEstimateOptions): MemoryEstimate {
  const { contextSize, slots } = options;
  if (!Number.isInteger(contextSize) || contextSize < 1) throw new InvalidRequestError(`ctx must be a positive integer, got ${contextSize}`, { param: "ctx" });
  if (!Number.isInteger(slots) || slots < 1) throw new InvalidRequestError(`slots must be a positive integer, got ${slots}`, { param: "slots" });
  const cacheType = options.cacheType ?? "f16";
  const elementBytes = KV_CACHE_TYPE_BYTES[cacheType];
  if (elementBytes === undefined) {
    throw new InvalidRequestError(`Unknown KV cache type '${cacheType}'; known: ${Object.keys(KV_CACHE_TYPE_BYTES).join(", ")}`, { param: "cache_type" });
  }
  const metadata = GgufMetadataReader.fromHeader(header);
  const architecture = metadata.string("general.architecture", true);
  const key = (name: string) => `${architecture}.${name}`;
  const layers = metadata.uint32(key("block_count"), true);
  const embeddingLength = metadata.uint32(key("embedding_length"), true);
  const headCount = metadata.uint32(key("attention.head_count"), true);
  if (headCount === 0) throw new InvalidModelFileError(`${header.file}: ${key("attention.head_count")} is 0`);
  const headCountKv = metadata.uint32(key("attention.head_count_kv")) ?? headCount;
  const keyLength = metadata.uint32(key("attention.key_length")) ?? Math.floor(embeddingLength / headCount);
  const valueLength = metadata.uint32(key("attention.value_length")) ?? Math.floor(embeddingLength / headCount);
  const feedForwardLength = metadata.uint32(key("feed_forward_length")) ?? 4 * embeddingLength;
  const vocabularySize = metadata.uint32(key("vocab_size")) ?? metadata.stringArray("tokenizer.ggml.tokens")?.length ?? 0;

  let weightsBytes = 0;
  for (const tensor of ggufTensorLayout(header).tensors.values()) weightsBytes += tensor.bytes;

  const contextCells = pad(contextSize * slots, CONTEXT_PAD);
  const cellsPerSlot = pad(Math.floor(contextCells / slots), CONTEXT_PAD);
  const cacheCells = cellsPerSlot * slots;
  const keyValueWidth = { key: keyLength * headCountKv, value: valueLength * headCountKv };
  const kvCacheBytes = Math.ceil(layers * cacheCells * (keyValueWidth.key + keyValueWidth.value) * elementBytes);

  const microBatch = Math.min(MAX_UBATCH, contextCells);
  const computeBytes =
    microBatch * 4 * (vocabularySize + feedForwardLength + 2 * embeddingLength) + cellsPerSlot * microBatch * 2 + vocabularySize * slots * 4;

  const baselineBytes = options.baselineBytes ?? SERVING_BASELINE_BYTES;
  return {
    weightsBytes,
    kvCacheBytes,
    computeBytes,
    baselineBytes,
    totalBytes: weightsBytes + kvCacheBytes + computeBytes + baselineBytes,
    shape: { architecture, layers, embeddingLength, feedForwardLength, vocabularySize, keyValueWidth, cacheCells, microBatch },
  };
}

/** {@link estimateMemory} for a GGUF file: reads its header (not its tensor data). */
export async function estimateModelMemory(path: string, options: MemoryEstimateOptions): Promise<MemoryEstimate> {
  return estimateMemory(await readGgufHeader(path), options);
}

function pad(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
