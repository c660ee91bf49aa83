import { closeSync, openSync, readSync } from "node:fs";
import type { Digest } from "../../core/digest.js";
import { EngineError, InvalidRequestError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout } from "../../gguf/gguf-tensor-layout.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { GgufWriter } from "../../gguf/gguf-writer.js";
import { ADAPTER_BASE_DIGEST_KEY } from "../../store/adapter-check.js";
import { quoteUntrusted } from "../../store/model-ref.js";
import { SeededRandom } from "../generate/seeded-random.js";

// LoRA (Hu et al. 2021, as PEFT does it) for Grove's ggml trainer: what a LoRA run is asked for,
// which frozen base types ggml can train through, PEFT's initialisation, and the adapter file in
// llama.cpp's own format (what `llama_adapter_lora_init_impl` and `convert_lora_to_gguf.py` agree
// on). The graph itself is in ggml-train.ts.

/** The projections a LoRA run can adapt, by their short names (PEFT's `target_modules`). */
export const LORA_TARGETS = ["q", "k", "v", "o", "gate", "up", "down"] as const;

export type LoraTarget = (typeof LORA_TARGETS)[number];

/** The base tensor (in each block `blk.N.`) a target adapts. */
export const LORA_TARGET_TENSORS: Readonly<Record<LoraTarget, string>> = Object.freeze({
  q: "attn_q",
  k: "attn_k",
  v: "attn_v",
  o: "attn_output",
  gate: "ffn_gate",
  up: "ffn_up",
  down: "ffn_down",
});

/** A LoRA run's hyperparameters: W·x + (alpha / rank)·B·A·dropout(x) on each target. */
export interface LoraSettings {
  /** r: A is [n_in, r], B [r, n_out]. */
  rank: number;
  /** Scale numerator: the branch is multiplied by alpha / rank (stored as `adapter.lora.alpha`). */
  alpha: number;
  /** Probability of zeroing an input element of the branch during training, in [0, 1). */
  dropout: number;
  targets: readonly LoraTarget[];
}

/** Defaults of `grove finetune --lora` (PEFT's usual r 8, alpha 16, dropout 0.05, attention and MLP). */
export const LORA_DEFAULTS: Readonly<LoraSettings> = Object.freeze({ rank: 8, alpha: 16, dropout: 0.05, targets: LORA_TARGETS });

/**
 * Completes and checks LoRA settings; `targets` may be a comma-separated list (the CLI's).
 * @throws InvalidRequestError naming the flag at fault (`lora-rank`, `lora-alpha`, `lora-dropout`, `lora-targets`)
 */
export function resolveLoraSettings(request: { rank?: number; alpha?: number; dropout?: number; targets?: readonly string[] | string }): LoraSettings {
  const rank = request.rank ?? LORA_DEFAULTS.rank;
  const alpha = request.alpha ?? LORA_DEFAULTS.alpha;
  const dropout = request.dropout ?? LORA_DEFAULTS.dropout;
  const list = typeof request.targets === "string" ? request.targets.split(",").map((target) => target.trim()) : (request.targets ?? LORA_DEFAULTS.targets);
  const check = (ok: boolean, param: string, message: string): void => {
    if (!ok) throw new InvalidRequestError(message, { param });
  };
  check(Number.isInteger(rank) && rank >= 1 && rank <= 4096, "lora-rank", `lora-rank must be a whole number from 1 to 4096, got ${rank}`);
  check(Number.isFinite(alpha) && alpha > 0 && alpha <= 1e6, "lora-alpha", `lora-alpha must be a positive number, got ${alpha}`);
  check(Number.isFinite(dropout) && dropout >= 0 && dropout < 1, "lora-dropout", `lora-dropout must be in [0, 1), got ${dropout}`);
  check(list.length > 0, "lora-targets", `lora-targets must name at least one of ${LORA_TARGETS.join(", ")}`);
  for (const target of list) {
    check((LORA_TARGETS as readonly string[]).includes(target), "lora-targets", `Unknown lora-targets entry '${target}'; valid: ${LORA_TARGETS.join(", ")}`);
  }
  // In the canonical order, once each, so that the same choice makes the same recipe.
  const targets = LORA_TARGETS.filter((target) => list.includes(target));
  return { rank, alpha, dropout, targets };
}

