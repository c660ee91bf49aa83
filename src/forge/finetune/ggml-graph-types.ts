import type { GgmlTrainArchitecture } from "./ggml-train-architectures.js";

// The types the training graph (ggml-train.ts) and the LoRA tensors it adds (lora-tensors.ts) share.

/** The ggml functions declared through koffi, by name: koffi's declared functions are untyped. */
// biome-ignore lint/suspicious/noExplicitAny: koffi's declared functions are untyped
export type Ggml = Record<string, (...args: any[]) => any>;

/** The hyperparameters the graph needs, from a GGUF's metadata and shapes. */
export interface Shape {
  /** What the graph does for this file's architecture (RoPE mode, per-head norms). */
  architecture: GgmlTrainArchitecture;
  embedding: number;
  heads: number;
  /** Values per attention head (`attention.key_length`, else embedding / heads). */
  headSize: number;
  headsKv: number;
  blocks: number;
  feedForward: number;
  vocabulary: number;
  ropeBase: number;
  /** RoPE's frequency scale: 1 / `rope.scaling.factor` for linear scaling, else 1. */
  ropeScale: number;
  ropeDimensions: number;
  rmsEpsilon: number;
  contextLength: number;
}
