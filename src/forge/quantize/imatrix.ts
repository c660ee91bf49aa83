import { open } from "node:fs/promises";
import { basename } from "node:path";
import { InvalidRequestError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout, type ValidatedTensor } from "../../gguf/gguf-tensor-layout.js";
import { GgufWriter } from "../../gguf/gguf-writer.js";
import { SeededRandom } from "../generate/seeded-random.js";

/** An importance matrix as llama-quantize hands it to `llama_model_quantize`. */
export interface ImportanceMatrix {
  /** Per weight tensor (e.g. `blk.0.attn_q.weight`): mean squared activation per input column (per expert). */
  entries: Map<string, Float32Array>;
  /** `imatrix.datasets`: what text it was computed on. */
  datasets: string[];
  /** `imatrix.chunk_count`. */
  chunkCount: number;
  /** The file's name, recorded in the quantized model as `quantize.imatrix.file`. */
  file: string;
}

const SUMS = ".in_sum2";
const COUNTS = ".counts";

/**
 * Reads an importance matrix in the GGUF format `llama-imatrix` writes (tensors
 * `<name>.in_sum2` and `<name>.counts`, F32, with `imatrix.datasets`, `imatrix.chunk_count` and
 * `imatrix.chunk_size`), normalised as llama-quantize's `load_imatrix` does: each sum divided by
 * its count, 1 where a count is 0. The legacy `.dat` format is not read.
 *
 * @throws InvalidRequestError naming the file and what is wrong with it
 */
export async function readImportanceMatrix(path: string): Promise<ImportanceMatrix> {
  const file = basename(path);
  const fail = (message: string): never => {
    throw new InvalidRequestError(`The importance matrix ${file} ${message}`, { param: "imatrix" });
  };
  let header;
  try {
    header = await readGgufHeader(path);
  } catch (error) {
    return fail(`cannot be read as GGUF (llama-imatrix's default output; the legacy .dat format is not supported): ${(error as Error).message}`);
  }
  const metadata = header.metadata;
  const datasets = metadata.get("imatrix.datasets")?.value;
  const chunkCount = metadata.get("imatrix.chunk_count")?.value;
  if (!Array.isArray(datasets) || typeof chunkCount !== "number" || !metadata.has("imatrix.chunk_size")) {
    fail("lacks imatrix.datasets, imatrix.chunk_count or imatrix.chunk_size: it is not an importance matrix");
  }
  const tensors = ggufTensorLayout(header).tensors;
  const pairs = new Map<string, { sums?: ValidatedTensor; counts?: ValidatedTensor }>();
  for (const tensor of tensors.values()) {
    const [name, role] = tensor.name.endsWith(SUMS) ? [tensor.name.slice(0, -SUMS.length), "sums" as const] : tensor.name.endsWith(COUNTS) ? [tensor.name.slice(0, -COUNTS.length), "counts" as const] : [undefined, undefined];
    if (name === undefined) continue;
    if (tensor.type !== "F32") fail(`has ${tensor.name} of type ${tensor.type}; sums and counts must be F32`);
    pairs.set(name, { ...pairs.get(name), [role]: tensor });
  }
  if (pairs.size === 0) fail("has no <tensor>.in_sum2 / <tensor>.counts pairs");
  const entries = new Map<string, Float32Array>();
  const handle = await open(path, "r");
  try {
    const read = async (tensor: ValidatedTensor): Promise<Float32Array> => {
      const bytes = Buffer.alloc(tensor.bytes);
      await handle.read(bytes, 0, bytes.length, tensor.fileOffset);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    };
    for (const [name, { sums, counts }] of pairs) {
      if (sums === undefined || counts === undefined) fail(`has mismatched sums and counts for ${name}`);
      const sumValues = await read(sums!);
      const countValues = await read(counts!);
      if (countValues.length === 0 || sumValues.length % countValues.length !== 0) fail(`has ${sumValues.length} sums for ${countValues.length} counts in ${name}`);
      const perExpert = sumValues.length / countValues.length;
      const values = new Float32Array(sumValues.length);
      for (let expert = 0; expert < countValues.length; expert++) {
        const count = Math.round(countValues[expert]!);
        for (let index = 0; index < perExpert; index++) {
          const at = expert * perExpert + index;
          // As llama-quantize: float division of the sum by the (integer) count, in float32.
          values[at] = count > 0 ? Math.fround(sumValues[at]! / count) : 1;
        }
      }
      entries.set(name, values);
    }
  } finally {
    await handle.close();
  }
  return { entries, datasets: (datasets as unknown[]).map(String), chunkCount: chunkCount as number, file };
}

/**
 * Checks that an importance matrix belongs to a model: every entry names a weight tensor of the
 * model whose row length (per expert) matches.
 * @throws InvalidRequestError naming the first entry that does not fit
 */
export function checkImportanceMatrixFits(matrix: ImportanceMatrix, modelTensors: ReadonlyMap<string, { shape: readonly number[] }>): void {
  let matched = 0;
  for (const [name, values] of matrix.entries) {
    const tensor = modelTensors.get(name);
    if (tensor === undefined) continue; // llama.cpp ignores entries it has no tensor for
    matched++;
    const rowLength = tensor.shape[0]!;
    if (values.length % rowLength !== 0) {
      throw new InvalidRequestError(`The importance matrix ${matrix.file} has ${values.length} values for ${name}, whose rows hold ${rowLength}: it was computed for another model`, { param: "imatrix" });
    }
  }
  if (matched === 0) throw new InvalidRequestError(`The importance matrix ${matrix.file} names none of the model's tensors: it was computed for another model`, { param: "imatrix" });
}

/**
 * Writes a synthetic importance matrix for a model in llama-imatrix's GGUF format: for every
 * 2-D weight but the token embedding, seeded positive column importances (as from `chunks`
 * chunks of 512 tokens). Not a measured matrix — Grove cannot read activations through
 * node-llama-cpp — but the exact format llama-quantize reads, for tests and for checking
 * Grove's `--imatrix` path against llama-quantize's byte for byte.
 */
export async function writeSyntheticImportanceMatrix(modelPath: string, outPath: string, seed = 1, chunks = 4): Promise<void> {
  const tensors = ggufTensorLayout(await readGgufHeader(modelPath)).tensors;
  const random = new SeededRandom(seed);
  const tokens = chunks * 512;
  const writer = new GgufWriter();
  writer.setString("general.type", "imatrix");
  writer.setArray("imatrix.datasets", "string", ["grove-synthetic"]);
  writer.setUint32("imatrix.chunk_count", chunks);
  writer.setUint32("imatrix.chunk_size", 512);
  for (const tensor of tensors.values()) {
    if (tensor.shape.length !== 2 || tensor.name === "token_embd.weight") continue;
    const columns = tensor.shape[0]!;
    const sums = new Float32Array(columns);
    for (let index = 0; index < columns; index++) sums[index] = tokens * (0.05 + random.nextFloat() * random.nextFloat() * 4);
    writer.addTensor(`${tensor.name}.in_sum2`, [columns, 1], "F32", sums);
    writer.addTensor(`${tensor.name}.counts`, [1, 1], "F32", Float32Array.of(tokens));
  }
  await writer.write(outPath);
}
