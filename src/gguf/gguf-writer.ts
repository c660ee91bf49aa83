import { createHash, randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Digest } from "../core/digest.js";
import { float32ToFloat16 } from "./float16.js";
import { ggmlTensorBytes, ggmlTypeByName } from "./ggml-types.js";
import { ByteSink } from "./byte-sink.js";
import type { GgufScalar, GgufScalarType } from "./gguf-value-types.js";
import { Q8_0_BLOCK_BYTES, Q8_0_BLOCK_SIZE, quantizeQ8_0 } from "./quantize-q8-0.js";

/** The value types live in their own module (the byte sink needs them too); re-exported for the writer's callers. */
export { GGUF_VALUE_TYPE_NAMES, type GgufScalar, type GgufScalarType } from "./gguf-value-types.js";

/** Tensor types the writer can encode from float32 values. */
export type GgufWriterTensorType = "F32" | "F16" | "Q8_0";

/**
 * Tensor contents: all values at once, or a function that fills `target` with the values
 * from flat element index `elementOffset` on (ggml order: innermost dimension fastest).
 * The writer calls it chunk by chunk, in order, so a 2 GB tensor never sits in memory.
 */
export type GgufTensorData = Float32Array | ((target: Float32Array, elementOffset: number) => void);

/** Options of {@link GgufWriter.write}. */
export interface GgufWriteOptions {
  /** Called after each chunk with bytes written so far and the final file size. */
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
  /**
   * Checks the complete, fsynced temporary file before it is renamed into place; a throw
   * removes it and leaves any existing file at the destination untouched.
   */
  verify?: (temporaryPath: string) => Promise<void>;
}

/** What {@link GgufWriter.write} produced. */
export interface GgufWriteResult {
  /** The final path (the file was renamed into place). */
  path: string;
  /** SHA-256 of the file, computed while writing. */
  digest: Digest;
  /** File size in bytes. */
  fileSize: number;
}

interface MetadataEntry {
  type: GgufScalarType | "array";
  itemType?: GgufScalarType;
  value: GgufScalar | readonly GgufScalar[];
}

interface TensorEntry {
  name: string;
  shape: number[];
  type: GgufWriterTensorType;
  data: GgufTensorData;
  elements: number;
  bytes: number;
  offset: number;
}

const VALUE_TYPE_IDS: Record<GgufScalarType | "array", number> = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
};

