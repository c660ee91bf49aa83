import { InvalidRequestError } from "../core/errors.js";
import { parseSince, type ParameterStyle } from "./key-options.js";
import type { UsageGrouping, UsageQuery, UsageSplit } from "./service-store.js";

/** Raw usage filters, from CLI flags or a query string. */
export interface RawUsageOptions {
  key?: unknown;
  since?: unknown;
  by?: unknown;
  /** Splits each `by` group again, by model or key (usage over time per model). */
  split?: unknown;
  limit?: unknown;
}

/** Parsed usage filters. */
export interface UsageOptions {
  readonly query: UsageQuery;
  readonly by?: UsageGrouping;
  readonly split?: UsageSplit;
}

const GROUPINGS: readonly UsageGrouping[] = ["model", "key", "day", "hour"];
const SPLITS: readonly UsageSplit[] = ["model", "key"];

/** Validates `--key --since --by --split --limit` (or `?key=&since=&by=&split=&limit=`); errors name the flag or field. */
export function parseUsageOptions(raw: RawUsageOptions, now: Date, style: ParameterStyle): UsageOptions {
  const name = (field: string) => (style === "flag" ? `--${field}` : field);
  const query: { keyId?: string; since?: string; limit?: number } = {};
  if (raw.key !== undefined) {
    if (typeof raw.key !== "string" || raw.key === "" || raw.key.length > 100) {
      throw new InvalidRequestError(`${name("key")} must be a key id (see grove keys list)`, { param: name("key") });
    }
    query.keyId = raw.key;
  }
  if (raw.since !== undefined) query.since = parseSince(String(raw.since), now, name("since"));
  if (raw.limit !== undefined) {
    const limit = Number(raw.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
      throw new InvalidRequestError(`${name("limit")} must be a whole number from 1 to 100000; got ${JSON.stringify(raw.limit)}`, { param: name("limit") });
    }
    query.limit = limit;
  }
  let by: UsageGrouping | undefined;
  if (raw.by !== undefined) {
    if (!GROUPINGS.includes(raw.by as UsageGrouping)) {
      throw new InvalidRequestError(`${name("by")} must be one of ${GROUPINGS.join(", ")}; got ${JSON.stringify(raw.by)}`, { param: name("by") });
    }
    by = raw.by as UsageGrouping;
  }
  let split: UsageSplit | undefined;
  if (raw.split !== undefined) {
    if (!SPLITS.includes(raw.split as UsageSplit)) {
      throw new InvalidRequestError(`${name("split")} must be one of ${SPLITS.join(", ")}; got ${JSON.stringify(raw.split)}`, { param: name("split") });
    }
    if (by === undefined || by === raw.split) {
      throw new InvalidRequestError(`${name("split")} splits the groups of ${name("by")} again: give ${name("by")} as well, other than ${raw.split as string}`, { param: name("split") });
    }
    split = raw.split as UsageSplit;
  }
  return { query, ...(by === undefined ? {} : { by }), ...(split === undefined ? {} : { split }) };
}
