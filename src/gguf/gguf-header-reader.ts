import { open, stat, type FileHandle } from "node:fs/promises";
import { basename } from "node:path";
import { InvalidModelFileError } from "../core/errors.js";
import { BoundedFileReader } from "./bounded-file-reader.js";

/** One metadata value: 64-bit integers as bigint, arrays as arrays of their item values. */
export interface TypedMetadataEntry {
  value: unknown;
  /** The `gguf_type` of the value. */
  type: number;
  /** For arrays, the `gguf_type` of the items. */
  subType?: number;
}

/** `enum gguf_type` names, for messages that match llama.cpp's. */
export const GGUF_VALUE_TYPE_NAMES: readonly string[] = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"];

/** The name of a GGUF metadata value type, e.g. `u32`, or `type 13` for an unknown one. */
export function ggufValueTypeName(type: number | undefined): string {
  return type === undefined ? "unknown" : (GGUF_VALUE_TYPE_NAMES[type] ?? `type ${type}`);
}

/** A tensor info as stored in the header; checked by {@link ggufTensorLayout}, not here. */
export interface GgufTensorInfo {
  /** Tensor name (valid UTF-8). */
  name: string;
  /** Dimensions in ggml order (innermost first), 0 to 4 of them, as stored. */
  shape: bigint[];
  /** The `ggml_type` id, possibly unknown. */
  type: number;
  /** Offset of the data from the start of the data section, as stored. */
  offset: bigint;
}

/** The parsed header of a GGUF file: everything before the tensor data. */
export interface GgufHeader {
  /** The file name used in error messages. */
  file: string;
  /** File size in bytes. */
  fileSize: number;
  /** GGUF version, 2 or 3. */
  version: number;
  /** Metadata in file order; keys are unique. */
  metadata: Map<string, TypedMetadataEntry>;
  /** Tensor infos in file order. */
  tensors: GgufTensorInfo[];
  /** Byte offset just past the last tensor info (the data section starts at the next alignment). */
  headerEnd: number;
}

/**
 * Grove's caps on what a header may declare. llama.cpp caps almost nothing (strings and
 * arrays at 2^30, counts at SIZE_MAX / struct size); these are far above any published model
 * and far below what would exhaust memory. Every count and length is also checked against
 * the bytes left in the file before anything is allocated for it.
 */
export const GGUF_HEADER_LIMITS = Object.freeze({
  /** Metadata keys per file; real models have fewer than 100. */
  maxMetadataCount: 65_536,
  /** Tensors per file; the largest mixture-of-experts models have a few thousand. */
  maxTensorCount: 1_048_576,
  /** Bytes of a metadata key or tensor name (llama.cpp then caps tensor names at 63). */
  maxKeyBytes: 65_536,
  /** Bytes of one string value; chat templates, the longest, are well under 1 MiB. */
  maxStringBytes: 64 * 1024 * 1024,
  /** Items of one array value; the largest vocabularies have about 262,000 tokens. */
  maxArrayLength: 16 * 1024 * 1024,
  /** Bytes of the whole header (metadata and tensor infos); large vocabularies take ~20 MB. */
  maxHeaderBytes: 256 * 1024 * 1024,
});

