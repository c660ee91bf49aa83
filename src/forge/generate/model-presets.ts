import { InvalidRequestError } from "../../core/errors.js";

/**
 * Architectures a generated model can have, as llama.cpp names them (`general.architecture`):
 * `llama` (also Mistral's, which llama.cpp converts to `llama`); `qwen2` (Qwen2 and Qwen2.5: biases
 * on the query, key and value projections); `qwen3` (per-head query and key RMS norms, no biases).
 */
export type GeneratedArchitecture = "llama" | "qwen2" | "qwen3";

/** The shape of a generated model. */
export interface ModelPreset {
  /** Preset name, as given to `grove create --preset`. */
  readonly name: string;
  /** One line for `--help` and error messages. */
  readonly description: string;
  /** `general.architecture` and the prefix of the hyperparameter keys. @default "llama" */
  readonly architecture?: GeneratedArchitecture;
  /** Hidden size (n_embd). */
  readonly embeddingLength: number;
  /** Transformer layers (n_layer). */
  readonly blockCount: number;
  /** Attention heads (n_head). */
  readonly headCount: number;
  /** Key/value heads (n_head_kv); fewer than `headCount` means grouped-query attention. */
  readonly headCountKv: number;
  /**
   * Values per attention head, written as `attention.key_length`/`value_length` when it is not
   * embeddingLength / headCount (Qwen3 and Mistral Nemo have wider heads). @default embeddingLength / headCount
   */
  readonly headDimension?: number;
  /** Feed-forward hidden size (n_ff). */
  readonly feedForwardLength: number;
  /** Tokens in the generated vocabulary (ignored with a copied vocabulary). */
  readonly vocabularySize: number;
  /** Training context length written to the file. */
  readonly contextLength: number;
  /** RoPE base frequency. @default 10000 */
  readonly ropeFreqBase: number;
  /** RMS norm epsilon. @default 1e-5 */
  readonly rmsEpsilon: number;
  /**
   * Llama 3's RoPE scaling ("llama3" in Hugging Face's config), written as the per-frequency
   * factors llama.cpp's converter computes into `rope_freqs.weight`. @default none
   */
  readonly llama3RopeScaling?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContextLength: number };
  /**
   * Standard deviation of the random token embeddings. llama.cpp's trainer never updates
   * `token_embd.weight`, so for a model trained from scratch it is a fixed random code whose
   * scale decides how much of the token's identity survives the blocks' additions. @default 0.02
   */
  readonly tokenEmbeddingStd?: number;
}

/** Names of the built-in presets. */
export type ModelPresetName = "test-tiny" | "llama3-tiny" | "qwen2-tiny" | "qwen3-tiny" | "small" | "llama-1b" | "demo-s" | "demo-m" | "demo-l";

const COMMON = { ropeFreqBase: 10000, rmsEpsilon: 1e-5 } as const;
/** Qwen2/2.5 and Qwen3's RoPE base and norm epsilon. */
const QWEN = { ropeFreqBase: 1_000_000, rmsEpsilon: 1e-6 } as const;
/** test-tiny's shape, shared by its versions in the other architectures. */
const TINY = { embeddingLength: 64, blockCount: 2, headCount: 4, headCountKv: 2, feedForwardLength: 192, vocabularySize: 512, contextLength: 1024 } as const;

