import { open, stat } from "node:fs/promises";
import { basename } from "node:path";
import { gguf } from "@huggingface/gguf";
import { InvalidModelFileError } from "../core/errors.js";
import { checkArchitecture, type ArchitectureShape } from "./gguf-architecture-checks.js";
import { GgufMetadataReader, type TypedMetadataEntry } from "./gguf-metadata-reader.js";
import { ggmlTypeInfo } from "./ggml-types.js";

/** What Grove knows about a GGUF file once {@link validateGgufFile} accepted it. */
/**
 * What a validated file holds: the hyperparameters checked against llama.cpp's
 * expectations (`ArchitectureShape`: architecture, context, embedding, layers, heads, feed
 * forward, vocabulary and tokenizer) plus facts about the file itself.
 */
export interface GgufSummary extends ArchitectureShape {
  /** `general.name`, when the file has one. */
  name?: string;
  /** Number of tensors. */
  tensorCount: number;
  /** Total elements over all tensors. */
  parameterCount: number;
  /** File size in bytes. */
  fileSize: number;
  /** The tensor type holding the most parameters, e.g. `F16` or `Q8_0`. */
  fileType?: string;
  /** `tokenizer.chat_template`, when present. */
  chatTemplate?: string;
}

/** A tensor as the validator saw it: shape in ggml order, type name and byte size. */
export interface ValidatedTensor {
  name: string;
  shape: number[];
  type: string;
  bytes: number;
}

const HEADER_BYTES = 24; // magic, version, tensor count, key/value count
const GGUF_MAGIC = "GGUF";
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_NAME_BYTES = 63; // GGML_MAX_NAME - 1
const DEFAULT_ALIGNMENT = 32;

/**
 * Checks a GGUF file for everything that would make llama.cpp refuse it or abort the
 * process (GGML_ASSERT): header, metadata types, tensor infos, offsets and sizes against the
 * file, and for `llama` models the hyperparameters, tensor shapes and vocabulary. Reads only
 * the header, so it takes milliseconds even for large files.
 *
 * @throws InvalidModelFileError naming the file and the first problem found
 */
