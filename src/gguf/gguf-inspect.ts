import { resolve } from "node:path";
import { InvalidModelFileError } from "../core/errors.js";
import { readGgufHeader, type GgufHeader } from "./gguf-header-reader.js";
import { summarizeMetadataValue, type MetadataSummaryOptions, type MetadataValueSummary } from "./gguf-metadata-summary.js";
import { ggmlTypeInfo } from "./ggml-types.js";
import { ggufTensorLayout, type ValidatedTensor } from "./gguf-tensor-layout.js";
import { validateGgufHeader, type GgufSummary } from "./gguf-validator.js";

/** One metadata key of an inspected file. */
export interface InspectedMetadataEntry extends MetadataValueSummary {
  key: string;
}

/** One tensor of an inspected file. */
export interface InspectedTensor {
  name: string;
  /** Dimensions in ggml order (innermost first). */
  shape: number[];
  /** ggml type name, or `type N` for an unknown id. */
  type: string;
  /** Bytes of data; absent when the type is unknown. */
  bytes?: number;
  /** Absolute byte offset of the data; absent when the tensor layout is invalid. */
  fileOffset?: number;
}

/** What {@link inspectGgufFile} found. */
export interface GgufInspection {
  /** Absolute path. */
  path: string;
  fileSize: number;
  /** GGUF version. */
  version: number;
  metadataCount: number;
  tensorCount: number;
  /** The validator's summary; absent when the file fails validation. */
  summary?: GgufSummary;
  /** Why the validator refuses the file; absent when it accepts it. */
  problem?: string;
  /** Every key in file order, long arrays summarised. */
  metadata: InspectedMetadataEntry[];
  /** Every tensor in file order. */
  tensors: InspectedTensor[];
}

/** Options of {@link inspectGgufFile}. */
export type InspectGgufOptions = MetadataSummaryOptions;

/**
 * Reads any GGUF file without importing it: header, metadata (long arrays summarised), tensor
 * table and the validator's verdict. A file whose header cannot be parsed is an error; one that
 * parses but fails validation is reported with `problem`, so that the reason can be shown next
 * to its metadata.
 *
 * @throws InvalidModelFileError when the file is missing, not GGUF, or its header is malformed
 */
export async function inspectGgufFile(path: string, options: InspectGgufOptions = {}): Promise<GgufInspection> {
  const header = await readGgufHeader(path);
  let summary: GgufSummary | undefined;
  let problem: string | undefined;
  let located: Map<string, ValidatedTensor> | undefined;
  try {
    const validation = validateGgufHeader(header);
    summary = validation.summary;
    located = validation.layout.tensors;
  } catch (error) {
    if (!(error instanceof InvalidModelFileError)) throw error;
    problem = error.message;
    located = tensorLayoutOrNothing(header);
  }
  const inspection: GgufInspection = {
    path: resolve(path),
    fileSize: header.fileSize,
    version: header.version,
    metadataCount: header.metadata.size,
    tensorCount: header.tensors.length,
    metadata: [...header.metadata].map(([key, entry]) => ({ key, ...summarizeMetadataValue(entry, options) })),
    tensors: tensorTable(header, located),
  };
  if (summary) inspection.summary = summary;
  if (problem !== undefined) inspection.problem = problem;
  return inspection;
}

function tensorLayoutOrNothing(header: GgufHeader): Map<string, ValidatedTensor> | undefined {
  try {
    return ggufTensorLayout(header).tensors;
  } catch (error) {
    if (!(error instanceof InvalidModelFileError)) throw error;
    // Already reported as `problem`; the table then shows the infos as stored.
    return undefined;
  }
}

function tensorTable(header: GgufHeader, located: Map<string, ValidatedTensor> | undefined): InspectedTensor[] {
  return header.tensors.map((info): InspectedTensor => {
    const tensor = located?.get(info.name);
    if (tensor) return { name: tensor.name, shape: tensor.shape, type: tensor.type, bytes: tensor.bytes, fileOffset: tensor.fileOffset };
    const type = ggmlTypeInfo(info.type);
    const shape = info.shape.map(Number);
    const inspected: InspectedTensor = { name: info.name, shape, type: type?.name ?? `type ${info.type}` };
    if (type) {
      const elements = info.shape.reduce((product, dim) => product * dim, 1n);
      const bytes = (elements / BigInt(type.blockSize)) * BigInt(type.blockBytes);
      if (bytes <= BigInt(Number.MAX_SAFE_INTEGER)) inspected.bytes = Number(bytes);
    }
    return inspected;
  });
}
