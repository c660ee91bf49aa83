/**
 * The ggml tensor types a GGUF file may declare (`enum ggml_type` in ggml.h of the llama.cpp
 * that node-llama-cpp 3.21.1 bundles), with their block sizes and bytes per block
 * (`GGML_QUANT_SIZES` in gguf-py/gguf/constants.py).
 */
export interface GgmlTypeInfo {
  /** The `ggml_type` number stored in the file. */
  readonly id: number;
  /** The name llama.cpp prints, e.g. `Q8_0`. */
  readonly name: string;
  /** Elements per block; the innermost dimension must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

const QK_K = 256;

const TYPE_LIST: readonly GgmlTypeInfo[] = [
  { id: 0, name: "F32", blockSize: 1, blockBytes: 4 },
  { id: 1, name: "F16", blockSize: 1, blockBytes: 2 },
  { id: 2, name: "Q4_0", blockSize: 32, blockBytes: 2 + 16 },
  { id: 3, name: "Q4_1", blockSize: 32, blockBytes: 2 + 2 + 16 },
  { id: 6, name: "Q5_0", blockSize: 32, blockBytes: 2 + 4 + 16 },
  { id: 7, name: "Q5_1", blockSize: 32, blockBytes: 2 + 2 + 4 + 16 },
  { id: 8, name: "Q8_0", blockSize: 32, blockBytes: 2 + 32 },
  { id: 9, name: "Q8_1", blockSize: 32, blockBytes: 4 + 4 + 32 },
  { id: 10, name: "Q2_K", blockSize: QK_K, blockBytes: 2 + 2 + QK_K / 16 + QK_K / 4 },
  { id: 11, name: "Q3_K", blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 + 12 },
  { id: 12, name: "Q4_K", blockSize: QK_K, blockBytes: 2 + 2 + QK_K / 2 + 12 },
  { id: 13, name: "Q5_K", blockSize: QK_K, blockBytes: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
  { id: 14, name: "Q6_K", blockSize: QK_K, blockBytes: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  { id: 15, name: "Q8_K", blockSize: QK_K, blockBytes: 4 + QK_K + QK_K / 8 },
  { id: 16, name: "IQ2_XXS", blockSize: QK_K, blockBytes: 2 + QK_K / 4 },
  { id: 17, name: "IQ2_XS", blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 32 },
  { id: 18, name: "IQ3_XXS", blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 },
  { id: 19, name: "IQ1_S", blockSize: QK_K, blockBytes: 2 + QK_K / 8 + QK_K / 16 },
  { id: 20, name: "IQ4_NL", blockSize: 32, blockBytes: 2 + 16 },
  { id: 21, name: "IQ3_S", blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
  { id: 22, name: "IQ2_S", blockSize: QK_K, blockBytes: 2 + QK_K / 4 + QK_K / 16 },
  { id: 23, name: "IQ4_XS", blockSize: QK_K, blockBytes: 2 + 2 + QK_K / 2 + QK_K / 64 },
  { id: 24, name: "I8", blockSize: 1, blockBytes: 1 },
  { id: 25, name: "I16", blockSize: 1, blockBytes: 2 },
  { id: 26, name: "I32", blockSize: 1, blockBytes: 4 },
  { id: 27, name: "I64", blockSize: 1, blockBytes: 8 },
  { id: 28, name: "F64", blockSize: 1, blockBytes: 8 },
  { id: 29, name: "IQ1_M", blockSize: QK_K, blockBytes: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  { id: 30, name: "BF16", blockSize: 1, blockBytes: 2 },
  { id: 34, name: "TQ1_0", blockSize: QK_K, blockBytes: 2 + 4 * 13 },
  { id: 35, name: "TQ2_0", blockSize: QK_K, blockBytes: 2 + 64 },
  { id: 39, name: "MXFP4", blockSize: 32, blockBytes: 1 + 16 },
  { id: 40, name: "NVFP4", blockSize: 64, blockBytes: 4 + 32 },
  { id: 41, name: "Q1_0", blockSize: 128, blockBytes: 2 + 16 },
  { id: 42, name: "Q2_0", blockSize: 64, blockBytes: 2 + 16 },
];

const TYPES_BY_ID = new Map(TYPE_LIST.map((info) => [info.id, info]));
const TYPES_BY_NAME = new Map(TYPE_LIST.map((info) => [info.name, info]));

/** The ggml types Grove knows, by id. */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = TYPES_BY_ID;

/** The type info for a `ggml_type` id, or undefined for an unknown or removed id. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return TYPES_BY_ID.get(id);
}

/** The type info for a name such as `F16` or `Q8_0`. Throws for an unknown name. */
export function ggmlTypeByName(name: string): GgmlTypeInfo {
  const info = TYPES_BY_NAME.get(name);
  if (!info) throw new RangeError(`Unknown ggml type '${name}'`);
  return info;
}

/**
 * Bytes a tensor of `shape` (ggml order, innermost first) takes in `type`, as `ggml_nbytes`
 * computes it for a contiguous tensor. BigInt, since hostile shapes can overflow doubles.
 * Throws a RangeError when the innermost dimension is not a multiple of the block size.
 */
export function ggmlTensorBytes(type: GgmlTypeInfo, shape: readonly (number | bigint)[]): bigint {
  const dims = shape.map((dim) => BigInt(dim));
  const innermost = dims[0] ?? 1n;
  if (innermost % BigInt(type.blockSize) !== 0n) {
    throw new RangeError(`${innermost} elements per row is not a multiple of the ${type.name} block size ${type.blockSize}`);
  }
  const elements = dims.reduce((product, dim) => product * dim, 1n);
  return (elements / BigInt(type.blockSize)) * BigInt(type.blockBytes);
}
