/**
 * Test helpers for GGUF files (used only by tests): a tiny llama model with knobs to break
 * it, raw encoders to build hostile headers byte by byte, and {@link walkGguf}, a second,
 * independent and deliberately plain parser that the fuzz test uses as its oracle.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GgufWriter } from "../gguf/gguf-writer.js";
import { ggmlTypeInfo } from "../gguf/ggml-types.js";

/** Knobs of {@link writeTinyLlama}. */
export interface TinyLlamaOptions {
  /** Metadata keys to leave out. */
  omit?: string[];
  /** Tensors to leave out. */
  omitTensors?: string[];
  /** Metadata to change, as [key, type, value]. */
  set?: [string, "uint32" | "string", number | string][];
  /** Vocabulary. */
  tokens?: string[];
  /** `tokenizer.ggml.token_type`, one per token unless testing a mismatch. */
  tokenTypes?: number[];
  /** Shape overrides by tensor name. */
  shapes?: Record<string, number[]>;
  /** Tensors to add after Llama's, by name and shape (biases, Qwen3's head norms). */
  extraTensors?: Record<string, number[]>;
  /** `general.architecture` and the prefix of its keys (the tensors stay Llama's). @default "llama" */
  architecture?: string;
}

/** Embedding width of {@link writeTinyLlama}'s model. */
export const TINY_EMBEDDING = 32;
/** Feed-forward width of {@link writeTinyLlama}'s model. */
export const TINY_FEED_FORWARD = 64;
/** The default vocabulary of {@link writeTinyLlama}. */
export const TINY_TOKENS = ["a", "b", "c", "ab", "<|endoftext|>", "<|im_end|>", "d", "e"];

/** Writes a one-layer llama model (about 40 KB, a millisecond) to `directory/name`. */
export async function writeTinyLlama(directory: string, name: string, options: TinyLlamaOptions = {}): Promise<string> {
  const writer = new GgufWriter();
  const tokens = options.tokens ?? TINY_TOKENS;
  const architecture = options.architecture ?? "llama";
  const keys: [string, "uint32" | "float32" | "string", number | string][] = [
    ["general.architecture", "string", architecture],
    ["general.name", "string", "tiny"],
    [`${architecture}.context_length`, "uint32", 128],
    [`${architecture}.embedding_length`, "uint32", TINY_EMBEDDING],
    [`${architecture}.block_count`, "uint32", 1],
    [`${architecture}.feed_forward_length`, "uint32", TINY_FEED_FORWARD],
    [`${architecture}.attention.head_count`, "uint32", 2],
    [`${architecture}.attention.head_count_kv`, "uint32", 1],
    [`${architecture}.attention.layer_norm_rms_epsilon`, "float32", 1e-5],
    ["tokenizer.ggml.model", "string", "gpt2"],
    ["tokenizer.ggml.bos_token_id", "uint32", 4],
    ["tokenizer.ggml.eos_token_id", "uint32", 5],
    ["tokenizer.chat_template", "string", "{{ messages }}"],
  ];
  for (const [key, type, value] of keys) if (!options.omit?.includes(key)) writer.setValue(key, type, value);
  for (const [key, type, value] of options.set ?? []) writer.setValue(key, type, value);
  if (!options.omit?.includes("tokenizer.ggml.tokens")) writer.setArray("tokenizer.ggml.tokens", "string", tokens);
  writer.setArray("tokenizer.ggml.token_type", "int32", options.tokenTypes ?? tokens.map(() => 1));
  if (!options.omit?.includes("tokenizer.ggml.merges")) writer.setArray("tokenizer.ggml.merges", "string", ["a b"]);
  const embedding = TINY_EMBEDDING;
  const tensors: [string, number[]][] = [
    ["token_embd.weight", [embedding, tokens.length]],
    ["blk.0.attn_norm.weight", [embedding]],
    ["blk.0.attn_q.weight", [embedding, embedding]],
    ["blk.0.attn_k.weight", [embedding, embedding / 2]],
    ["blk.0.attn_v.weight", [embedding, embedding / 2]],
    ["blk.0.attn_output.weight", [embedding, embedding]],
    ["blk.0.ffn_norm.weight", [embedding]],
    ["blk.0.ffn_gate.weight", [embedding, TINY_FEED_FORWARD]],
    ["blk.0.ffn_up.weight", [embedding, TINY_FEED_FORWARD]],
    ["blk.0.ffn_down.weight", [TINY_FEED_FORWARD, embedding]],
    ["output_norm.weight", [embedding]],
  ];
  for (const [tensor, defaultShape] of [...tensors, ...Object.entries(options.extraTensors ?? {})]) {
    if (options.omitTensors?.includes(tensor)) continue;
    const shape = options.shapes?.[tensor] ?? defaultShape;
    writer.addTensor(tensor, shape, "F32", new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01));
  }
  const path = join(directory, name);
  await writer.write(path);
  return path;
}

