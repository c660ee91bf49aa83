import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { GgufWriter } from "../../gguf/gguf-writer.js";
import { validateGgufFile, validateGgufHeader } from "../../gguf/gguf-validator.js";
import { ADAPTER_BASE_DIGEST_KEY } from "../../store/adapter-check.js";
import { digestOfFile } from "../../store/file-digest.js";
import { SeededRandom } from "./seeded-random.js";

/** The per-block linear layers of a Llama model an adapter can target. */
export const ADAPTER_TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] as const;

export type AdapterTarget = (typeof ADAPTER_TARGETS)[number];


/** Options of {@link generateAdapter}. */
export interface GenerateAdapterOptions {
  /** The base model GGUF the adapter is for; its architecture and tensor shapes are copied. */
  basePath: string;
  /** Seed of the adapter weights: a non-negative integer. Same base, seed and options → same bytes. */
  seed: number;
  /** Where to write the adapter (its directory must exist). An existing file is replaced. */
  outPath: string;
  /** LoRA rank r: `lora_a` is [n_in, r], `lora_b` [r, n_out]. @default 4 */
  rank?: number;
  /** Layers to adapt in every block. @default ["attn_q", "attn_v"], or every linear layer when `strong` */
  targets?: readonly AdapterTarget[];
  /**
   * Make B·A as large as the base weights (instead of ~1/20 of them), so that the adapter
   * visibly changes greedy output — for tests of adapter serving.
   * @default false
   */
  strong?: boolean;
  /** `adapter.lora.alpha`; llama.cpp scales B·A by alpha / rank. @default rank (scale 1) */
  alpha?: number;
  /** Record the base's digest under {@link ADAPTER_BASE_DIGEST_KEY}, pinning the adapter to that exact file. @default true */
  recordBaseDigest?: boolean;
}

/** What {@link generateAdapter} wrote. */
export interface GenerateAdapterResult {
  path: string;
  digest: Digest;
  /** The base's digest, when it was recorded in the file. */
  baseDigest?: Digest;
  rank: number;
  /** Number of lora_a/lora_b pairs. */
  pairs: number;
  parameterCount: number;
  fileSize: number;
}

const BASE_STD = 0.02; // the generated models' init std (generate-model.ts)

/**
 * Writes a LoRA adapter GGUF for a base model, with the keys llama.cpp's
 * `llama_adapter_lora_init` reads (`general.type = adapter`, `general.architecture` of the
 * base, `adapter.type = lora`, `adapter.lora.alpha`) and one F32 `X.weight.lora_a` [n_in, r] /
 * `X.weight.lora_b` [r, n_out] pair per targeted layer. The weights are seeded random, not
 * trained: the adapter exists to exercise import, lineage and serving.
 *
 * @example
 * await generateAdapter({ basePath: "tiny.gguf", seed: 1, outPath: "tiny-lora.gguf", strong: true });
 * @throws InvalidRequestError for a bad rank, seed or target, or a base without a targeted tensor
 * @throws InvalidModelFileError when the base is not a valid GGUF model
 */
export async function generateAdapter(options: GenerateAdapterOptions): Promise<GenerateAdapterResult> {
  const rank = options.rank ?? 4;
  if (!Number.isSafeInteger(rank) || rank < 1) throw new InvalidRequestError(`Rank must be a positive integer, got ${rank}`, { param: "rank" });
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new InvalidRequestError(`Seed must be a non-negative integer, got ${options.seed}`, { param: "seed" });
  }
  const strong = options.strong ?? false;
  const targets = options.targets ?? (strong ? ADAPTER_TARGETS : ["attn_q", "attn_v"]);
  for (const target of targets) {
    if (!ADAPTER_TARGETS.includes(target)) throw new InvalidRequestError(`Unknown adapter target '${target}'; valid: ${ADAPTER_TARGETS.join(", ")}`, { param: "targets" });
  }
  const base = validateGgufHeader(await readGgufHeader(options.basePath));
  if (base.summary.adapterType !== undefined) throw new InvalidRequestError(`${options.basePath} is itself an adapter, not a base model`, { param: "base" });
  const baseDigest = options.recordBaseDigest === false ? undefined : await digestOfFile(options.basePath);

  const writer = new GgufWriter();
  writer.setString("general.architecture", base.summary.architecture);
  writer.setString("general.type", "adapter");
  writer.setString("general.name", `${base.summary.name ?? "model"}-lora-r${rank}-s${options.seed}`);
  writer.setString("adapter.type", "lora");
  writer.setFloat32("adapter.lora.alpha", options.alpha ?? rank);
  if (baseDigest !== undefined) writer.setString(ADAPTER_BASE_DIGEST_KEY, baseDigest);
  writer.setValue("grove.generator.seed", "uint64", options.seed);

  let pairs = 0;
  let parameterCount = 0;
  for (const [name, tensor] of base.layout.tensors) {
    const match = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(name);
    if (match === null || !targets.includes(match[1] as AdapterTarget) || tensor.shape.length !== 2) continue;
    const [inputs, outputs] = tensor.shape as [number, number];
    // Kaiming-like A; B sized so that B·A has std ~BASE_STD (strong) or ~BASE_STD/20.
    const standardA = 1 / Math.sqrt(inputs);
    const standardB = ((strong ? BASE_STD * 6 : BASE_STD / 20) * Math.sqrt(inputs)) / Math.sqrt(rank);
    const randomA = new SeededRandom(options.seed, `${name}.lora_a`);
    const randomB = new SeededRandom(options.seed, `${name}.lora_b`);
    writer.addTensor(`${name}.lora_a`, [inputs, rank], "F32", (target) => randomA.fillNormal(target, standardA));
    writer.addTensor(`${name}.lora_b`, [rank, outputs], "F32", (target) => randomB.fillNormal(target, standardB));
    pairs++;
    parameterCount += rank * (inputs + outputs);
  }
  if (pairs === 0) throw new InvalidRequestError(`${options.basePath} has no ${targets.join("/")} layers to adapt`, { param: "targets" });
  const written = await writer.write(options.outPath, { verify: async (temporaryPath) => void (await validateGgufFile(temporaryPath)) });
  return {
    path: written.path,
    digest: written.digest,
    ...(baseDigest === undefined ? {} : { baseDigest }),
    rank,
    pairs,
    parameterCount,
    fileSize: written.fileSize,
  };
}