const INTEGER_RANGES: Partial<Record<GgufScalarType, [bigint, bigint]>> = {
  uint8: [0n, 0xffn],
  int8: [-0x80n, 0x7fn],
  uint16: [0n, 0xffffn],
  int16: [-0x8000n, 0x7fffn],
  uint32: [0n, 0xffffffffn],
  int32: [-0x80000000n, 0x7fffffffn],
  uint64: [0n, 0xffffffffffffffffn],
  int64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
const GGUF_VERSION = 3;
const DEFAULT_ALIGNMENT = 32;
const MAX_TENSOR_NAME_BYTES = 63; // GGML_MAX_NAME - 1
const CHUNK_ELEMENTS = 1 << 20; // a multiple of every block size used here

/**
 * Writes GGUF v3 files (little-endian) as llama.cpp reads them: header, key/value metadata,
 * tensor infos, then tensor data, each tensor padded to the alignment (32 bytes, or the
 * `general.alignment` uint32 when set). Tensor data is streamed chunk by chunk; the file is
 * written to a temporary name in the destination directory, fsynced and renamed into place,
 * and removed on any error, so no half-written file is ever visible.
 *
 * @example
 * const writer = new GgufWriter();
 * writer.setString("general.architecture", "llama");
 * writer.addTensor("output_norm.weight", [64], "F32", new Float32Array(64).fill(1));
 * const { digest } = await writer.write("/tmp/model.gguf");
 */
export class GgufWriter {
  readonly #metadata = new Map<string, MetadataEntry>();
  readonly #tensors: TensorEntry[] = [];
  readonly #tensorNames = new Set<string>();

  /** Sets a scalar metadata value (replacing an earlier value of the same key). */
  setValue(key: string, type: GgufScalarType, value: GgufScalar): this {
    checkKey(key);
    checkScalar(key, type, value);
    this.#metadata.set(key, { type, value });
    return this;
  }

  /** Sets an array of scalars (GGUF has no nested arrays that llama.cpp reads). */
  setArray(key: string, itemType: GgufScalarType, values: readonly GgufScalar[]): this {
    checkKey(key);
    for (const value of values) checkScalar(key, itemType, value);
    this.#metadata.set(key, { type: "array", itemType, value: values });
    return this;
  }

  /** Shorthand for `setValue(key, "string", value)`. */
  setString(key: string, value: string): this {
    return this.setValue(key, "string", value);
  }

  /** Shorthand for `setValue(key, "uint32", value)`. */
  setUint32(key: string, value: number): this {
    return this.setValue(key, "uint32", value);
  }

  /** Shorthand for `setValue(key, "float32", value)`. */
  setFloat32(key: string, value: number): this {
    return this.setValue(key, "float32", value);
  }

  /** Shorthand for `setValue(key, "bool", value)`. */
  setBool(key: string, value: boolean): this {
    return this.setValue(key, "bool", value);
  }

  /**
   * Declares a tensor; data is produced when the file is written, in declaration order.
   *
   * @param shape dimensions in ggml order (innermost first), 1 to 4 of them
   */
  addTensor(name: string, shape: readonly number[], type: GgufWriterTensorType, data: GgufTensorData): this {
    const nameBytes = Buffer.byteLength(name, "utf8");
    if (nameBytes === 0 || nameBytes > MAX_TENSOR_NAME_BYTES) {
      throw new RangeError(`Tensor name '${name}' must be 1 to ${MAX_TENSOR_NAME_BYTES} bytes`);
    }
    if (this.#tensorNames.has(name)) throw new RangeError(`Duplicate tensor name '${name}'`);
    if (shape.length < 1 || shape.length > 4 || shape.some((dim) => !Number.isSafeInteger(dim) || dim < 1)) {
      throw new RangeError(`Tensor '${name}' has an invalid shape [${shape.join(", ")}]`);
    }
    const elements = shape.reduce((product, dim) => product * dim, 1);
    if (type === "Q8_0" && shape[0] % Q8_0_BLOCK_SIZE !== 0) {
      throw new RangeError(`Tensor '${name}': Q8_0 needs rows that are a multiple of 32, got ${shape[0]}`);
    }
    if (data instanceof Float32Array && data.length !== elements) {
      throw new RangeError(`Tensor '${name}' has ${data.length} values for ${elements} elements`);
    }
    const bytes = Number(ggmlTensorBytes(ggmlTypeByName(type), shape));
    this.#tensors.push({ name, shape: [...shape], type, data, elements, bytes, offset: 0 });
    this.#tensorNames.add(name);
    return this;
  }

  /** Writes the file; resolves once it is durable at `path`. Overwrites an existing file. */
  async write(path: string, options: GgufWriteOptions = {}): Promise<GgufWriteResult> {
    const alignment = this.#alignment();
    let dataSize = 0;
    for (const tensor of this.#tensors) {
      tensor.offset = dataSize;
      dataSize += padTo(tensor.bytes, alignment);
    }
    const header = this.#encodeHeader(alignment);
    const totalBytes = header.length + dataSize;
    const temporaryPath = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
    const handle = await open(temporaryPath, "wx", 0o644);
    let closed = false;
    try {
      const hash = createHash("sha256");
      let position = 0;
      const append = async (bytes: Uint8Array): Promise<void> => {
        hash.update(bytes);
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
          done += bytesWritten;
        }
        position += bytes.length;
        options.onProgress?.(position, totalBytes);
      };
      await append(header);
      await this.#writeTensorData(append, alignment);
      if (position !== totalBytes) throw new Error(`Wrote ${position} bytes, expected ${totalBytes}`);
      await handle.sync();
      await handle.close();
      closed = true;
      await options.verify?.(temporaryPath);
      await rename(temporaryPath, path);
      return { path, digest: `sha256:${hash.digest("hex")}`, fileSize: totalBytes };
    } catch (error) {
      if (!closed) await handle.close().catch(() => undefined);
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }

  #alignment(): number {
    const entry = this.#metadata.get("general.alignment");
    if (!entry) return DEFAULT_ALIGNMENT;
    const value = Number(entry.value);
    if (entry.type !== "uint32" || value === 0 || (value & (value - 1)) !== 0) {
      throw new RangeError("general.alignment must be a uint32 power of two");
    }
    return value;
  }

  #encodeHeader(alignment: number): Buffer {
    const sink = new ByteSink();
    sink.uint32(GGUF_MAGIC);
    sink.uint32(GGUF_VERSION);
    sink.uint64(BigInt(this.#tensors.length));
    sink.uint64(BigInt(this.#metadata.size));
    for (const [key, entry] of this.#metadata) {
      sink.string(key);
      sink.uint32(VALUE_TYPE_IDS[entry.type]);
      if (entry.type === "array") {
        const values = entry.value as readonly GgufScalar[];
        const itemType = entry.itemType as GgufScalarType;
        sink.uint32(VALUE_TYPE_IDS[itemType]);
        sink.uint64(BigInt(values.length));
        for (const value of values) sink.scalar(itemType, value);
      } else {
        sink.scalar(entry.type, entry.value as GgufScalar);
      }
    }
    for (const tensor of this.#tensors) {
      sink.string(tensor.name);
      sink.uint32(tensor.shape.length);
      for (const dim of tensor.shape) sink.uint64(BigInt(dim));
      sink.uint32(ggmlTypeByName(tensor.type).id);
      sink.uint64(BigInt(tensor.offset));
    }
    sink.zeros(padTo(sink.length, alignment) - sink.length);
    return sink.toBuffer();
  }

  async #writeTensorData(append: (bytes: Uint8Array) => Promise<void>, alignment: number): Promise<void> {
    // Two buffer sets: one is being encoded while the other is being written.
    const buffers = [0, 1].map(() => ({
      values: new Float32Array(CHUNK_ELEMENTS),
      bytes: new Uint8Array(CHUNK_ELEMENTS * 4),
    }));
    let pending: Promise<void> = Promise.resolve();
    let turn = 0;
    try {
      for (const tensor of this.#tensors) {
        for (let start = 0; start < tensor.elements; start += CHUNK_ELEMENTS) {
          const count = Math.min(CHUNK_ELEMENTS, tensor.elements - start);
          const buffer = buffers[turn++ % 2];
          let values: Float32Array;
          if (tensor.data instanceof Float32Array) {
            values = tensor.data.subarray(start, start + count);
          } else {
            values = buffer.values.subarray(0, count);
            tensor.data(values, start);
          }
          const encoded = encode(tensor.type, values, buffer.bytes);
          await pending;
          pending = append(encoded);
        }
        const padding = padTo(tensor.bytes, alignment) - tensor.bytes;
        if (padding > 0) {
          await pending;
          pending = append(new Uint8Array(padding));
        }
      }
      await pending;
    } catch (error) {
      // Settle the write in flight before the caller closes the file (and so that its own
      // failure, if any, is not left as an unhandled rejection).
      await pending.catch(() => undefined);
      throw error;
    }
  }
}

function encode(type: GgufWriterTensorType, values: Float32Array, scratch: Uint8Array): Uint8Array {
  switch (type) {
    case "F32": {
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      scratch.set(bytes);
      return scratch.subarray(0, bytes.length);
    }
    case "F16": {
      float32ToFloat16(values, new Uint16Array(scratch.buffer, scratch.byteOffset, values.length));
      return scratch.subarray(0, values.length * 2);
    }
    case "Q8_0": {
      const length = (values.length / Q8_0_BLOCK_SIZE) * Q8_0_BLOCK_BYTES;
      quantizeQ8_0(values, scratch);
      return scratch.subarray(0, length);
    }
  }
}

function padTo(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function checkKey(key: string): void {
  if (key.length === 0) throw new RangeError("GGUF metadata keys must not be empty");
}

function checkScalar(key: string, type: GgufScalarType, value: GgufScalar): void {
  const range = INTEGER_RANGES[type];
  const fail = (): never => {
    throw new RangeError(`Metadata '${key}': ${String(value)} is not a valid ${type}`);
  };
  if (range) {
    if (typeof value === "number" ? !Number.isInteger(value) : typeof value !== "bigint") fail();
    const big = BigInt(value as number | bigint);
    if (big < range[0] || big > range[1]) fail();
  } else if (type === "float32" || type === "float64") {
    if (typeof value !== "number") fail();
  } else if (type === "bool") {
    if (typeof value !== "boolean") fail();
  } else if (typeof value !== "string") {
    fail();
  }
}
