import { InvalidRequestError } from "../../core/errors.js";
import type { Digest } from "../../core/digest.js";
import { GgufWriter, type GgufWriterTensorType } from "../../gguf/gguf-writer.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { modelPreset, type ModelPreset } from "./model-presets.js";
import { TOKEN_TYPE } from "./bpe-tokenizer.js";
import { SeededRandom } from "./seeded-random.js";
import { groveTokenizerMetadata, readTokenizerMetadata, writeTokenizerMetadata, type TokenizerMetadata } from "./tokenizer-metadata.js";

/** Weight types a generated model can be written in. */
export type GenerateModelDtype = "f32" | "f16" | "q8_0";

/** The weight types, for flag validation and help text. */
export const GENERATE_MODEL_DTYPES: readonly GenerateModelDtype[] = ["f32", "f16", "q8_0"];

/**
 * Bumped whenever the bytes written for a given preset, seed and dtype change (weights,
 * keys, tokenizer, corpus), since digests of generated models are pinned in tests.
 */
export const GENERATOR_VERSION = "1";

/** Options of {@link generateModel}. */
export interface GenerateModelOptions {
  /** Preset name: `test-tiny`, `qwen2-tiny`, `qwen3-tiny`, `small`, `llama-1b`… (see MODEL_PRESETS). */
  preset: string;
  /** Seed of the weights: a non-negative integer. Same seed → byte-identical file. */
  seed: number;
  /** Weight type of the matrices; norms are always F32. @default "f16" */
  dtype?: GenerateModelDtype;
  /** Where to write the file (its directory must exist). An existing file is replaced. */
  outPath: string;
  /** Copy every `tokenizer.*` key from this GGUF instead of Grove's own BPE vocabulary. */
  vocabularyFrom?: string;
  /** Learn the BPE merges from this text instead of Grove's embedded corpus (ignored with `vocabularyFrom`). */
  corpus?: string;
  /** Progress in bytes written, for long writes. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link generateModel} wrote. */
export interface GenerateModelResult {
  path: string;
  digest: Digest;
  preset: string;
  parameterCount: number;
  fileSize: number;
  vocabularySize: number;
}

// llama_ftype values for general.file_type.
const FILE_TYPES: Record<GenerateModelDtype, number> = { f32: 0, f16: 1, q8_0: 7 };
const MATRIX_TYPES: Record<GenerateModelDtype, GgufWriterTensorType> = { f32: "F32", f16: "F16", q8_0: "Q8_0" };
const INIT_STD = 0.02;

/**
 * Writes a GGUF of the preset's architecture (Llama unless it says Qwen2 or Qwen3) with random
 * weights from `seed`: initialised like a real model before training (bell-shaped, std 0.02;
 * output projections of each block scaled by 1/√(2·layers); norms 1; Qwen2's biases bell-shaped
 * too, so that they count in tests), a separate `output.weight`, and Grove's BPE tokenizer with a
 * ChatML template — or every `tokenizer.*` key of `vocabularyFrom`, chat template only if
 * that file has one. The file is validated before it is renamed into place.
 *
 * @example
 * const model = await generateModel({ preset: "test-tiny", seed: 42, outPath: "/tmp/tiny.gguf" });
 * model.digest; // the same on every machine for this preset, seed and dtype
 */
export async function generateModel(options: GenerateModelOptions): Promise<GenerateModelResult> {
  const preset = modelPreset(options.preset);
  const dtype = options.dtype ?? "f16";
  if (!GENERATE_MODEL_DTYPES.includes(dtype)) {
    throw new InvalidRequestError(`Unknown dtype '${dtype}'; valid: ${GENERATE_MODEL_DTYPES.join(", ")}`, { param: "dtype" });
  }
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new InvalidRequestError(`Seed must be a non-negative integer, got ${options.seed}`, { param: "seed" });
  }
  const tokenizer = options.vocabularyFrom
    ? await readTokenizerMetadata(options.vocabularyFrom)
    : groveTokenizerMetadata(preset.vocabularySize, options.corpus);
  const writer = new GgufWriter();
  writeHyperparameters(writer, preset, options.seed, dtype, tokenizer);
  writeTokenizerMetadata(writer, tokenizer);
  const parameterCount = addTensors(writer, preset, options.seed, MATRIX_TYPES[dtype], tokenizer);
  const written = await writer.write(options.outPath, {
    onProgress: options.onProgress,
    verify: async (temporaryPath) => void (await validateGgufFile(temporaryPath)),
  });
  return {
    path: written.path,
    digest: written.digest,
    preset: preset.name,
    parameterCount,
    fileSize: written.fileSize,
    vocabularySize: tokenizer.vocabularySize,
  };
}

