import { InvalidRequestError } from "../core/errors.js";
import type { BudgetPeriod, KeyLimits } from "./service-store.js";

/** Raw key settings, from CLI flags (strings) or a JSON body. */
export interface RawKeyOptions {
  name?: unknown;
  models?: unknown;
  expires?: unknown;
  admin?: unknown;
  rpm?: unknown;
  tpm?: unknown;
  concurrency?: unknown;
  budgetTokens?: unknown;
  budgetUsd?: unknown;
  period?: unknown;
}

/** Parsed key settings. */
export interface KeyOptions {
  readonly name: string;
  readonly admin: boolean;
  readonly models?: readonly string[];
  readonly expiresAt?: string;
  readonly limits: KeyLimits;
}

/** How parameters are named in errors: CLI flags (`--budget-tokens`) or JSON fields (`budget_tokens`). */
export type ParameterStyle = "flag" | "field";

const NAMES: Record<keyof RawKeyOptions, [flag: string, field: string]> = {
  name: ["--name", "name"],
  models: ["--models", "models"],
  expires: ["--expires", "expires"],
  admin: ["--admin", "admin"],
  rpm: ["--rpm", "rpm"],
  tpm: ["--tpm", "tpm"],
  concurrency: ["--concurrency", "concurrency"],
  budgetTokens: ["--budget-tokens", "budget_tokens"],
  budgetUsd: ["--budget-usd", "budget_usd"],
  period: ["--period", "period"],
};

const UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Largest count a limit takes: far above any real need, and exact in a double. */
const MAX_COUNT = 1e12;

/**
 * A duration (`90m`, `12h`, `30d`, `2w`) after `now`, or an ISO 8601 date/time in the future,
 * as ISO 8601. `undefined` for anything else.
 */
export function parseExpiry(text: string, now: Date): string | undefined {
  const duration = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  if (duration) {
    const amount = Number(duration[1]);
    return amount > 0 ? new Date(now.getTime() + amount * UNITS_MS[duration[2]!]!).toISOString() : undefined;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) || date <= now ? undefined : date.toISOString();
}

/** A point in time for `--since`: a duration ago (`7d`, `12h`) or an ISO 8601 date. */
export function parseSince(text: string, now: Date, param: string): string {
  const duration = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNITS_MS[duration[2]!]!).toISOString();
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new InvalidRequestError(`${param} must be a duration ago (7d, 12h, 30m, 2w) or an ISO date such as 2025-01-31; got '${text}'`, { param });
  }
  return date.toISOString();
}

/** Validates key settings once, for the CLI and the admin API alike; errors name the flag or field. */
export function parseKeyOptions(raw: RawKeyOptions, now: Date, style: ParameterStyle): KeyOptions {
  const nameOf = (key: keyof RawKeyOptions) => NAMES[key][style === "flag" ? 0 : 1];
  const fail = (key: keyof RawKeyOptions, message: string): never => {
    throw new InvalidRequestError(`${nameOf(key)} ${message}`, { param: nameOf(key) });
  };
  const number = (key: keyof RawKeyOptions, integer: boolean): number | undefined => {
    const value = raw[key];
    if (value === undefined || value === null) return undefined;
    const parsed = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : Number.NaN;
    if (!Number.isFinite(parsed) || parsed <= 0 || parsed > MAX_COUNT || (integer && !Number.isInteger(parsed))) {
      return fail(key, `must be a ${integer ? "whole number" : "number"} above 0 (at most ${MAX_COUNT}); got ${JSON.stringify(value)}`);
    }
    return parsed;
  };

  let name = "";
  if (raw.name !== undefined && raw.name !== null) {
    if (typeof raw.name !== "string" || raw.name.length > 100 || /[\u0000-\u001f]/.test(raw.name)) fail("name", "must be text of at most 100 characters");
    name = raw.name as string;
  }
  let models: string[] | undefined;
  if (raw.models !== undefined && raw.models !== null) {
    const list = typeof raw.models === "string" ? raw.models.split(",").map((item) => item.trim()) : raw.models;
    if (!Array.isArray(list) || list.length === 0 || list.length > 100 || list.some((item) => typeof item !== "string" || item === "" || item.length > 200)) {
      fail("models", "must be a non-empty list of model names or aliases (comma-separated on the command line)");
    }
    models = [...new Set(list as string[])];
  }
  let expiresAt: string | undefined;
  if (raw.expires !== undefined && raw.expires !== null) {
    expiresAt = typeof raw.expires === "string" ? parseExpiry(raw.expires, now) : undefined;
    if (expiresAt === undefined) {
      fail("expires", `must be a duration (90m, 12h, 30d, 2w) or a future ISO date such as 2030-01-31; got ${JSON.stringify(raw.expires)}`);
    }
  }
  if (raw.admin !== undefined && typeof raw.admin !== "boolean") fail("admin", "must be true or false");
  let period: BudgetPeriod | undefined;
  if (raw.period !== undefined && raw.period !== null) {
    if (raw.period !== "day" && raw.period !== "month") fail("period", `must be day or month; got ${JSON.stringify(raw.period)}`);
    period = raw.period as BudgetPeriod;
  }
  const limits: Record<string, unknown> = {};
  const entries: [keyof RawKeyOptions, keyof KeyLimits, boolean][] = [
    ["rpm", "rpm", true],
    ["tpm", "tpm", true],
    ["concurrency", "concurrency", true],
    ["budgetTokens", "budgetTokens", true],
    ["budgetUsd", "budgetUsd", false],
  ];
  for (const [rawKey, limitKey, integer] of entries) {
    const value = number(rawKey, integer);
    if (value !== undefined) limits[limitKey] = value;
  }
  if (period !== undefined) {
    if (limits.budgetTokens === undefined && limits.budgetUsd === undefined) fail("period", `needs ${nameOf("budgetTokens")} or ${nameOf("budgetUsd")}`);
    limits.period = period;
  }
  return {
    name,
    admin: raw.admin === true,
    ...(models === undefined ? {} : { models }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    limits: limits as KeyLimits,
  };
}