/** A little-endian uint32. */
export function rawUint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0);
  return bytes;
}

/** A little-endian uint64. */
export function rawUint64(value: bigint | number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)));
  return bytes;
}

/** A GGUF string: uint64 length (the byte length unless `declared` says otherwise), bytes. */
export function rawString(text: string | Buffer, declared?: bigint | number): Buffer {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  return Buffer.concat([rawUint64(declared ?? bytes.length), bytes]);
}

/** Magic, version, tensor count and metadata count. */
export function rawPreamble(tensorCount: bigint | number, metadataCount: bigint | number, version = 3): Buffer {
  return Buffer.concat([Buffer.from("GGUF"), rawUint32(version), rawUint64(tensorCount), rawUint64(metadataCount)]);
}

/** A u32 metadata entry. */
export function rawUint32Entry(key: string, value: number): Buffer {
  return Buffer.concat([rawString(key), rawUint32(4), rawUint32(value)]);
}

/** A tensor info: name, dimensions, ggml type and offset. */
export function rawTensorInfo(name: string, shape: (bigint | number)[], type: number, offset: bigint | number, dimensions = shape.length): Buffer {
  return Buffer.concat([rawString(name), rawUint32(dimensions), ...shape.map((dim) => rawUint64(dim)), rawUint32(type), rawUint64(offset)]);
}

/** Where a field of a header lies, for targeted mutations. */
export interface GgufField {
  /** Byte offset. */
  offset: number;
  /** 4 or 8. */
  size: 4 | 8;
  /** What the field is. */
  kind: "count" | "length" | "value-type" | "dimensions" | "dimension" | "tensor-type" | "tensor-offset";
}

/** What {@link walkGguf} found. */
export interface WalkedGguf {
  fields: GgufField[];
  /** Offsets where one structural element ends and the next begins. */
  boundaries: number[];
  keys: string[];
  tensors: { name: string; shape: bigint[]; type: number; offset: bigint }[];
  alignment: number;
  headerEnd: number;
}

const FIXED_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8];

/**
 * Parses a GGUF header from memory with no limits beyond the bytes present, recording every
 * field. Throws a plain Error on anything structurally wrong: a second opinion to hold the
 * validator's acceptances against.
 */