function writeHyperparameters(
  writer: GgufWriter,
  preset: ModelPreset,
  seed: number,
  dtype: GenerateModelDtype,
  tokenizer: TokenizerMetadata,
): void {
  const architecture = preset.architecture ?? "llama";
  const headDimension = preset.headDimension ?? preset.embeddingLength / preset.headCount;
  writer.setString("general.architecture", architecture);
  writer.setString("general.name", `grove-${preset.name}-s${seed}`);
  writer.setUint32("general.file_type", FILE_TYPES[dtype]);
  if (dtype === "q8_0") writer.setUint32("general.quantization_version", 2);
  writer.setString("grove.generator.preset", preset.name);
  writer.setValue("grove.generator.seed", "uint64", seed);
  writer.setString("grove.generator.version", GENERATOR_VERSION);
  writer.setUint32(`${architecture}.vocab_size`, tokenizer.vocabularySize);
  writer.setUint32(`${architecture}.context_length`, preset.contextLength);
  writer.setUint32(`${architecture}.embedding_length`, preset.embeddingLength);
  writer.setUint32(`${architecture}.block_count`, preset.blockCount);
  writer.setUint32(`${architecture}.feed_forward_length`, preset.feedForwardLength);
  writer.setUint32(`${architecture}.rope.dimension_count`, headDimension);
  writer.setUint32(`${architecture}.attention.head_count`, preset.headCount);
  writer.setUint32(`${architecture}.attention.head_count_kv`, preset.headCountKv);
  if (preset.headDimension !== undefined) {
    writer.setUint32(`${architecture}.attention.key_length`, headDimension);
    writer.setUint32(`${architecture}.attention.value_length`, headDimension);
  }
  writer.setFloat32(`${architecture}.attention.layer_norm_rms_epsilon`, preset.rmsEpsilon);
  writer.setFloat32(`${architecture}.rope.freq_base`, preset.ropeFreqBase);
}