export async function validateGgufFile(path: string): Promise<GgufSummary> {
  const file = basename(path);
  const fail: (message: string, cause?: unknown) => never = (message, cause) => {
    throw new InvalidModelFileError(`${file}: ${message}`, cause === undefined ? {} : { cause });
  };
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => fail(`cannot read the file (${error.code ?? error.message})`, error));
  if (!info.isFile()) fail("is not a regular file");
  const fileSize = info.size;
  if (fileSize === 0) fail("is empty (0 bytes)");
  await checkPreamble(path, fileSize, fail);

  let parsed: Awaited<ReturnType<typeof parseHeader>>;
  try {
    parsed = await parseHeader(path);
  } catch (error) {
    return fail(`cannot parse the GGUF header: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  const headerEnd = parsed.tensorInfoByteRange[1];
  // @huggingface/gguf reads past the end of a local file as zeros, so a truncated header parses.
  if (headerEnd > fileSize) fail(`is truncated: the file ends at byte ${fileSize}, inside the GGUF header`);

  const entries = parsed.typedMetadata as unknown as Record<string, TypedMetadataEntry>;
  const metadata = new GgufMetadataReader(file, entries);
  const declaredKeys = Number(parsed.metadata.kv_count);
  const distinctKeys = Object.keys(entries).length - 3; // less version, tensor_count, kv_count
  if (distinctKeys !== declaredKeys) fail(`has duplicate metadata keys (${declaredKeys} declared, ${distinctKeys} distinct)`);
  for (const [key, entry] of Object.entries(entries)) {
    if (entry.type === 9 && entry.subType === 9) fail(`metadata key '${key}' is a nested array, which llama.cpp cannot read`);
  }
  const alignment = metadata.uint32("general.alignment") ?? DEFAULT_ALIGNMENT;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) fail(`general.alignment ${alignment} is not a power of two`);

  const tensors = checkTensors(parsed.tensorInfos, Number(parsed.tensorDataOffset), alignment, fileSize, fail);
  const shape = checkArchitecture(metadata, tensors);
  return summarize(metadata, shape, tensors, fileSize);
}

async function parseHeader(path: string) {
  return gguf(path, { allowLocalFile: true, typedMetadata: true });
}

/** Magic, version and endianness, from the first bytes, with messages a person can act on. */
async function checkPreamble(path: string, fileSize: number, fail: (message: string) => never): Promise<void> {
  const handle = await open(path, "r");
  const head = Buffer.alloc(HEADER_BYTES);
  try {
    await handle.read(head, 0, HEADER_BYTES, 0);
  } finally {
    await handle.close();
  }
  if (fileSize < 4 || head.toString("latin1", 0, 4) !== GGUF_MAGIC) {
    const printable = /^[\x20-\x7e\t\r\n]*$/.test(head.subarray(0, Math.min(fileSize, HEADER_BYTES)).toString("latin1"));
    fail(`is not a GGUF file (it does not start with 'GGUF'${printable ? "; it looks like text" : ""})`);
  }
  if (fileSize < HEADER_BYTES) fail(`is truncated: ${fileSize} bytes is shorter than a GGUF header (${HEADER_BYTES} bytes)`);
  const version = head.readUInt32LE(4);
  if ((version & 0xffff) === 0 && head.readUInt32BE(4) !== 0) fail("is big-endian; llama.cpp reads only little-endian GGUF files");
  if (version !== 2 && version !== 3) fail(`has GGUF version ${version}; llama.cpp reads versions 2 and 3`);
}

function checkTensors(
  infos: readonly { name: string; n_dims: number; shape: bigint[]; dtype: number; offset: bigint }[],
  dataStart: number,
  alignment: number,
  fileSize: number,
  fail: (message: string) => never,
): Map<string, ValidatedTensor> {
  const tensors = new Map<string, ValidatedTensor>();
  let expectedOffset = 0n;
  for (const info of infos) {
    const name = info.name;
    const label = `tensor ${name}`;
    const nameBytes = Buffer.byteLength(name, "utf8");
    if (nameBytes === 0 || nameBytes > MAX_NAME_BYTES) fail(`${label || "with an empty name"}: names must be 1 to ${MAX_NAME_BYTES} bytes`);
    if (tensors.has(name)) fail(`${label} appears twice`);
    if (info.n_dims < 1 || info.n_dims > MAX_DIMS) fail(`${label} has ${info.n_dims} dimensions (1 to ${MAX_DIMS} allowed)`);
    if (info.shape.some((dim) => dim <= 0n)) fail(`${label} has a non-positive dimension [${info.shape.join(", ")}]`);
    const type = ggmlTypeInfo(info.dtype);
    if (!type) fail(`${label} has unknown ggml type ${info.dtype}`);
    if (info.shape[0] % BigInt(type.blockSize) !== 0n) {
      fail(`${label} of type ${type.name} has ${info.shape[0]} elements per row, not a multiple of its block size ${type.blockSize}`);
    }
    const elements = info.shape.reduce((product, dim) => product * dim, 1n);
    const bytes = (elements / BigInt(type.blockSize)) * BigInt(type.blockBytes);
    if (info.offset % BigInt(alignment) !== 0n) fail(`${label} has offset ${info.offset}, not a multiple of the alignment ${alignment}`);
    // llama.cpp requires tensors packed in declaration order, each padded to the alignment.
    if (info.offset !== expectedOffset) fail(`${label} has offset ${info.offset}, expected ${expectedOffset} (tensors must be packed in order)`);
    const end = BigInt(dataStart) + info.offset + bytes;
    if (end > BigInt(fileSize)) fail(`${label} ends at byte ${end} beyond the file size ${fileSize}`);
    expectedOffset += ((bytes + BigInt(alignment) - 1n) / BigInt(alignment)) * BigInt(alignment);
    tensors.set(name, { name, shape: info.shape.map(Number), type: type.name, bytes: Number(bytes) });
  }
  return tensors;
}

function summarize(
  metadata: GgufMetadataReader,
  shape: ArchitectureShape,
  tensors: Map<string, ValidatedTensor>,
  fileSize: number,
): GgufSummary {
  const elementsByType = new Map<string, number>();
  let parameterCount = 0;
  for (const tensor of tensors.values()) {
    const elements = tensor.shape.reduce((product, dim) => product * dim, 1);
    parameterCount += elements;
    elementsByType.set(tensor.type, (elementsByType.get(tensor.type) ?? 0) + elements);
  }
  let fileType: string | undefined;
  for (const [type, elements] of elementsByType) {
    if (fileType === undefined || elements > (elementsByType.get(fileType) ?? 0)) fileType = type;
  }
  const summary: GgufSummary = {
    architecture: shape.architecture,
    contextLength: shape.contextLength,
    embeddingLength: shape.embeddingLength,
    blockCount: shape.blockCount,
    headCount: shape.headCount,
    headCountKv: shape.headCountKv,
    feedForwardLength: shape.feedForwardLength,
    vocabularySize: shape.vocabularySize,
    tensorCount: tensors.size,
    parameterCount,
    fileSize,
    tokenizerModel: shape.tokenizerModel,
  };
  const name = metadata.string("general.name");
  if (name !== undefined) summary.name = name;
  if (fileType !== undefined) summary.fileType = fileType;
  const chatTemplate = metadata.string("tokenizer.chat_template");
  if (chatTemplate !== undefined) summary.chatTemplate = chatTemplate;
  return summary;
}
