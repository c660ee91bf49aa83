import type { GgufHeader } from "./gguf-header-reader.js";
import { GgufMetadataReader } from "./gguf-metadata-reader.js";
import { ggmlTypeInfo } from "./ggml-types.js";

/** A tensor whose info passed {@link ggufTensorLayout}: known type, sane shape, data inside the file. */
export interface ValidatedTensor {
  /** Tensor name, 1 to 63 bytes. */
  name: string;
  /** Dimensions in ggml order (innermost first), 1 to 4 of them, each at least 1. */
  shape: number[];
  /** ggml type name, e.g. `F16` or `Q8_0`. */
  type: string;
  /** Bytes of data (`ggml_nbytes`). */
  bytes: number;
  /** Absolute byte offset of the data in the file. */
  fileOffset: number;
}

/** Where the tensor data of a GGUF file lies. */
export interface GgufTensorLayout {
  /** `general.alignment`, or 32. */
  alignment: number;
  /** Absolute byte offset of the data section. */
  dataStart: number;
  /** Tensors by name, in file order. */
  tensors: Map<string, ValidatedTensor>;
}

const MAX_NAME_BYTES = 63; // GGML_MAX_NAME - 1
const DEFAULT_ALIGNMENT = 32;
const INT64_LIMIT = 1n << 63n;

/**
 * Checks the tensor infos of a header the way llama.cpp's `gguf_init` and model loader do —
 * names, dimensions, element counts that fit in int64, known types, block sizes, alignment,
 * data inside the file and packed in declaration order — and returns where each tensor's data
 * lies. Needs nothing architecture-specific, so `grove inspect` and `grove diff` use it on any
 * GGUF file.
 *
 * @throws InvalidModelFileError naming the file and the first problem found
 */
export function ggufTensorLayout(header: GgufHeader): GgufTensorLayout {
  const metadata = GgufMetadataReader.fromHeader(header);
  const fail: (message: string) => never = (message) => metadata.fail(message);
  const alignment = metadata.uint32("general.alignment") ?? DEFAULT_ALIGNMENT;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) fail(`general.alignment ${alignment} is not a power of two`);
  const dataStart = Math.ceil(header.headerEnd / alignment) * alignment;
  const fileSize = BigInt(header.fileSize);
  const tensors = new Map<string, ValidatedTensor>();
  let expectedOffset = 0n;
  for (const info of header.tensors) {
    const name = info.name;
    const label = `tensor ${name}`;
    const nameBytes = Buffer.byteLength(name, "utf8");
    if (nameBytes === 0 || nameBytes > MAX_NAME_BYTES) fail(`${name ? label : "a tensor with an empty name"}: names must be 1 to ${MAX_NAME_BYTES} bytes`);
    if (tensors.has(name)) fail(`${label} appears twice`);
    const shape = info.shape;
    if (shape.length < 1) fail(`${label} has 0 dimensions (1 to 4 allowed)`);
    if (shape.some((dim) => dim === 0n)) fail(`${label} has a dimension of 0 [${shape.join(", ")}]`);
    const elements = shape.reduce((product, dim) => product * dim, 1n);
    if (elements >= INT64_LIMIT) fail(`${label} has shape [${shape.join(", ")}]: ${elements} elements overflow int64`);
    const type = ggmlTypeInfo(info.type);
    if (!type) fail(`${label} has unknown ggml type ${info.type}`);
    if (shape[0] % BigInt(type.blockSize) !== 0n) {
      fail(`${label} of type ${type.name} has ${shape[0]} elements per row, not a multiple of its block size ${type.blockSize}`);
    }
    const bytes = (elements / BigInt(type.blockSize)) * BigInt(type.blockBytes);
    const start = BigInt(dataStart) + info.offset;
    if (start + bytes > fileSize) {
      fail(`${label} (${bytes} bytes at offset ${info.offset}) ends at byte ${start + bytes} beyond the file size ${fileSize}`);
    }
    if (info.offset % BigInt(alignment) !== 0n) fail(`${label} has offset ${info.offset}, not a multiple of the alignment ${alignment}`);
    // llama.cpp requires tensors packed in declaration order, each padded to the alignment.
    if (info.offset !== expectedOffset) fail(`${label} has offset ${info.offset}, expected ${expectedOffset} (tensors must be packed in order)`);
    expectedOffset += ((bytes + BigInt(alignment) - 1n) / BigInt(alignment)) * BigInt(alignment);
    // Every number below is at most the file size now, so it is exact as a double.
    tensors.set(name, { name, shape: shape.map(Number), type: type.name, bytes: Number(bytes), fileOffset: Number(start) });
  }
  return { alignment, dataStart, tensors };
}
