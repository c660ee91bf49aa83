import { closeSync, openSync } from "node:fs";
import { basename } from "node:path";
import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { GgufMetadataReader } from "../../gguf/gguf-metadata-reader.js";
import { validateGgufFile, validateGgufHeader } from "../../gguf/gguf-validator.js";
import { GgufWriter, type GgufWriterTensorType } from "../../gguf/gguf-writer.js";
import { copyMetadata, readRange } from "./merge-models.js";

/** Base types {@link bakeAdapter} reads (readRange's, with the block quantizations it decodes). */
const READABLE_TYPES = new Set(["F32", "F16", "BF16", "Q8_0", "Q4_0"]);

/** Options of {@link bakeAdapter}. */
export interface BakeAdapterOptions {
  /** The base model GGUF. */
  basePath: string;
  /** A LoRA adapter GGUF for it (llama.cpp's format). */
  adapterPath: string;
  outPath: string;
  /** `general.name` of the result. @default "<base name> + <adapter file name>" */
  name?: string;
  /** Multiplies the adapter, as llama.cpp's `--lora-scaled`. @default 1 */
  scale?: number;
}

/**
 * Writes `base` with a LoRA adapter folded into its weights: W + scale·(alpha / r)·B·A for each
 * adapted tensor, the other tensors and all metadata as they were — what llama.cpp's
 * `llama-export-lora` does, so the result serves without the adapter. Adapted tensors and all
 * matrices of a quantized base (Q8_0, Q4_0: decoded here) are written as F16 (F32 stays F32), so
 * nothing is lost to re-quantization; quantize the result again with `grove quantize`.
 *
 * @throws InvalidRequestError when the adapter is not a LoRA for this base (architecture, a
 *   tensor it lacks, shapes) or a base tensor is of a type this cannot read
 */
export async function bakeAdapter(options: BakeAdapterOptions): Promise<{ digest: Digest; fileSize: number; adapted: number }> {
  const baseHeader = await readGgufHeader(options.basePath);
  const base = validateGgufHeader(baseHeader);
  const adapterHeader = await readGgufHeader(options.adapterPath);
  const adapter = validateGgufHeader(adapterHeader);
  const file = basename(options.adapterPath);
  const fail = (message: string, param = "adapter"): never => {
    throw new InvalidRequestError(`Cannot bake ${file} into ${basename(options.basePath)}: ${message}`, { param });
  };
  if (adapter.summary.adapterType !== "lora") fail("it is not a LoRA adapter (general.type adapter, adapter.type lora)");
  if (base.summary.adapterType !== undefined) fail("the base is itself an adapter", "base");
  if (adapter.summary.architecture !== base.summary.architecture) fail(`it is for ${adapter.summary.architecture}, the base is ${base.summary.architecture}`);
  const alpha = GgufMetadataReader.fromHeader(adapterHeader).float32("adapter.lora.alpha") ?? 0;
  const scale = options.scale ?? 1;

  const adapterDescriptor = openSync(options.adapterPath, "r");
  const pairs = new Map<string, { a: Float32Array; b: Float32Array; rank: number; factor: number }>();
  try {
    for (const [name, tensorA] of adapter.layout.tensors) {
      if (!name.endsWith(".lora_a")) continue;
      const target = name.slice(0, -".lora_a".length);
      const tensorB = adapter.layout.tensors.get(`${target}.lora_b`);
      const weight = base.layout.tensors.get(target);
      if (tensorB === undefined) fail(`${name} has no ${target}.lora_b`);
      if (weight === undefined || weight.shape.length !== 2) fail(`the base has no matrix ${target}`);
      const [inputs, outputs] = weight!.shape as [number, number];
      const rank = tensorA.shape[1]!;
      if (tensorA.shape[0] !== inputs || tensorB!.shape[0] !== rank || tensorB!.shape[1] !== outputs) {
        fail(`${target} is [${inputs}, ${outputs}] but lora_a is [${tensorA.shape.join(", ")}] and lora_b [${tensorB!.shape.join(", ")}]`);
      }
      const read = (tensor: typeof tensorA) => readRange({ descriptor: adapterDescriptor, tensor }, 0, tensor.shape[0]! * tensor.shape[1]!);
      // llama.cpp scales B·A·x by alpha / rank (by 1 when alpha is 0 or absent).
      pairs.set(target, { a: read(tensorA), b: read(tensorB!), rank, factor: scale * (alpha > 0 ? alpha / rank : 1) });
    }
  } finally {
    closeSync(adapterDescriptor);
  }
  if (pairs.size === 0) fail("it holds no lora_a/lora_b pairs");

  const writer = new GgufWriter();
  copyMetadata(baseHeader, writer);
  const baseName = baseHeader.metadata.get("general.name")?.value;
  writer.setString("general.name", options.name ?? `${typeof baseName === "string" ? baseName : basename(options.basePath)} + ${file}`);
  const types = new Map<string, GgufWriterTensorType>();
  for (const [name, tensor] of base.layout.tensors) {
    if (!READABLE_TYPES.has(tensor.type)) fail(`its ${name} is ${tensor.type}; baking reads F32, F16, BF16, Q8_0 and Q4_0 bases — bake into the base's F16 original (the adapter fits every type of the same model)`, "base");
    types.set(name, tensor.type === "F32" ? "F32" : "F16");
  }
  // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1.
  writer.setUint32("general.file_type", [...types.values()].includes("F16") ? 1 : 0);

  const baseDescriptor = openSync(options.basePath, "r");
  try {
    for (const [name, tensor] of base.layout.tensors) {
      const pair = pairs.get(name);
      const inputs = tensor.shape[0]!;
      writer.addTensor(name, tensor.shape, types.get(name)!, (target, elementOffset) => {
        target.set(readRange({ descriptor: baseDescriptor, tensor }, elementOffset, target.length));
        if (pair === undefined) return;
        const { a, b, rank, factor } = pair;
        // Element e of W (row o = e / n_in, column i = e % n_in) gains factor · Σ_k B[o][k]·A[k][i].
        for (let index = 0; index < target.length; index++) {
          const element = elementOffset + index;
          const row = Math.floor(element / inputs);
          const column = element - row * inputs;
          let sum = 0;
          for (let k = 0; k < rank; k++) sum += b[row * rank + k]! * a[k * inputs + column]!;
          target[index] += factor * sum;
        }
      });
    }
    const written = await writer.write(options.outPath, { verify: async (path) => void (await validateGgufFile(path)) });
    return { digest: written.digest, fileSize: written.fileSize, adapted: pairs.size };
  } finally {
    closeSync(baseDescriptor);
  }
}