const PREAMBLE_BYTES = 24; // magic, version, tensor count, metadata count
const GGUF_MAGIC = "GGUF";
const MAX_DIMS = 4; // GGML_MAX_DIMS
const STRING = 8;
const ARRAY = 9;
// The smallest encodings, to test counts against the bytes left: a metadata entry is a
// 1-byte key, a type and a 1-byte value; a tensor info a 1-byte name, one dimension, a type
// and an offset.
const MIN_METADATA_ENTRY_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
// Bytes per item in an array, by value type; a string is at least its 8-byte length.
const ITEM_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8];
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the header of a GGUF file (magic, version, metadata, tensor infos) with a reader that
 * checks every count and length against the bytes left in the file and against
 * {@link GGUF_HEADER_LIMITS} before reading it, so a hostile file is refused in milliseconds
 * and with bounded memory. Checks structure only: tensor shapes, types and offsets are for
 * {@link ggufTensorLayout}, hyperparameters for the validator.
 *
 * @throws InvalidModelFileError naming the file and the first problem found
 */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const file = basename(path);
  const fail: (message: string, cause?: unknown) => never = (message, cause) => {
    throw new InvalidModelFileError(`${file}: ${message}`, cause === undefined ? {} : { cause });
  };
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => fail(`cannot read the file (${error.code ?? error.message})`, error));
  if (!info.isFile()) fail("is not a regular file");
  if (info.size === 0) fail("is empty (0 bytes)");
  const handle = await open(path, "r").catch((error: NodeJS.ErrnoException) => fail(`cannot read the file (${error.code ?? error.message})`, error));
  try {
    return await new HeaderParser(file, handle, info.size).parse();
  } finally {
    await handle.close();
  }
}

/** One parse of one header; `context` says what is being read, for truncation messages. */
class HeaderParser {
  readonly #file: string;
  readonly #reader: BoundedFileReader;
  #context = "the GGUF preamble";

  constructor(file: string, handle: FileHandle, fileSize: number) {
    this.#file = file;
    this.#reader = new BoundedFileReader(handle, fileSize, (needed) => this.truncated(needed));
  }

  fail(message: string): never {
    throw new InvalidModelFileError(`${this.#file}: ${message}`);
  }

  truncated(needed: number): never {
    const reader = this.#reader;
    return this.fail(
      `is truncated: the file ends at byte ${reader.size}, inside the GGUF header ` +
        `(${this.#context} needs ${needed} bytes at byte ${reader.position})`,
    );
  }

