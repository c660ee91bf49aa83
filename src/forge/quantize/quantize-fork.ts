import { rm } from "node:fs/promises";
import { basename } from "node:path";
import { digestOfFile } from "../../store/file-digest.js";
import type { ImportResult, ModelStore } from "../../store/model-store.js";
import type { Recipe } from "../../store/registry.js";
import { quantizeModel, quantizerVersion } from "./quantize-model.js";
import { parseQuantizeType, type QuantizeType } from "./quantize-types.js";

/** The recipe tool name of a quantized fork. */
export const QUANTIZE_TOOL = "llama.cpp llama_model_quantize";

/** What {@link quantizeFork} needs. */
export interface QuantizeForkOptions {
  /** The model to quantize: a name, digest or digest prefix in the store. */
  model: string;
  /** Type name, e.g. `Q4_K_M` (case-insensitive). */
  type: string;
  /** Name to point at the quantized fork. */
  name?: string;
  /** An importance matrix (llama-imatrix's GGUF); recorded as a data input of the recipe. */
  imatrix?: string;
  /** Quantization threads. @default the number of CPU cores */
  threads?: number;
  /** Aborting kills the quantizer; nothing is stored. */
  signal?: AbortSignal;
  /** Tensors done and total, from llama.cpp's log. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link quantizeFork} stored. */
export interface QuantizeForkResult {
  import: ImportResult;
  type: QuantizeType;
  /** File size × 8 / parameter count (metadata and higher-precision tensors included). */
  bitsPerWeight: number;
}

/**
 * Quantizes a model of the store (in a child process, see quantizeModel) and imports the result
 * as a `quantized` fork of it, with the recipe (tool, version, type, input digest; with an
 * importance matrix, its file name and digest too). Same inputs and type → same digest. Shared by `grove quantize` and the server's forge jobs.
 *
 * @throws InvalidRequestError for an unknown type, ModelNotFoundError for an unknown model,
 *   AbortedError when `signal` aborts, EngineError when the quantizer fails
 */
export async function quantizeFork(store: ModelStore, options: QuantizeForkOptions): Promise<QuantizeForkResult> {
  const type = parseQuantizeType(options.type);
  const source = await store.show(options.model);
  const output = await store.blobs.createTempPath();
  try {
    await quantizeModel({
      input: source.path,
      output,
      type,
      ...(options.imatrix === undefined ? {} : { imatrix: options.imatrix }),
      ...(options.threads === undefined ? {} : { threads: options.threads }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
    const recipe: Recipe =
      options.imatrix === undefined
        ? { tool: QUANTIZE_TOOL, toolVersion: quantizerVersion(), parameters: { type }, inputs: [source.model.digest] }
        : {
            tool: QUANTIZE_TOOL,
            toolVersion: quantizerVersion(),
            // The matrix's file name is written into the model, so it is part of the recipe.
            parameters: { type, imatrix: basename(options.imatrix) },
            inputs: [source.model.digest, await digestOfFile(options.imatrix)],
          };
    const result = await store.importFile(output, {
      ...(options.name === undefined ? {} : { name: options.name }),
      base: source.model.digest,
      relation: "quantized",
      recipe,
      mode: "move",
    });
    return { import: result, type, bitsPerWeight: (result.model.size * 8) / result.model.parameterCount };
  } finally {
    await rm(output, { force: true }); // left only when the import failed
  }
}