/** Declares every tensor in llama.cpp's order; returns the parameter count. */
function addTensors(writer: GgufWriter, preset: ModelPreset, seed: number, matrixType: GgufWriterTensorType, tokenizer: TokenizerMetadata): number {
  const vocabularySize = tokenizer.vocabularySize;
  const nEmbd = preset.embeddingLength;
  const headDimension = preset.headDimension ?? nEmbd / preset.headCount;
  const nEmbdQ = headDimension * preset.headCount;
  const nEmbdKv = headDimension * preset.headCountKv;
  const nFf = preset.feedForwardLength;
  const residualStd = INIT_STD / Math.sqrt(2 * preset.blockCount);
  let parameters = 0;
  const matrix = (name: string, shape: [number, number], std: number, zeroRows?: Uint8Array): void => {
    const random = new SeededRandom(seed, name);
    const rowLength = shape[0];
    writer.addTensor(name, shape, matrixType, (target, offset) => {
      random.fillNormal(target, std);
      if (!zeroRows) return;
      const end = offset + target.length;
      for (let row = Math.floor(offset / rowLength); row * rowLength < end; row++) {
        if (zeroRows[row]) target.fill(0, Math.max(0, row * rowLength - offset), Math.min(target.length, (row + 1) * rowLength - offset));
      }
    });
    parameters += shape[0] * shape[1];
  };
  const norm = (name: string, length = nEmbd): void => {
    writer.addTensor(name, [length], "F32", new Float32Array(length).fill(1));
    parameters += length;
  };
  const bias = (name: string, length: number): void => {
    const values = new Float32Array(length);
    new SeededRandom(seed, name).fillNormal(values, INIT_STD);
    writer.addTensor(name, [length], "F32", values);
    parameters += length;
  };
  if (preset.llama3RopeScaling !== undefined) {
    // A fixed table, not a parameter: not counted.
    writer.addTensor("rope_freqs.weight", [headDimension / 2], "F32", llama3RopeFactors(preset.ropeFreqBase, headDimension, preset.llama3RopeScaling));
  }
  matrix("token_embd.weight", [nEmbd, vocabularySize], preset.tokenEmbeddingStd ?? INIT_STD);
  for (let layer = 0; layer < preset.blockCount; layer++) {
    const block = `blk.${layer}.`;
    norm(`${block}attn_norm.weight`);
    matrix(`${block}attn_q.weight`, [nEmbd, nEmbdQ], INIT_STD);
    matrix(`${block}attn_k.weight`, [nEmbd, nEmbdKv], INIT_STD);
    matrix(`${block}attn_v.weight`, [nEmbd, nEmbdKv], INIT_STD);
    if (preset.architecture === "qwen2") {
      bias(`${block}attn_q.bias`, nEmbdQ);
      bias(`${block}attn_k.bias`, nEmbdKv);
      bias(`${block}attn_v.bias`, nEmbdKv);
    }
    if (preset.architecture === "qwen3") {
      norm(`${block}attn_q_norm.weight`, headDimension);
      norm(`${block}attn_k_norm.weight`, headDimension);
    }
    matrix(`${block}attn_output.weight`, [nEmbdQ, nEmbd], residualStd);
    norm(`${block}ffn_norm.weight`);
    matrix(`${block}ffn_gate.weight`, [nEmbd, nFf], INIT_STD);
    matrix(`${block}ffn_up.weight`, [nEmbd, nFf], INIT_STD);
    matrix(`${block}ffn_down.weight`, [nFf, nEmbd], residualStd);
  }
  norm("output_norm.weight");
  // Unused (reserved) tokens get zero output rows, as in a trained model that never saw them,
  // so greedy decoding picks real tokens instead of one of thousands of fillers.
  matrix("output.weight", [nEmbd, vocabularySize], INIT_STD, unusedTokenRows(tokenizer));
  return parameters;
}

/** Llama 3's RoPE factors per frequency, as llama.cpp's converter computes them (conversion/llama.py). */
function llama3RopeFactors(base: number, headDimension: number, scaling: NonNullable<ModelPreset["llama3RopeScaling"]>): Float32Array {
  const { factor, lowFreqFactor, highFreqFactor, originalContextLength } = scaling;
  const [lowFreqWavelength, highFreqWavelength] = [originalContextLength / lowFreqFactor, originalContextLength / highFreqFactor];
  return Float32Array.from({ length: headDimension / 2 }, (_, index) => {
    const wavelength = 2 * Math.PI * base ** ((2 * index) / headDimension);
    if (wavelength < highFreqWavelength) return 1;
    if (wavelength > lowFreqWavelength) return factor;
    const smooth = (originalContextLength / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** A per-token flag: 1 for tokens of type unused (5) in `tokenizer.ggml.token_type`. */
function unusedTokenRows(tokenizer: TokenizerMetadata): Uint8Array | undefined {
  const types = tokenizer.entries.find((entry) => entry.key === "tokenizer.ggml.token_type")?.value;
  if (!Array.isArray(types) || !types.includes(TOKEN_TYPE.unused)) return undefined;
  return Uint8Array.from(types, (type) => (type === TOKEN_TYPE.unused ? 1 : 0));
}
