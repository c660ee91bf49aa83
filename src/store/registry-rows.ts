import type { Digest } from "../core/digest.js";
import { AmbiguousModelError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import type { ModelRecord } from "../core/wire.js";
import type { AliasRecord } from "./registry.js";

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

/** How many models an ambiguous digest prefix names in its error. */
const MAX_CANDIDATES = 10;

/** How many rows a digest-prefix query asks for: one more than the error names, to know there are more. */
export const PREFIX_ROWS = MAX_CANDIDATES + 1;

/**
 * The one row a digest prefix (`sha256:` + `hexPrefix`) matched.
 * @throws ModelNotFoundError for none, AmbiguousModelError naming up to 10 for several
 */
export function onlyMatch<R extends { digest: string }>(rows: readonly R[], hexPrefix: string): R {
  if (rows.length === 0) throw new ModelNotFoundError(`sha256:${hexPrefix}`);
  if (rows.length > 1) {
    const candidates = rows.slice(0, MAX_CANDIDATES).map((row) => row.digest);
    const more = rows.length > MAX_CANDIDATES ? ", …" : "";
    throw new AmbiguousModelError(
      `The digest prefix '${hexPrefix}' matches several models: ${candidates.join(", ")}${more}; give more digits or a name`,
      candidates,
    );
  }
  return rows[0]!;
}

/**
 * What both registries check before they write an alias: at least one target, none twice,
 * positive finite weights.
 * @throws InvalidRequestError naming the first problem
 */
export function checkAlias(alias: AliasRecord): void {
  if (alias.targets.length === 0) throw new InvalidRequestError(`The alias '${alias.name}' needs at least one model`, { param: "targets" });
  if (new Set(alias.targets.map((target) => target.digest)).size !== alias.targets.length) {
    throw new InvalidRequestError(`The alias '${alias.name}' lists a model twice`, { param: "targets" });
  }
  for (const target of alias.targets) {
    if (!Number.isFinite(target.weight) || target.weight <= 0) {
      throw new InvalidRequestError(`Alias weights must be positive numbers, got ${target.weight}`, { param: "weight" });
    }
  }
}
