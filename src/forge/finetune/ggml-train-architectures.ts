// What Grove's ggml training graph does differently per architecture. The graph in ggml-train.ts
// is llama.cpp's `llm_build_llama`; the architectures here differ from it only in the few places
// this table names, each read from llama.cpp's own graph builder (src/models/<arch>.cpp) and
// `llama_model_rope_type` (src/llama-model.cpp). Mistral has no entry of its own: llama.cpp's
// converter writes Mistral 7B, Nemo and Small (`MistralForCausalLM`) as `llama`, and its separate
// `mistral3` architecture (Ministral 3: YaRN RoPE and attention temperature) is not trained here.

/** ggml's RoPE modes (`GGML_ROPE_TYPE_*`). */
export const GGML_ROPE_TYPE = Object.freeze({
  /** Rotates pairs of consecutive values of a head (llama.cpp's LLAMA_ROPE_TYPE_NORM). */
  normal: 0,
  /** Rotates value i with value i + n_rot/2 (GPT-NeoX's layout; LLAMA_ROPE_TYPE_NEOX). */
  neox: 2,
});

/** The per-architecture parts of the training graph. */
export interface GgmlTrainArchitecture {
  /** `general.architecture`, also the prefix of the hyperparameter keys (`qwen2.block_count`). */
  readonly name: string;
  /** ggml RoPE mode of queries and keys, as llama.cpp's `llama_model_rope_type` gives it. */
  readonly ropeType: number;
  /**
   * Per-head RMS norms of queries and keys before RoPE, weighted by `blk.N.attn_q_norm.weight`
   * and `blk.N.attn_k_norm.weight` (one value per head dimension) — Qwen3.
   */
  readonly headNorms: boolean;
}

// Biases are not a feature of an architecture here: llama.cpp adds `attn_q/k/v.bias`,
// `attn_output.bias` and `output.bias` wherever a file has them (Qwen2 always does; a Llama file
// may), so the graph adds every bias tensor it finds.
const ARCHITECTURES: Readonly<Record<string, GgmlTrainArchitecture>> = Object.freeze({
  llama: { name: "llama", ropeType: GGML_ROPE_TYPE.normal, headNorms: false },
  qwen2: { name: "qwen2", ropeType: GGML_ROPE_TYPE.neox, headNorms: false },
  qwen3: { name: "qwen3", ropeType: GGML_ROPE_TYPE.neox, headNorms: true },
});

/** The architectures Grove's ggml trainer builds, for messages and docs. */
export const GGML_TRAIN_ARCHITECTURES: readonly string[] = Object.freeze(Object.keys(ARCHITECTURES));

/** The graph's features for `architecture` (a `general.architecture` value), or undefined for one it cannot build. */
export function ggmlTrainArchitecture(architecture: unknown): GgmlTrainArchitecture | undefined {
  return typeof architecture === "string" && Object.hasOwn(ARCHITECTURES, architecture) ? ARCHITECTURES[architecture] : undefined;
}