  async parse(): Promise<GgufHeader> {
    const reader = this.#reader;
    const { version, tensorCount, metadataCount } = await this.#preamble();
    const metadata = new Map<string, TypedMetadataEntry>();
    const entryIndex = new Map<string, number>();
    for (let index = 0; index < metadataCount; index++) {
      this.#context = `the key of metadata entry ${index}`;
      const key = await this.#string(GGUF_HEADER_LIMITS.maxKeyBytes, true);
      if (key === undefined) this.fail(`metadata entry ${index} has a key that is not valid UTF-8`);
      if (key.length === 0) this.fail(`metadata entry ${index} has an empty key`);
      const earlier = entryIndex.get(key);
      if (earlier !== undefined) this.fail(`has the metadata key '${key}' twice (entries ${earlier} and ${index})`);
      entryIndex.set(key, index);
      this.#context = `the value of metadata key '${key}'`;
      metadata.set(key, await this.#value(key));
    }
    const tensors: GgufTensorInfo[] = [];
    for (let index = 0; index < tensorCount; index++) {
      tensors.push(await this.#tensorInfo(index));
      this.#checkHeaderSize(0);
    }
    return { file: this.#file, fileSize: reader.size, version, metadata, tensors, headerEnd: reader.position };
  }

  /** Magic, version, endianness and the two counts, with messages a person can act on. */
  async #preamble(): Promise<{ version: number; tensorCount: number; metadataCount: number }> {
    const reader = this.#reader;
    const size = reader.size;
    await reader.need(Math.min(size, PREAMBLE_BYTES));
    const head = reader.bytes(Math.min(size, PREAMBLE_BYTES));
    if (head.length < 4 || head.toString("latin1", 0, 4) !== GGUF_MAGIC) {
      const printable = /^[\x20-\x7e\t\r\n]*$/.test(head.toString("latin1"));
      this.fail(`is not a GGUF file (it does not start with 'GGUF'${printable ? "; it looks like text" : ""})`);
    }
    if (size < PREAMBLE_BYTES) this.fail(`is truncated: ${size} bytes is shorter than a GGUF header (${PREAMBLE_BYTES} bytes)`);
    const version = head.readUInt32LE(4);
    if ((version & 0xffff) === 0 && head.readUInt32BE(4) !== 0) this.fail("is big-endian; llama.cpp reads only little-endian GGUF files");
    if (version !== 2 && version !== 3) this.fail(`has GGUF version ${version}; llama.cpp reads versions 2 and 3`);
    const tensorCount = head.readBigUInt64LE(8);
    const metadataCount = head.readBigUInt64LE(16);
    const limits = GGUF_HEADER_LIMITS;
    if (metadataCount > BigInt(limits.maxMetadataCount)) {
      this.fail(`declares ${metadataCount} metadata keys; Grove accepts at most ${limits.maxMetadataCount}`);
    }
    if (tensorCount > BigInt(limits.maxTensorCount)) this.fail(`declares ${tensorCount} tensors; Grove accepts at most ${limits.maxTensorCount}`);
    const smallest = metadataCount * BigInt(MIN_METADATA_ENTRY_BYTES) + tensorCount * BigInt(MIN_TENSOR_INFO_BYTES);
    if (smallest > BigInt(reader.remaining)) {
      this.fail(
        `is truncated or corrupt: it declares ${metadataCount} metadata keys and ${tensorCount} tensors, ` +
          `which need at least ${smallest} bytes, but only ${reader.remaining} follow the preamble`,
      );
    }
    return { version, tensorCount: Number(tensorCount), metadataCount: Number(metadataCount) };
  }

  /**
   * A GGUF string: uint64 length, then bytes. Undefined when `strict` and not valid UTF-8;
   * otherwise invalid bytes become U+FFFD, as llama.cpp's vocabulary checks expect.
   */
  async #string(limit: number, strict: boolean): Promise<string | undefined> {
    await this.#reader.need(8);
    const length = this.#stringLength(limit);
    await this.#reader.need(length);
    return this.#decode(length, strict);
  }

  /** Refuses a header that would grow past the cap with `bytes` more. */
  #checkHeaderSize(bytes: number): void {
    const limit = GGUF_HEADER_LIMITS.maxHeaderBytes;
    if (this.#reader.position + bytes > limit) {
      this.fail(`has a header of more than ${limit} bytes (at ${this.#context}); Grove accepts at most ${limit}`);
    }
  }