/** The built-in presets, smallest first. */
export const MODEL_PRESETS: Readonly<Record<ModelPresetName, ModelPreset>> = Object.freeze({
  "test-tiny": {
    name: "test-tiny",
    description: "~0.1M parameters: loads and generates in milliseconds, for unit tests",
    ...TINY,
    ...COMMON,
  },
  // test-tiny as Llama 3.1–3.3 (their RoPE base and scaling factors), and in the other
  // architectures Grove's trainer builds, with Qwen's RoPE base and norm epsilon; qwen3-tiny's
  // heads are wider than embeddingLength / headCount, as Qwen3's are.
  "llama3-tiny": {
    name: "llama3-tiny",
    description: "test-tiny with Llama 3's RoPE (base 500000, rope_freqs.weight scaling factors), for unit tests",
    ...TINY,
    ropeFreqBase: 500_000,
    rmsEpsilon: 1e-5,
    // Llama 3.1's factors, with its original context at the same fraction of the context (8,192
    // of 131,072): within a training window the scaled frequencies then turn noticeably.
    llama3RopeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 },
  },
  "qwen2-tiny": {
    name: "qwen2-tiny",
    description: "test-tiny as Qwen2/Qwen2.5 (qwen2: query, key and value biases), for unit tests",
    architecture: "qwen2",
    ...TINY,
    ...QWEN,
  },
  "qwen3-tiny": {
    name: "qwen3-tiny",
    description: "test-tiny as Qwen3 (qwen3: per-head query and key norms, 32-wide heads), for unit tests",
    architecture: "qwen3",
    ...TINY,
    headDimension: 32,
    ...QWEN,
  },
  small: {
    name: "small",
    description: "~6M parameters: a quick demo and integration-test model",
    embeddingLength: 256,
    blockCount: 6,
    headCount: 8,
    headCountKv: 4,
    feedForwardLength: 768,
    vocabularySize: 2048,
    contextLength: 2048,
    ...COMMON,
  },
  // The demo family (issue 6): three sizes sharing a 4,096-token vocabulary, trained from scratch.
  // llama.cpp's trainer updates neither the token embeddings nor the attention's key and value
  // projections (they reach the loss only through the KV cache, which has no backward pass), so
  // those stay as initialised: the token embeddings are a unit-scale random code, so that the
  // blocks' additions do not drown the token's identity, and there are as many KV heads as heads,
  // so that the fixed random value projection keeps the whole hidden state (docs/demo.md).
  "demo-s": {
    name: "demo-s",
    description: "~1.9M parameters: the demo family's small base",
    embeddingLength: 128,
    blockCount: 4,
    headCount: 4,
    headCountKv: 4,
    tokenEmbeddingStd: 1,
    feedForwardLength: 384,
    vocabularySize: 4096,
    contextLength: 512,
    ...COMMON,
  },
  "demo-m": {
    name: "demo-m",
    description: "~5.5M parameters: the demo family's medium base",
    embeddingLength: 256,
    blockCount: 4,
    headCount: 4,
    headCountKv: 4,
    tokenEmbeddingStd: 1,
    feedForwardLength: 768,
    vocabularySize: 4096,
    contextLength: 512,
    ...COMMON,
  },
  "demo-l": {
    name: "demo-l",
    description: "~10.6M parameters: the demo family's large base",
    embeddingLength: 320,
    blockCount: 6,
    headCount: 5,
    headCountKv: 5,
    tokenEmbeddingStd: 1,
    feedForwardLength: 960,
    vocabularySize: 4096,
    contextLength: 512,
    ...COMMON,
  },
  "llama-1b": {
    name: "llama-1b",
    description: "~1.1B parameters, shaped like Llama 3.2 1B: honest speed figures",
    embeddingLength: 2048,
    blockCount: 16,
    headCount: 32,
    headCountKv: 8,
    feedForwardLength: 8192,
    vocabularySize: 32000,
    contextLength: 4096,
    ...COMMON,
  },
});

/** True when `name` is a built-in preset. */
export function isModelPresetName(name: string): name is ModelPresetName {
  return Object.hasOwn(MODEL_PRESETS, name);
}

/**
 * The preset called `name`.
 *
 * @param param the flag or field to blame in the error
 * @throws InvalidRequestError listing the valid names for an unknown one
 */
export function modelPreset(name: string, param = "preset"): ModelPreset {
  if (!isModelPresetName(name)) {
    throw new InvalidRequestError(`Unknown preset '${name}'; valid presets: ${Object.keys(MODEL_PRESETS).join(", ")}`, { param });
  }
  return MODEL_PRESETS[name];
}
