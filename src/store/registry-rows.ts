import type { Digest } from "../core/digest.js";
import type { ModelRecord } from "../core/wire.js";

// What the two registries (SQLite, PostgreSQL) share: the model row and how it becomes a record.
// The behaviour both must have is one contract, test-support/registry-contract.ts.

/** A model as both registries read it (SQLite's card JSON text parsed first; PostgreSQL may answer bigints as strings). */
export interface ModelRow {
  digest: Digest;
  size: number | string;
  architecture: string;
  parameter_count: number | string;
  quantization: string;
  context_length: number;
  vocabulary_size: number;
  chat_template: string | null;
  license: string | null;
  card: Record<string, unknown>;
  created_at: string;
}

/** A model row as the record the store reads. */
export function toModelRecord(row: ModelRow): ModelRecord {
  const record: ModelRecord = {
    digest: row.digest,
    size: Number(row.size),
    architecture: row.architecture,
    parameterCount: Number(row.parameter_count),
    quantization: row.quantization,
    contextLength: row.context_length,
    vocabularySize: row.vocabulary_size,
    card: row.card,
    createdAt: row.created_at,
  };
  if (row.chat_template !== null) record.chatTemplate = row.chat_template;
  if (row.license !== null) record.license = row.license;
  return record;
}