  /** Reads a string's uint64 length and checks it against the bytes left and `limit`. */
  #stringLength(limit: number): number {
    const reader = this.#reader;
    const declared = reader.uint64();
    if (declared > BigInt(reader.remaining)) {
      this.fail(`is truncated or corrupt: ${this.#context} is a string of ${declared} bytes, but only ${reader.remaining} bytes are left in the file`);
    }
    if (declared > BigInt(limit)) this.fail(`${this.#context} is a string of ${declared} bytes; Grove accepts at most ${limit}`);
    this.#checkHeaderSize(Number(declared));
    return Number(declared);
  }

  /**
   * Undefined when `strict` and not valid UTF-8; otherwise invalid bytes become U+FFFD, as
   * llama.cpp's vocabulary checks expect.
   */
  #decode(length: number, strict: boolean): string | undefined {
    const bytes = this.#reader.bytes(length);
    // Buffer's decoder is faster than TextDecoder on short strings and also maps bad bytes to U+FFFD.
    if (!strict) return bytes.toString("utf8");
    try {
      return strictUtf8.decode(bytes);
    } catch {
      // Names must round-trip: two different invalid byte strings would decode alike.
      return undefined;
    }
  }

  /** An array of strings: the hot loop of a header (vocabularies), so it awaits only to refill. */
  async #stringArray(values: unknown[]): Promise<void> {
    const reader = this.#reader;
    const limit = GGUF_HEADER_LIMITS.maxStringBytes;
    for (let index = 0; index < values.length; index++) {
      const lengthRead = reader.need(8);
      if (lengthRead) await lengthRead;
      const length = this.#stringLength(limit);
      const bytesRead = reader.need(length);
      if (bytesRead) await bytesRead;
      values[index] = this.#decode(length, false);
    }
  }

  async #value(key: string): Promise<TypedMetadataEntry> {
    const reader = this.#reader;
    await reader.need(4);
    const type = reader.uint32();
    if (type !== ARRAY) return { type, value: await this.#scalar(type, key) };
    await reader.need(12);
    const itemType = reader.uint32();
    const declared = reader.uint64();
    if (itemType === ARRAY) this.fail(`metadata key '${key}' is a nested array, which llama.cpp cannot read`);
    const itemBytes = ITEM_BYTES[itemType];
    if (itemBytes === undefined) this.fail(`metadata key '${key}' is an array of unknown value type ${itemType}`);
    const typeName = GGUF_VALUE_TYPE_NAMES[itemType];
    if (declared * BigInt(itemBytes) > BigInt(reader.remaining)) {
      this.fail(`is truncated or corrupt: metadata key '${key}' declares ${declared} ${typeName} items, more than the ${reader.remaining} bytes left in the file can hold`);
    }
    if (declared > BigInt(GGUF_HEADER_LIMITS.maxArrayLength)) {
      this.fail(`metadata key '${key}' declares ${declared} ${typeName} items; Grove accepts at most ${GGUF_HEADER_LIMITS.maxArrayLength}`);
    }
    const length = Number(declared);
    this.#checkHeaderSize(length * itemBytes);
    const values = new Array<unknown>(length);
    if (itemType === STRING) {
      await this.#stringArray(values);
    } else {
      // Fixed-size items: read in window-sized batches instead of one `need` per item.
      const batch = Math.max(1, Math.floor((64 * 1024) / itemBytes));
      for (let start = 0; start < length; start += batch) {
        const end = Math.min(length, start + batch);
        await reader.need((end - start) * itemBytes);
        for (let index = start; index < end; index++) values[index] = this.#fixed(itemType);
      }
    }
    return { type, subType: itemType, value: values };
  }

  async #scalar(type: number, key: string): Promise<unknown> {
    if (type === STRING) return this.#string(GGUF_HEADER_LIMITS.maxStringBytes, false);
    const bytes = ITEM_BYTES[type];
    if (bytes === undefined) this.fail(`metadata key '${key}' has unknown value type ${type}`);
    await this.#reader.need(bytes);
    return this.#fixed(type);
  }

  /** A fixed-size value whose bytes are already available. */
  #fixed(type: number): unknown {
    const reader = this.#reader;
    switch (type) {
      case 0:
        return reader.uint8();
      case 1:
        return reader.int8();
      case 2:
        return reader.uint16();
      case 3:
        return reader.int16();
      case 4:
        return reader.uint32();
      case 5:
        return reader.int32();
      case 6:
        return reader.float32();
      case 7:
        return reader.uint8() !== 0;
      case 10:
        return reader.uint64();
      case 11:
        return reader.int64();
      default:
        return reader.float64();
    }
  }

  async #tensorInfo(index: number): Promise<GgufTensorInfo> {
    const reader = this.#reader;
    this.#context = `the name of tensor ${index}`;
    const name = await this.#string(GGUF_HEADER_LIMITS.maxKeyBytes, true);
    if (name === undefined) this.fail(`tensor ${index} has a name that is not valid UTF-8`);
    this.#context = `the info of tensor ${name}`;
    await reader.need(4);
    const dimensions = reader.uint32();
    if (dimensions > MAX_DIMS) this.fail(`tensor ${name} has ${dimensions} dimensions (1 to ${MAX_DIMS} allowed)`);
    await reader.need(dimensions * 8 + 4 + 8);
    const shape: bigint[] = [];
    for (let dimension = 0; dimension < dimensions; dimension++) shape.push(reader.uint64());
    const type = reader.uint32();
    const offset = reader.uint64();
    return { name, shape, type, offset };
  }
}

