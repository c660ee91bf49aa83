import type { FinishReason, TokenLogprob } from "./engine.js";
import type { SamplerSettings } from "../native/sampler-chain.js";

/**
 * The messages between a loaded model (main thread) and its decode worker. The worker owns the
 * llama.cpp context and runs the loop; the main thread owns admission (the slot pool) and HTTP.
 */

/** What the worker loads. */
export interface DecodeWorkerData {
  readonly path: string;
  readonly slots: number;
  /** Tokens each slot may hold; with `unifiedKv`, also the whole cache's size. */
  readonly contextSize: number;
  /** One KV buffer shared by every slot (llama.cpp's `kv_unified`), instead of one of `contextSize` each. */
  readonly unifiedKv: boolean;
  readonly threads: number;
  readonly batchSize: number;
  readonly ubatchSize: number;
  /** Prompt tokens decoded per step while other slots generate (a prompt never stalls them longer). */
  readonly prefillChunk: number;
  readonly cacheTypeK: number;
  readonly cacheTypeV: number;
  readonly flashAttention: number;
  readonly gpuLayers: number;
  /** Map the model file instead of reading it. */
  readonly mmap: boolean;
  /** llama.cpp's pooling type of the embeddings context (-1: the model's own); 0 (none) returns every token's vector. */
  readonly poolingType: number;
  readonly threadpoolPoll: number | undefined;
  readonly libraryDirectory: string | undefined;
  /** Text is sent to the main thread at most this often (a first token or an ending at once). */
  readonly flushMs: number;
  /** Shared counter the main thread bumps after posting, so an idle worker wakes at once. */
  readonly signal: SharedArrayBuffer;
}

/**
 * One LoRA adapter a generation runs with: `key` names an adapter the worker loaded
 * (`adapter-load`), `scale` multiplies its B·A (the card's `adapter_scale`, or the request's).
 */
export interface AdapterUse {
  readonly key: string;
  readonly scale: number;
}

/**
 * The canonical name of an adapter set: its adapters by key with their scales, sorted, those of
 * scale 0 left out (llama.cpp skips them, so the set computes what the base computes). Two
 * generations batch together exactly when their names are equal; `""` is the bare base.
 */
export function adapterSetKey(adapters: readonly AdapterUse[] | undefined): string {
  if (adapters === undefined || adapters.length === 0) return "";
  return adapters
    .filter((adapter) => adapter.scale !== 0)
    .map((adapter) => `${adapter.key}\u0000${adapter.scale}`)
    .sort()
    .join("\u0001");
}

/** One choice of a generation runs in one slot; `n` choices share the prompt (KV copied). */
export interface GenerateRequest {
  readonly type: "generate";
  readonly id: number;
  /** The slots of the choices, the first one evaluates the prompt. */
  readonly slots: readonly number[];
  readonly prompt: Int32Array;
  readonly maxTokens: number;
  readonly sampling: SamplerSettings;
  readonly stop: readonly string[];
  readonly trimTrailingWhitespace: boolean;
  /** Alternatives per generated token's log-probability; undefined: none computed. */
  readonly logprobs: number | undefined;
  /** Score the prompt's tokens too (`echo`): no prefix is reused. */
  readonly promptLogprobs: boolean;
  /** Spell special tokens in the text (tool-call and channel markers), end-of-generation tokens excepted. */
  readonly specialText: boolean;
  /** `logprobs` of the distribution left after the sampler chain (llama-server's `post_sampling_probs`), not of the raw logits. */
  readonly postSamplingProbs: boolean;
  /** Report the prompt's evaluation: once when it starts, then after each step that evaluated part of it. */
  readonly progress: boolean;
  /** The LoRA adapters (loaded on this model) the generation runs with; empty: the bare base. */
  readonly adapters: readonly AdapterUse[];
}

export type ToWorker =
  | GenerateRequest
  | { readonly type: "cancel"; readonly id: number }
  | { readonly type: "embed"; readonly id: number; readonly inputs: readonly Int32Array[] }
  /** Load a LoRA adapter file on the model under `key` (answered by `adapter-loaded` or `failed`). */
  | { readonly type: "adapter-load"; readonly id: number; readonly key: string; readonly path: string }
  /** Free an adapter once no running generation uses it. */
  | { readonly type: "adapter-free"; readonly key: string }
  | { readonly type: "close" };

export type FromWorker =
  | { readonly type: "ready"; readonly contextSize: number; readonly trainContextSize: number; readonly embeddingSize: number }
  | { readonly type: "failed"; readonly id: number | null; readonly message: string }
  | { readonly type: "first"; readonly id: number }
  | {
      readonly type: "progress";
      readonly id: number;
      /** Prompt tokens in all. */
      readonly total: number;
      /** Prompt tokens the slot already held (not evaluated). */
      readonly cache: number;
      /** Prompt tokens in the slot's cache now, the cached ones included. */
      readonly processed: number;
      /** Milliseconds since the decode thread took the request. */
      readonly timeMs: number;
    }
  | { readonly type: "text"; readonly id: number; readonly choice: number; readonly text: string; readonly tokens: number[]; readonly logprobs?: TokenLogprob[] }
  | {
      readonly type: "done";
      readonly id: number;
      readonly choice: number;
      readonly slot: number;
      readonly finishReason: FinishReason;
      readonly promptTokens: number;
      readonly completionTokens: number;
      readonly cachedTokens: number;
      /** The stop string that ended it, when one did. */
      readonly stopString?: string;
      /** What the slot's KV holds now, for prefix reuse by the next request. */
      readonly kv: Int32Array;
      readonly promptLogprobs?: TokenLogprob[];
    }
  | { readonly type: "adapter-loaded"; readonly id: number }
  | { readonly type: "embedded"; readonly id: number; readonly vectors: Float32Array[]; readonly tokenVectors?: Float32Array[][] }
  | { readonly type: "log"; readonly level: "warn" | "error"; readonly message: string }
  /** A shared KV cache was full: this idle slot's cache was dropped to make room (it holds nothing now). */
  | { readonly type: "purged"; readonly slot: number };