export function walkGguf(bytes: Buffer): WalkedGguf {
  let at = 0;
  const fields: GgufField[] = [];
  const boundaries: number[] = [];
  const need = (count: number | bigint): number => {
    if (BigInt(at) + BigInt(count) > BigInt(bytes.length)) throw new Error(`truncated at ${at}`);
    return Number(count);
  };
  const field = (size: 4 | 8, kind: GgufField["kind"]): bigint => {
    need(size);
    fields.push({ offset: at, size, kind });
    const value = size === 4 ? BigInt(bytes.readUInt32LE(at)) : bytes.readBigUInt64LE(at);
    at += size;
    return value;
  };
  const string = (): Buffer => {
    const length = need(field(8, "length"));
    at += length;
    return bytes.subarray(at - length, at);
  };
  need(24);
  if (bytes.toString("latin1", 0, 4) !== "GGUF") throw new Error("magic");
  if (![2, 3].includes(bytes.readUInt32LE(4))) throw new Error("version");
  at = 8;
  const tensorCount = field(8, "count");
  const metadataCount = field(8, "count");
  const keys: string[] = [];
  let alignment = 32;
  for (let index = 0n; index < metadataCount; index++) {
    boundaries.push(at);
    keys.push(string().toString("utf8"));
    const type = Number(field(4, "value-type"));
    let itemType = type;
    let count = 1n;
    if (type === 9) {
      itemType = Number(field(4, "value-type"));
      count = field(8, "length");
    }
    const fixed = FIXED_BYTES[itemType];
    if (fixed === undefined) throw new Error(`value type ${itemType}`);
    if (fixed > 0) {
      const length = need(count * BigInt(fixed));
      if (keys.at(-1) === "general.alignment" && type === 4) alignment = bytes.readUInt32LE(at);
      at += length;
    } else if (itemType === 8) {
      for (let item = 0n; item < count; item++) string();
    } else {
      throw new Error("nested array");
    }
  }
  const tensors: WalkedGguf["tensors"] = [];
  for (let index = 0n; index < tensorCount; index++) {
    boundaries.push(at);
    const name = string().toString("utf8");
    const dimensions = Number(field(4, "dimensions"));
    if (dimensions > 4) throw new Error("dimensions");
    const shape: bigint[] = [];
    for (let dim = 0; dim < dimensions; dim++) shape.push(field(8, "dimension"));
    const type = Number(field(4, "tensor-type"));
    const offset = field(8, "tensor-offset");
    tensors.push({ name, shape, type, offset });
  }
  const headerEnd = at;
  boundaries.push(headerEnd);
  const dataStart = Math.ceil(headerEnd / alignment) * alignment;
  for (const tensor of tensors) {
    const type = ggmlTypeInfo(tensor.type);
    if (!type) continue;
    const elements = tensor.shape.reduce((product, dim) => product * dim, 1n);
    boundaries.push(dataStart + Number(tensor.offset), dataStart + Number(tensor.offset + (elements / BigInt(type.blockSize)) * BigInt(type.blockBytes)));
  }
  return { fields, boundaries: [...new Set(boundaries)].sort((a, b) => a - b), keys, tensors, alignment, headerEnd };
}

/**
 * Copies the GGUF file `source` to `target` without the tensors `drop` selects: metadata kept
 * byte for byte, the remaining tensors repacked in order at the file's alignment — the file a
 * user gets by deleting tensors with a GGUF editor.
 */
export async function writeGgufWithoutTensors(source: string, target: string, drop: (name: string) => boolean): Promise<string[]> {
  const bytes = await readFile(source);
  const walked = walkGguf(bytes);
  const alignment = BigInt(walked.alignment);
  const dataStart = Math.ceil(walked.headerEnd / walked.alignment) * walked.alignment;
  // The first tensor info starts where the last metadata entry ends.
  const metadataEnd = walked.boundaries[walked.keys.length];
  const kept = walked.tensors.filter((tensor) => !drop(tensor.name));
  const preamble = Buffer.from(bytes.subarray(0, metadataEnd));
  preamble.writeBigUInt64LE(BigInt(kept.length), 8);
  const infos: Buffer[] = [];
  const data: Buffer[] = [];
  let offset = 0n;
  for (const tensor of kept) {
    const type = ggmlTypeInfo(tensor.type)!;
    const size = (tensor.shape.reduce((product, dim) => product * dim, 1n) / BigInt(type.blockSize)) * BigInt(type.blockBytes);
    infos.push(rawTensorInfo(tensor.name, tensor.shape, tensor.type, offset));
    const padded = ((size + alignment - 1n) / alignment) * alignment;
    const chunk = Buffer.alloc(Number(padded));
    const start = dataStart + Number(tensor.offset);
    bytes.copy(chunk, 0, start, start + Number(size));
    data.push(chunk);
    offset += padded;
  }
  const header = Buffer.concat([preamble, ...infos]);
  const padding = Buffer.alloc((walked.alignment - (header.length % walked.alignment)) % walked.alignment);
  await writeFile(target, Buffer.concat([header, padding, ...data]));
  return walked.tensors.filter((tensor) => drop(tensor.name)).map((tensor) => tensor.name);
}
