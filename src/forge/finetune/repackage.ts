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
export async function repackageTrainedModel(parent: string, trained: string, outPath: string): Promise<{ digest: Digest; fileSize: number }> {
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
  try {
    for (const [name, tensor] of parentTensors) {
      const source = { descriptor, tensor: trainedTensors.get(name)! };
      writer.addTensor(name, tensor.shape, "F32", (target, elementOffset) => target.set(readRange(source, elementOffset, target.length)));
    }
    const written = await writer.write(outPath, { verify: async (path) => void (await validateGgufFile(path)) });
    return { digest: written.digest, fileSize: written.fileSize };
  } finally {
    closeSync(descriptor);
  }
}