/**
 * ggml types a frozen weight may have in a LoRA run on ggml's CPU backend. The input gradient of
 * `mul_mat(W, x)` is `out_prod(W, gradᵀ)` (ggml.c's backward of MUL_MAT), and
 * `ggml_compute_forward_out_prod` (ggml-cpu/ops.cpp) has kernels for F32, F16 and the quantized
 * types (each row dequantized) — not BF16 nor the integer and F64 types, where it aborts the
 * process. `get_rows` of the frozen `token_embd` needs no backward pass.
 */
const FROZEN_MATRIX_TYPES: ReadonlySet<string> = new Set([
  "F32", "F16",
  "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
  "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "IQ1_M",
  "TQ1_0", "TQ2_0", "MXFP4",
]);

/**
 * Why a frozen tensor of this type cannot be trained through (undefined: it can). Vectors (norms)
 * enter ggml_mul, which wants F32.
 */
export function frozenTypeProblem(type: string, dimensions: number): string | undefined {
  if (dimensions === 1) return type === "F32" ? undefined : `a ${type} vector (ggml_mul of the norms wants F32)`;
  if (FROZEN_MATRIX_TYPES.has(type)) return undefined;
  if (type === "BF16") return "BF16, which ggml's CPU backward pass cannot go through (OUT_PROD has no BF16 kernel) — quantize the base to F16 or Q8_0 first";
  return `${type}, which ggml's CPU backward pass cannot go through (OUT_PROD has no ${type} kernel)`;
}

/**
 * Checks, from its header, that a base can carry a LoRA run: a model, not an adapter, whose
 * every tensor ggml can back-propagate through in its own type (see {@link frozenTypeProblem}).
 * @throws InvalidRequestError naming the first tensor that cannot, and why
 */
export async function checkLoraBase(path: string, label: string): Promise<void> {
  const header = await readGgufHeader(path);
  if (header.metadata.get("general.type")?.value === "adapter") {
    throw new InvalidRequestError(`${quoteUntrusted(label)} is an adapter; a LoRA fine-tune trains on a base model`, { param: "model" });
  }
  for (const tensor of ggufTensorLayout(header).tensors.values()) {
    const problem = frozenTypeProblem(tensor.type, tensor.shape.length);
    if (problem !== undefined) throw new InvalidRequestError(`LoRA cannot train on ${quoteUntrusted(label)}: its ${tensor.name} is ${problem}`, { param: "lora" });
  }
}

/**
 * PEFT's initialisation of A: `kaiming_uniform_(a=√5)` over fan-in n_in, i.e. uniform in
 * ±1/√n_in. B starts at zero, so a fresh adapter leaves the model exactly as it was.
 */
export function initializeLoraA(target: Float32Array, inputs: number, seed: number, name: string): void {
  const random = new SeededRandom(seed, name);
  const bound = 1 / Math.sqrt(inputs);
  for (let index = 0; index < target.length; index++) target[index] = (random.nextFloat() * 2 - 1) * bound;
}

/**
 * Fills a dropout mask: each element 0 with probability p, else 1/(1-p) (inverted dropout, as
 * torch.nn.Dropout), so the branch's expected input is unchanged.
 */
export function fillDropoutMask(target: Float32Array, probability: number, random: SeededRandom): void {
  const kept = 1 / (1 - probability);
  const threshold = Math.floor(probability * 0x100000000);
  for (let index = 0; index < target.length; index++) target[index] = random.nextUint32() < threshold ? 0 : kept;
}

