import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { InvalidModelFileError } from "../core/errors.js";
import { readGgufHeader, type GgufHeader } from "./gguf-header-reader.js";
import { metadataValuesEqual, summarizeMetadataValue, type MetadataValueSummary } from "./gguf-metadata-summary.js";
import { ggufTensorLayout, type ValidatedTensor } from "./gguf-tensor-layout.js";

/** How a tensor differs between A and B. */
export type TensorDiffStatus = "same" | "changed" | "only-in-a" | "only-in-b";

/** What made a tensor `changed`. */
export type TensorChange = "shape" | "type" | "data";

/** One row of the per-tensor table. */
export interface TensorDifference {
  name: string;
  status: TensorDiffStatus;
  /** For `changed`: shape, type, or (when both match) the data. */
  changes?: TensorChange[];
  shapeA?: number[];
  shapeB?: number[];
  typeA?: string;
  typeB?: string;
  /** SHA-256 (hex) of the data, for tensors whose shape and type match in both files. */
  digestA?: string;
  digestB?: string;
}

/** A metadata key that differs: `added` in B, `removed` from A, or `changed`. */
export interface MetadataDifference {
  key: string;
  status: "added" | "removed" | "changed";
  a?: MetadataValueSummary;
  b?: MetadataValueSummary;
}

/** One of the two files compared. */
export interface GgufDiffSide {
  /** Absolute path. */
  path: string;
  fileSize: number;
  metadataCount: number;
  tensorCount: number;
}

/** What {@link diffGgufFiles} found. */
export interface GgufDiff {
  a: GgufDiffSide;
  b: GgufDiffSide;
  /** Keys that differ, in A's order, then keys only in B. */
  metadata: MetadataDifference[];
  /** Every tensor, in A's order, then tensors only in B. */
  tensors: TensorDifference[];
  /** Tensors per status. */
  tensorCounts: Record<TensorDiffStatus, number>;
  /** True when no metadata key and no tensor differs. */
  identical: boolean;
}

/** Options of {@link diffGgufFiles}. */
export interface DiffGgufOptions {
  /** Called as tensor data is hashed, with bytes hashed so far over both files and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

const CHUNK_BYTES = 1024 * 1024;

/**
 * Compares two GGUF files: metadata keys (added, removed, changed; arrays by length and
 * digest) and every tensor by shape, type and — when both match — a SHA-256 of its data,
 * streamed from both files at once. Each header must be well-formed and each tensor's data
 * inside its file (as `grove inspect` requires); architecture checks are not applied.
 *
 * @throws InvalidModelFileError when either file is missing, not GGUF, or malformed
 * @example
 * const diff = await diffGgufFiles("base.gguf", "finetune.gguf");
 * diff.tensors.filter((tensor) => tensor.status === "changed").map((tensor) => tensor.name);
 */
export async function diffGgufFiles(pathA: string, pathB: string, options: DiffGgufOptions = {}): Promise<GgufDiff> {
  const [headerA, headerB] = await Promise.all([readGgufHeader(pathA), readGgufHeader(pathB)]);
  const tensorsA = ggufTensorLayout(headerA).tensors;
  const tensorsB = ggufTensorLayout(headerB).tensors;
  const tensors: TensorDifference[] = [];
  const toHash: [ValidatedTensor, ValidatedTensor, TensorDifference][] = [];
  for (const a of tensorsA.values()) {
    const b = tensorsB.get(a.name);
    if (!b) {
      tensors.push({ name: a.name, status: "only-in-a", shapeA: a.shape, typeA: a.type });
      continue;
    }
    const row: TensorDifference = { name: a.name, status: "same", shapeA: a.shape, shapeB: b.shape, typeA: a.type, typeB: b.type };
    const changes: TensorChange[] = [];
    if (a.shape.length !== b.shape.length || a.shape.some((dim, index) => dim !== b.shape[index])) changes.push("shape");
    if (a.type !== b.type) changes.push("type");
    if (changes.length > 0) Object.assign(row, { status: "changed", changes });
    else toHash.push([a, b, row]);
    tensors.push(row);
  }
  for (const b of tensorsB.values()) {
    if (!tensorsA.has(b.name)) tensors.push({ name: b.name, status: "only-in-b", shapeB: b.shape, typeB: b.type });
  }
  await hashTensors(pathA, pathB, toHash, options);
  const metadata = diffMetadata(headerA, headerB);
  const tensorCounts: Record<TensorDiffStatus, number> = { same: 0, changed: 0, "only-in-a": 0, "only-in-b": 0 };
  for (const row of tensors) tensorCounts[row.status]++;
  return {
    a: side(pathA, headerA),
    b: side(pathB, headerB),
    metadata,
    tensors,
    tensorCounts,
    identical: metadata.length === 0 && tensorCounts.same === tensors.length,
  };
}

function side(path: string, header: GgufHeader): GgufDiffSide {
  return { path: resolve(path), fileSize: header.fileSize, metadataCount: header.metadata.size, tensorCount: header.tensors.length };
}

function diffMetadata(headerA: GgufHeader, headerB: GgufHeader): MetadataDifference[] {
  const differences: MetadataDifference[] = [];
  for (const [key, a] of headerA.metadata) {
    const b = headerB.metadata.get(key);
    if (!b) differences.push({ key, status: "removed", a: summarizeMetadataValue(a) });
    else if (!metadataValuesEqual(a, b)) differences.push({ key, status: "changed", a: summarizeMetadataValue(a), b: summarizeMetadataValue(b) });
  }
  for (const [key, b] of headerB.metadata) {
    if (!headerA.metadata.has(key)) differences.push({ key, status: "added", b: summarizeMetadataValue(b) });
  }
  return differences;
}

/** Hashes the data of each pair (A's and B's file read side by side) and settles each row. */
async function hashTensors(
  pathA: string,
  pathB: string,
  pairs: [ValidatedTensor, ValidatedTensor, TensorDifference][],
  options: DiffGgufOptions,
): Promise<void> {
  const total = pairs.reduce((sum, [a, b]) => sum + a.bytes + b.bytes, 0);
  let done = 0;
  const progress = (bytes: number): void => {
    done += bytes;
    options.onProgress?.(done, total);
  };
  const [handleA, handleB] = await Promise.all([open(pathA, "r"), open(pathB, "r")]);
  try {
    const bufferA = Buffer.allocUnsafe(CHUNK_BYTES);
    const bufferB = Buffer.allocUnsafe(CHUNK_BYTES);
    for (const [a, b, row] of pairs) {
      const [digestA, digestB] = await Promise.all([
        hashRange(handleA, bufferA, pathA, a, progress),
        hashRange(handleB, bufferB, pathB, b, progress),
      ]);
      row.digestA = digestA;
      row.digestB = digestB;
      if (digestA !== digestB) Object.assign(row, { status: "changed", changes: ["data"] });
    }
  } finally {
    await Promise.all([handleA.close(), handleB.close()]);
  }
}

async function hashRange(handle: FileHandle, buffer: Buffer, path: string, tensor: ValidatedTensor, progress: (bytes: number) => void): Promise<string> {
  const hash = createHash("sha256");
  const { fileOffset: start, bytes: length } = tensor;
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - done), start + done);
    // The layout check put the data inside the file, so a short read means it shrank since.
    if (bytesRead === 0) {
      throw new InvalidModelFileError(`${basename(path)}: ended at byte ${start + done} inside tensor ${tensor.name}; did it change during the diff?`);
    }
    hash.update(buffer.subarray(0, bytesRead));
    done += bytesRead;
    progress(bytesRead);
  }
  return hash.digest("hex");
}
