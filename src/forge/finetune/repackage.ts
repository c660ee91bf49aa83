import { closeSync, openSync } from "node:fs";
import { basename } from "node:path";
import type { Digest } from "../../core/digest.js";
import { EngineError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout } from "../../gguf/gguf-tensor-layout.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { GgufWriter } from "../../gguf/gguf-writer.js";
import { copyMetadata, readRange } from "../merge/merge-models.js";

/** llama_ftype ALL_F32. */
const FILE_TYPE_ALL_F32 = 0;

/**
 * Writes the trained tensors of `trained` (llama.cpp's saver output) under the metadata of
 * `parent`: the saver drops the chat template and file type, writes ~130 default keys and puts
 * the training context in `context_length`; the fork should read exactly like its parent,
 * with F32 weights. Tensors are written in the parent's order, as F32, streamed.
 *
 * @throws EngineError when the trained file's tensors are not the parent's (name or shape)
 */
export async function repackageTrainedModel(parent: string, trained: string, outPath: string): Promise<{ digest: Digest; fileSize: number; untrainedTensors: string[] }> {
  const parentHeader = await readGgufHeader(parent);
  const parentTensors = ggufTensorLayout(parentHeader).tensors;
  const trainedTensors = ggufTensorLayout(await readGgufHeader(trained)).tensors;
  for (const [name, tensor] of parentTensors) {
    const other = trainedTensors.get(name);
    if (other === undefined || other.shape.join(",") !== tensor.shape.join(",")) {
      throw new EngineError(`The trained model ${basename(trained)} lacks tensor '${name}' of shape [${tensor.shape.join(", ")}]`);
    }
  }
  if (trainedTensors.size !== parentTensors.size) {
    throw new EngineError(`The trained model has ${trainedTensors.size} tensors, its parent ${parentTensors.size}`);
  }
  const writer = new GgufWriter();
  copyMetadata(parentHeader, writer);
  writer.setUint32("general.file_type", FILE_TYPE_ALL_F32);
  const descriptor = openSync(trained, "r");
  const parentDescriptor = openSync(parent, "r");
  // Tensors whose every value equals the parent's: what llama.cpp's trainer did not update
  // (in this llama.cpp: token_embd, and attn_k/attn_v, which reach the loss only through the
  // KV cache, which has no backward pass). Compared as values, so an F16 parent counts too.
  const changed = new Set<string>();
  const comparable = (type: string): boolean => type === "F32" || type === "F16" || type === "BF16";
  try {
    for (const [name, tensor] of parentTensors) {
      const source = { descriptor, tensor: trainedTensors.get(name)! };
      const before = comparable(tensor.type) ? { descriptor: parentDescriptor, tensor } : undefined;
      if (before === undefined) changed.add(name);
      writer.addTensor(name, tensor.shape, "F32", (target, elementOffset) => {
        const values = readRange(source, elementOffset, target.length);
        target.set(values);
        if (before !== undefined && !changed.has(name)) {
          const old = readRange(before, elementOffset, target.length);
          for (let index = 0; index < values.length; index++) {
            if (values[index] !== old[index]) {
              changed.add(name);
              break;
            }
          }
        }
      });
    }
    const written = await writer.write(outPath, { verify: async (path) => void (await validateGgufFile(path)) });
    const untrainedTensors = [...parentTensors.keys()].filter((name) => !changed.has(name));
    return { digest: written.digest, fileSize: written.fileSize, untrainedTensors };
  } finally {
    closeSync(descriptor);
    closeSync(parentDescriptor);
  }
}

/**
 * Tensor names grouped across blocks, for a one-line report.
 * @example summarizeTensorNames(["token_embd.weight", "blk.0.attn_k.weight", "blk.1.attn_k.weight"]) // "token_embd.weight, blk.*.attn_k.weight (2)"
 */
export function summarizeTensorNames(names: readonly string[]): string {
  const groups = new Map<string, number>();
  for (const name of names) {
    const key = name.replace(/^blk\.\d+\./, "blk.*.");
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([key, count]) => (key.startsWith("blk.*.") ? `${key} (${count})` : key)).join(", ");
}