/** One adapted projection: `blk.N.attn_q.weight` with its A ([n_in, r]) and B ([r, n_out]) values. */
export interface LoraPair {
  /** The base tensor's name, e.g. `blk.0.attn_q.weight`. */
  name: string;
  inputs: number;
  outputs: number;
  a: Float32Array;
  b: Float32Array;
}

/** Options of {@link writeLoraAdapter}. */
export interface WriteLoraAdapterOptions {
  /** The base GGUF: its architecture and name are copied. */
  basePath: string;
  /** Pinned in the adapter under {@link ADAPTER_BASE_DIGEST_KEY}, when known. */
  baseDigest?: Digest;
  alpha: number;
  rank: number;
  pairs: readonly LoraPair[];
  outPath: string;
}

/**
 * Writes a LoRA adapter GGUF as llama.cpp reads it (`llama_adapter_lora_init_impl`):
 * `general.type = adapter`, `general.architecture` of the base, `adapter.type = lora`,
 * `adapter.lora.alpha` (llama.cpp scales B·A·x by alpha / rank), and per adapted tensor an F32
 * `X.weight.lora_a` [n_in, r] and `X.weight.lora_b` [r, n_out] — the shapes
 * `convert_lora_to_gguf.py` writes. Under `.partial`, verified, then renamed.
 */
export async function writeLoraAdapter(options: WriteLoraAdapterOptions): Promise<{ digest: Digest; fileSize: number }> {
  const base = await readGgufHeader(options.basePath);
  const writer = new GgufWriter();
  writer.setString("general.architecture", String(base.metadata.get("general.architecture")?.value));
  writer.setString("general.type", "adapter");
  writer.setString("general.name", `${String(base.metadata.get("general.name")?.value ?? "model")}-lora-r${options.rank}`);
  writer.setString("adapter.type", "lora");
  writer.setFloat32("adapter.lora.alpha", options.alpha);
  if (options.baseDigest !== undefined) writer.setString(ADAPTER_BASE_DIGEST_KEY, options.baseDigest);
  for (const pair of options.pairs) {
    writer.addTensor(`${pair.name}.lora_a`, [pair.inputs, options.rank], "F32", pair.a);
    writer.addTensor(`${pair.name}.lora_b`, [options.rank, pair.outputs], "F32", pair.b);
  }
  const written = await writer.write(options.outPath, { verify: async (path) => void (await validateGgufFile(path)) });
  return { digest: written.digest, fileSize: written.fileSize };
}

/**
 * Reads the A and B values of an adapter written by {@link writeLoraAdapter} (a checkpoint), by
 * base tensor name.
 * @throws EngineError when a pair is missing, of another rank or not F32
 */
export async function readLoraAdapter(path: string, rank: number): Promise<Map<string, { a: Float32Array; b: Float32Array }>> {
  const layout = ggufTensorLayout(await readGgufHeader(path));
  const pairs = new Map<string, { a: Float32Array; b: Float32Array }>();
  const descriptor = openSync(path, "r");
  try {
    const read = (name: string, expectedRank: number, rankAxis: 0 | 1): Float32Array => {
      const tensor = layout.tensors.get(name);
      if (tensor === undefined || tensor.type !== "F32" || tensor.shape[rankAxis] !== expectedRank) throw new EngineError(`The adapter checkpoint ${path} has no F32 ${name} of rank ${expectedRank}`);
      const bytes = Buffer.alloc(tensor.bytes);
      let done = 0;
      while (done < tensor.bytes) done += readSync(descriptor, bytes, done, tensor.bytes - done, tensor.fileOffset + done);
      return new Float32Array(bytes.buffer, bytes.byteOffset, tensor.bytes / 4);
    };
    for (const name of layout.tensors.keys()) {
      if (!name.endsWith(".lora_a")) continue;
      const base = name.slice(0, -".lora_a".length);
      pairs.set(base, { a: read(name, rank, 1), b: read(`${base}.lora_b`, rank, 0) });
    }
  } finally {
    closeSync(descriptor);
  }
  return pairs;
}
