import { createHash } from "node:crypto";
import { ggufValueTypeName, type TypedMetadataEntry } from "./gguf-header-reader.js";

/** A metadata value in JSON-safe form (64-bit integers as decimal strings). */
export type MetadataScalar = string | number | boolean;

/** A metadata value summarised for people and JSON: scalars whole, arrays by length, head and digest. */
export interface MetadataValueSummary {
  /** `u32`, `str`, … or `arr[str]` for an array of strings. */
  type: string;
  /** The value of a scalar. */
  value?: MetadataScalar;
  /** Items of an array. */
  length?: number;
  /** The first items of an array (all of them when `length` is at most `arrayItems`). */
  items?: MetadataScalar[];
  /** SHA-256 (hex) over the array's type and items: equal digests mean equal arrays. */
  digest?: string;
}

/** Options of {@link summarizeMetadataValue}. */
export interface MetadataSummaryOptions {
  /**
   * Array items to keep in `items`.
   * @default 8
   */
  arrayItems?: number;
}

const ARRAY = 9;

const FLOAT32 = 6;

/**
 * The JSON-safe form of one scalar value of GGUF type `type`: 64-bit integers as decimal
 * strings, f32 values with the fewest digits that read back as the same f32 (1e-5, not
 * 0.000009999999747378752).
 */
export function metadataScalar(value: unknown, type?: number): MetadataScalar {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && type === FLOAT32) return shortestFloat32(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") return value;
  return String(value);
}

function shortestFloat32(value: number): number {
  if (!Number.isFinite(value)) return value;
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

/**
 * Summarises a metadata entry as {@link readGgufHeader} returns it: a scalar as its value, an
 * array as its length, its first items and a digest of all of them.
 *
 * @example
 * summarizeMetadataValue({ type: 9, subType: 8, value: ["a", "b"] }); // { type: "arr[str]", length: 2, items: ["a", "b"], digest: "…" }
 */
export function summarizeMetadataValue(entry: TypedMetadataEntry, options: MetadataSummaryOptions = {}): MetadataValueSummary {
  if (entry.type !== ARRAY) return { type: ggufValueTypeName(entry.type), value: metadataScalar(entry.value, entry.type) };
  const values = entry.value as readonly unknown[];
  const keep = options.arrayItems ?? 8;
  return {
    type: `arr[${ggufValueTypeName(entry.subType)}]`,
    length: values.length,
    items: values.slice(0, keep).map((item) => metadataScalar(item, entry.subType)),
    digest: metadataValueDigest(entry),
  };
}

/**
 * SHA-256 (hex) of a metadata value's type and content in an unambiguous encoding, so that
 * two values are equal exactly when their digests are (up to hash collisions).
 */
export function metadataValueDigest(entry: TypedMetadataEntry): string {
  const hash = createHash("sha256");
  hash.update(`${entry.type}:${entry.subType ?? ""}:`);
  const values = entry.type === ARRAY ? (entry.value as readonly unknown[]) : [entry.value];
  // Items are batched into one buffer per few thousand: one update per string is slow.
  const batch: Buffer[] = [];
  let batchBytes = 0;
  for (const value of values) {
    const bytes = encodeItem(value);
    batch.push(bytes);
    batchBytes += bytes.length;
    if (batchBytes > 64 * 1024) {
      hash.update(Buffer.concat(batch));
      batch.length = 0;
      batchBytes = 0;
    }
  }
  hash.update(Buffer.concat(batch));
  return hash.digest("hex");
}

function encodeItem(value: unknown): Buffer {
  if (typeof value === "string") {
    const text = Buffer.from(value, "utf8");
    const prefix = Buffer.alloc(5);
    prefix.write("s");
    prefix.writeUInt32LE(text.length, 1);
    return Buffer.concat([prefix, text]);
  }
  if (typeof value === "number") {
    const bytes = Buffer.alloc(9);
    bytes.write("n");
    bytes.writeDoubleLE(value, 1);
    return bytes;
  }
  if (typeof value === "bigint") {
    const bytes = Buffer.alloc(9);
    bytes.write("b");
    bytes.writeBigUInt64LE(BigInt.asUintN(64, value), 1);
    return bytes;
  }
  return Buffer.from(value ? "t" : "f");
}

/** True when two entries hold the same type and value (NaN equals NaN; arrays item by item). */
export function metadataValuesEqual(a: TypedMetadataEntry, b: TypedMetadataEntry): boolean {
  if (a.type !== b.type || a.subType !== b.subType) return false;
  if (a.type !== ARRAY) return Object.is(a.value, b.value);
  const left = a.value as readonly unknown[];
  const right = b.value as readonly unknown[];
  return left.length === right.length && metadataValueDigest(a) === metadataValueDigest(b);
}
