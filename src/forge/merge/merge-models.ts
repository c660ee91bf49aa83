import { closeSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { float16BitsToFloat32 } from "../../gguf/float16.js";
import { readGgufHeader, type GgufHeader, type TypedMetadataEntry } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout, type ValidatedTensor } from "../../gguf/gguf-tensor-layout.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { GGUF_VALUE_TYPE_NAMES, GgufWriter, type GgufScalar, type GgufScalarType, type GgufWriterTensorType } from "../../gguf/gguf-writer.js";

/** How tensors are combined. */
export type MergeMethod = "linear" | "slerp" | "task-arithmetic";

/** The methods, for flag validation and help text. */
export const MERGE_METHODS: readonly MergeMethod[] = ["linear", "slerp", "task-arithmetic"];

/** Options of {@link mergeModels}. */
export interface MergeModelsOptions {
  /** GGUF files to merge; same architecture, tensor names and shapes; F32, F16 or BF16 tensors. */
  inputs: readonly string[];
  /**
   * `linear`: Σ wᵢ·xᵢ / Σ wᵢ (weights normalized, as mergekit does by default).
   * `slerp`: spherical interpolation of two inputs per tensor at t = w₁ / (w₀ + w₁), linear when
   * the tensors are near-parallel. `task-arithmetic`: base + Σ wᵢ·(xᵢ − base), not normalized.
   */
  method: MergeMethod;
  /**
   * One finite weight per input.
   * @default equal weights for linear and slerp (t = 0.5); 1 each for task-arithmetic
   */
  weights?: readonly number[];
  /** The common ancestor; required by (and only used with) `task-arithmetic`. */
  base?: string;
  /** Where to write the merged GGUF (its directory must exist); replaced if present. */
  outPath: string;
  /** `general.name` of the result. @default the first input's name plus " (METHOD merge)" */
  name?: string;
  /** Bytes written so far and the final size. */
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

/** What {@link mergeModels} wrote. */
export interface MergeModelsResult {
  path: string;
  digest: Digest;
  fileSize: number;
  /** The weights actually used, one per input. */
  weights: number[];
  tensorCount: number;
}

/** Tensor types merged: decoded to float32. Anything else (the Q types) is refused. */
const FLOAT_TYPES = new Set(["F32", "F16", "BF16"]);
/** mergekit's threshold above which |cos θ| counts as parallel and slerp falls back to lerp. */
const SLERP_DOT_THRESHOLD = 0.9995;
const SLERP_EPSILON = 1e-8;

/** The scalar value type of a GGUF type id; `undefined` for ARRAY and unknown ids. */
function scalarTypeOf(id: number | undefined): GgufScalarType | undefined {
  const name = id === undefined ? undefined : GGUF_VALUE_TYPE_NAMES[id];
  return name === "array" ? undefined : name;
}

interface MergeInput {
  path: string;
  header: GgufHeader;
  tensors: Map<string, ValidatedTensor>;
}

/**
 * Merges GGUF models tensor by tensor and writes the result with {@link GgufWriter}: metadata
 * from the first input (with `general.name` replaced and `grove.merge.method` /
 * `grove.merge.weights` added, `general.file_type` set), every tensor in the first input's
 * order. A tensor is written as F32 when it is F32 in every input, otherwise as F16 (BF16 and
 * mixed inputs included). Tensors are streamed chunk by chunk from the inputs (slerp reads each
 * tensor twice: norms first), so memory holds a chunk per input, never a whole model or tensor.
 * Same inputs and options → same bytes.
 *
 * @example
 * await mergeModels({ inputs: ["a.gguf", "b.gguf"], method: "slerp", weights: [0.7, 0.3], outPath: "ab.gguf" });
 * @throws InvalidRequestError when the inputs cannot be merged (architecture, tensor set, shape,
 *   quantized type) or the method, weights or base are not usable
 */
export async function mergeModels(options: MergeModelsOptions): Promise<MergeModelsResult> {
  const { method } = options;
  if (!MERGE_METHODS.includes(method)) {
    throw new InvalidRequestError(`Unknown merge method '${String(method)}'; valid: ${MERGE_METHODS.join(", ")}`, { param: "method" });
  }
  const count = options.inputs.length;
  if (count < 1 || (method !== "task-arithmetic" && count < 2)) {
    throw new InvalidRequestError(`A ${method} merge needs at least ${method === "task-arithmetic" ? 1 : 2} input models, got ${count}`, { param: "inputs" });
  }
  if (method === "slerp" && count !== 2) throw new InvalidRequestError(`slerp merges exactly 2 models, got ${count}`, { param: "inputs" });
  if (method === "task-arithmetic" && options.base === undefined) {
    throw new InvalidRequestError("task-arithmetic needs a base model: result = base + Σ wᵢ·(inputᵢ − base)", { param: "base" });
  }
  if (method !== "task-arithmetic" && options.base !== undefined) {
    throw new InvalidRequestError(`A base model is used only by task-arithmetic, not by ${method}`, { param: "base" });
  }
  const weights = resolveWeights(method, count, options.weights);

  const inputs = await Promise.all(options.inputs.map(openInput));
  const base = options.base === undefined ? undefined : await openInput(options.base);
  const all = base === undefined ? inputs : [base, ...inputs];
  checkCompatible(all);

  const first = inputs[0];
  const writer = new GgufWriter();
  const outputTypes = new Map<string, GgufWriterTensorType>();
  for (const [name, tensor] of first.tensors) {
    const types = new Set(all.map((input) => (input.tensors.get(name) as ValidatedTensor).type));
    outputTypes.set(name, types.size === 1 && tensor.type === "F32" ? "F32" : "F16");
  }
  copyMetadata(first.header, writer);
  const firstName = first.header.metadata.get("general.name")?.value;
  writer.setString("general.name", options.name ?? `${typeof firstName === "string" ? firstName : basename(first.path)} (${method} merge)`);
  // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1.
  writer.setUint32("general.file_type", [...outputTypes.values()].includes("F16") ? 1 : 0);
  writer.setString("grove.merge.method", method);
  writer.setArray("grove.merge.weights", "float64", weights);

  const descriptors = all.map((input) => openSync(input.path, "r"));
  const [baseDescriptor, inputDescriptors] = base === undefined ? [undefined, descriptors] : [descriptors[0], descriptors.slice(1)];
  try {
    for (const [name, tensor] of first.tensors) {
      const sources = inputs.map((input, index) => ({ descriptor: inputDescriptors[index], tensor: input.tensors.get(name) as ValidatedTensor }));
      const origin = base === undefined ? undefined : { descriptor: baseDescriptor as number, tensor: base.tensors.get(name) as ValidatedTensor };
      let coefficients: number[] = [];
      // The writer asks for each tensor's chunks in order: element 0 first.
      writer.addTensor(name, tensor.shape, outputTypes.get(name) as GgufWriterTensorType, (target, elementOffset) => {
        if (elementOffset === 0) coefficients = method === "slerp" ? slerpCoefficients(weights[1] / (weights[0] + weights[1]), sources) : weights;
        const values = sources.map((source) => readRange(source, elementOffset, target.length));
        const originValues = origin === undefined ? undefined : readRange(origin, elementOffset, target.length);
        combine(method, values, coefficients, originValues, target);
      });
    }
    const written = await writer.write(options.outPath, {
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      verify: async (path) => void (await validateGgufFile(path)),
    });
    return { path: written.path, digest: written.digest, fileSize: written.fileSize, weights, tensorCount: first.tensors.size };
  } finally {
    for (const descriptor of descriptors) closeSync(descriptor);
  }
}

function resolveWeights(method: MergeMethod, count: number, weights: readonly number[] | undefined): number[] {
  if (weights === undefined) return new Array<number>(count).fill(method === "task-arithmetic" ? 1 : 1 / count);
  if (weights.length !== count) {
    throw new InvalidRequestError(`Got ${weights.length} weights for ${count} input models; give one weight per input`, { param: "weights" });
  }
  const bad = weights.find((weight) => typeof weight !== "number" || !Number.isFinite(weight));
  if (bad !== undefined) throw new InvalidRequestError(`Merge weights must be finite numbers, got ${String(bad)}`, { param: "weights" });
  if (method !== "task-arithmetic") {
    if (weights.some((weight) => weight < 0)) throw new InvalidRequestError(`${method} weights must not be negative`, { param: "weights" });
    if (weights.reduce((sum, weight) => sum + weight, 0) === 0) throw new InvalidRequestError(`${method} weights must not all be zero`, { param: "weights" });
  }
  return [...weights];
}

async function openInput(path: string): Promise<MergeInput> {
  const header = await readGgufHeader(path);
  return { path, header, tensors: ggufTensorLayout(header).tensors };
}

function checkCompatible(inputs: readonly MergeInput[]): void {
  const [first, ...rest] = inputs;
  const label = (input: MergeInput) => basename(input.path);
  const architecture = (input: MergeInput) => String(input.header.metadata.get("general.architecture")?.value ?? "unknown");
  for (const input of inputs) {
    for (const tensor of input.tensors.values()) {
      if (!FLOAT_TYPES.has(tensor.type)) {
        throw new InvalidRequestError(
          `${label(input)}: tensor '${tensor.name}' is ${tensor.type}; merging needs F32, F16 or BF16 tensors ` +
            "(dequantization of Q types is not supported yet) — merge the unquantized models, then quantize",
          { param: "inputs" },
        );
      }
    }
  }
  for (const input of rest) {
    if (architecture(input) !== architecture(first)) {
      throw new InvalidRequestError(
        `Different architectures: ${label(first)} is '${architecture(first)}', ${label(input)} is '${architecture(input)}'`,
        { param: "inputs" },
      );
    }
    // Shapes of the tensors both have first: a different size of model says more than its extra layers.
    for (const [name, tensor] of first.tensors) {
      const other = input.tensors.get(name);
      if (other !== undefined && (other.shape.length !== tensor.shape.length || other.shape.some((dim, index) => dim !== tensor.shape[index]))) {
        throw new InvalidRequestError(
          `Shape mismatch in tensor '${name}': [${tensor.shape.join(", ")}] in ${label(first)}, [${other.shape.join(", ")}] in ${label(input)}`,
          { param: "inputs" },
        );
      }
    }
    const missing = [...first.tensors.keys()].filter((name) => !input.tensors.has(name));
    const extra = [...input.tensors.keys()].filter((name) => !first.tensors.has(name));
    if (missing.length > 0 || extra.length > 0) {
      const list = (names: string[]) => names.slice(0, 3).map((name) => `'${name}'`).join(", ") + (names.length > 3 ? ` and ${names.length - 3} more` : "");
      const parts = [...(missing.length > 0 ? [`lacks ${list(missing)}`] : []), ...(extra.length > 0 ? [`has extra ${list(extra)}`] : [])];
      throw new InvalidRequestError(`Different tensor sets: ${label(input)} ${parts.join(" and ")} compared with ${label(first)}`, { param: "inputs" });
    }
  }
}

/** Copies every metadata entry; nested arrays (which llama.cpp does not read) are refused. */
export function copyMetadata(header: GgufHeader, writer: GgufWriter): void {
  for (const [key, entry] of header.metadata) {
    if (entry.type === 9) {
      const itemType = scalarTypeOf(entry.subType);
      if (itemType === undefined) throw new InvalidRequestError(`${header.file}: metadata '${key}' is a nested array, which merging cannot copy`);
      writer.setArray(key, itemType, entry.value as GgufScalar[]);
    } else {
      writer.setValue(key, scalarType(header, key, entry), entry.value as GgufScalar);
    }
  }
}

function scalarType(header: GgufHeader, key: string, entry: TypedMetadataEntry): GgufScalarType {
  const type = scalarTypeOf(entry.type);
  if (type === undefined) throw new InvalidRequestError(`${header.file}: metadata '${key}' has an unknown value type ${entry.type}`);
  return type;
}

/** A tensor of an open GGUF file, for {@link readRange}. */
export interface TensorSource {
  descriptor: number;
  tensor: ValidatedTensor;
}

/** Elements read and decoded at a time by the slerp pre-pass. */
const SCAN_ELEMENTS = 1 << 20;

/**
 * Reads `count` elements of an F32, F16, BF16, Q8_0 or Q4_0 tensor from element `start` on,
 * decoded to float32 (for the block types, `start` and `count` are whole blocks of 32).
 */
export function readRange(source: TensorSource, start: number, count: number): Float32Array {
  const { descriptor, tensor } = source;
  if (tensor.type === "Q8_0" || tensor.type === "Q4_0") return readBlocks(source, start, count);
  const width = tensor.type === "F32" ? 4 : 2;
  const bytes = Buffer.alloc(count * width);
  let done = 0;
  while (done < bytes.length) {
    const read = readSync(descriptor, bytes, done, bytes.length - done, tensor.fileOffset + start * width + done);
    if (read === 0) throw new InvalidRequestError(`Tensor '${tensor.name}' ends past the end of its file`);
    done += read;
  }
  const values = new Float32Array(count);
  switch (tensor.type) {
    case "F32":
      for (let index = 0; index < count; index++) values[index] = bytes.readFloatLE(index * 4);
      break;
    case "F16":
      for (let index = 0; index < count; index++) values[index] = float16BitsToFloat32(bytes.readUInt16LE(index * 2));
      break;
    case "BF16": {
      const bits = new Uint32Array(values.buffer);
      for (let index = 0; index < count; index++) bits[index] = bytes.readUInt16LE(index * 2) << 16;
      break;
    }
    default:
      throw new InvalidRequestError(`Tensor '${tensor.name}' is ${tensor.type}; dequantization of Q types is not supported yet`);
  }
  return values;
}

/** Decodes whole blocks of a Q8_0 (f16 scale, 32 int8) or Q4_0 (f16 scale, 16 bytes of nibbles, value − 8) tensor, as ggml's dequantize_row_*. */
function readBlocks(source: TensorSource, start: number, count: number): Float32Array {
  const { descriptor, tensor } = source;
  if (start % 32 !== 0 || count % 32 !== 0) throw new InvalidRequestError(`Tensor '${tensor.name}' (${tensor.type}) is read in whole blocks of 32`);
  const blockBytes = tensor.type === "Q8_0" ? 34 : 18;
  const bytes = Buffer.alloc((count / 32) * blockBytes);
  let done = 0;
  while (done < bytes.length) {
    const read = readSync(descriptor, bytes, done, bytes.length - done, tensor.fileOffset + (start / 32) * blockBytes + done);
    if (read === 0) throw new InvalidRequestError(`Tensor '${tensor.name}' ends past the end of its file`);
    done += read;
  }
  const values = new Float32Array(count);
  for (let block = 0; block < count / 32; block++) {
    const offset = block * blockBytes;
    const scale = float16BitsToFloat32(bytes.readUInt16LE(offset));
    const out = block * 32;
    if (tensor.type === "Q8_0") {
      for (let index = 0; index < 32; index++) values[out + index] = scale * bytes.readInt8(offset + 2 + index);
    } else {
      for (let index = 0; index < 16; index++) {
        const byte = bytes[offset + 2 + index]!;
        values[out + index] = scale * ((byte & 0x0f) - 8);
        values[out + index + 16] = scale * ((byte >> 4) - 8);
      }
    }
  }
  return values;
}

/** Combines one chunk into `target`: `coefficients` are the weights, or slerp's two factors. */
function combine(method: MergeMethod, values: readonly Float32Array[], coefficients: readonly number[], origin: Float32Array | undefined, target: Float32Array): void {
  const length = target.length;
  switch (method) {
    case "linear": {
      const total = coefficients.reduce((sum, weight) => sum + weight, 0);
      for (let index = 0; index < length; index++) {
        let sum = 0;
        for (let input = 0; input < values.length; input++) sum += coefficients[input] * values[input][index];
        target[index] = sum / total;
      }
      return;
    }
    case "task-arithmetic": {
      const from = origin as Float32Array;
      for (let index = 0; index < length; index++) {
        let sum = from[index];
        for (let input = 0; input < values.length; input++) sum += coefficients[input] * (values[input][index] - from[index]);
        target[index] = sum;
      }
      return;
    }
    case "slerp": {
      const [s0, s1] = coefficients;
      for (let index = 0; index < length; index++) target[index] = s0 * values[0][index] + s1 * values[1][index];
      return;
    }
  }
}

/**
 * mergekit's `slerp` over the flattened tensors, as the factors of v0 and v1: a first pass
 * reads both tensors for their norms and dot product; near-parallel tensors get lerp's factors.
 */
function slerpCoefficients(t: number, [first, second]: readonly TensorSource[]): [number, number] {
  let norm0 = 0;
  let norm1 = 0;
  let dot = 0;
  const elements = first.tensor.shape.reduce((product, dim) => product * dim, 1);
  for (let start = 0; start < elements; start += SCAN_ELEMENTS) {
    const count = Math.min(SCAN_ELEMENTS, elements - start);
    const v0 = readRange(first, start, count);
    const v1 = readRange(second, start, count);
    for (let index = 0; index < count; index++) {
      norm0 += v0[index] * v0[index];
      norm1 += v1[index] * v1[index];
      dot += v0[index] * v1[index];
    }
  }
  norm0 = Math.sqrt(norm0);
  norm1 = Math.sqrt(norm1);
  // mergekit normalizes each vector only when its norm exceeds eps.
  const cosine = dot / ((norm0 > SLERP_EPSILON ? norm0 : 1) * (norm1 > SLERP_EPSILON ? norm1 : 1));
  if (Math.abs(cosine) > SLERP_DOT_THRESHOLD) return [1 - t, t];
  const theta0 = Math.acos(cosine);
  const sinTheta0 = Math.sin(theta0);
  const thetaT = theta0 * t;
  return [Math.sin(theta0 - thetaT) / sinTheta0, Math.sin(thetaT) / sinTheta0];
}
