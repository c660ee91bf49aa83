import { randomBytes } from "node:crypto";
import { periodBounds, type BudgetPeriod, type BudgetState, type KeyLimits, type KeyRecord, type NewKey, type PriceRecord, type ReserveRequest, type UsageQuery, type UsageRecord, type UsageSummary } from "./service-store.js";

// What the two ServiceStores (SQLite, PostgreSQL) share: the rows they read, how a row becomes a
// record, and the WHERE of a usage query. Each store keeps only its SQL dialect and driver; the
// behaviour both must have is tested on each (sqlite-service-store.test.ts, postgres-service-store.test.ts).

/** Money is kept in integer nano-dollars, so that budget sums are exact. */
export const NANO = 1e9;
/** Dollars to nano-dollars, rounded. */
export const toNano = (usd: number) => Math.round(usd * NANO);
/** Dollars to nano-dollars, rounded up: what a reservation holds. */
export const toNanoCeil = (usd: number) => Math.ceil(usd * NANO - 1e-6);

/** A key as both databases answer it (SQLite's 0/1 and JSON text decoded first). */
export interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  admin: boolean;
  models: string[] | null;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  budget_tokens: number | null;
  budget_nusd: number | null;
  budget_period: BudgetPeriod | null;
}

/** A key's spend in one budget window. */
export interface WindowRow {
  spent_tokens: number;
  reserved_tokens: number;
  spent_nusd: number;
  reserved_nusd: number;
}

/** One metered request. */
export interface UsageRow {
  request_id: string;
  key_id: string | null;
  model_digest: string;
  model: string;
  endpoint: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost_nusd: number;
  ttft_ms: number | null;
  duration_ms: number;
  status: number;
  cancelled: boolean;
  created_at: string;
}

/** One model's price. */
export interface PriceRow {
  model_digest: string;
  input_per_1m: number;
  output_per_1m: number;
  updated_at: string;
}

/** The columns a key is read with. */
export const KEY_COLUMNS = "id, name, prefix, admin, models, expires_at, revoked_at, created_at, rpm, tpm, concurrency, budget_tokens, budget_nusd, budget_period";

/** A key row as the record the gateway reads. */
export function toKey(row: KeyRow): KeyRecord {
  const limits: Record<string, unknown> = {};
  if (row.rpm !== null) limits.rpm = row.rpm;
  if (row.tpm !== null) limits.tpm = row.tpm;
  if (row.concurrency !== null) limits.concurrency = row.concurrency;
  if (row.budget_tokens !== null) limits.budgetTokens = row.budget_tokens;
  if (row.budget_nusd !== null) limits.budgetUsd = row.budget_nusd / NANO;
  if (row.budget_period !== null) limits.period = row.budget_period;
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    admin: row.admin,
    ...(row.models === null ? {} : { models: row.models }),
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at }),
    createdAt: row.created_at,
    limits: limits as KeyLimits,
  };
}

/** A usage row as the record the gateway reads. */
export function toUsage(row: UsageRow): UsageRecord {
  return {
    requestId: row.request_id,
    ...(row.key_id === null ? {} : { keyId: row.key_id }),
    modelDigest: row.model_digest,
    model: row.model,
    endpoint: row.endpoint,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    costUsd: row.cost_nusd / NANO,
    ...(row.ttft_ms === null ? {} : { ttftMs: row.ttft_ms }),
    durationMs: row.duration_ms,
    status: row.status,
    cancelled: row.cancelled,
    createdAt: row.created_at,
  };
}

/** A price row as the record the gateway reads. */
export const toPrice = (row: PriceRow): PriceRecord => ({
  modelDigest: row.model_digest,
  inputPer1m: row.input_per_1m,
  outputPer1m: row.output_per_1m,
  updatedAt: row.updated_at,
});

/**
 * The WHERE clause of a usage query and its parameters; `placeholder(n)` writes the n-th
 * parameter in the dialect (`?` for SQLite, `$n` for PostgreSQL).
 */
export function whereOf(query: UsageQuery, placeholder: (index: number) => string): { sql: string; parameters: unknown[] } {
  const clauses: string[] = [];
  const parameters: unknown[] = [];
  if (query.keyId !== undefined) {
    parameters.push(query.keyId);
    clauses.push(`key_id = ${placeholder(parameters.length)}`);
  }
  if (query.since !== undefined) {
    parameters.push(query.since);
    clauses.push(`created_at >= ${placeholder(parameters.length)}`);
  }
  return { sql: clauses.length === 0 ? "" : `WHERE ${clauses.join(" AND ")}`, parameters };
}

/**
 * A new key's id and the values of its row, in the order of `INSERT INTO keys (id, name, prefix,
 * secret_hash, admin, models, expires_at, created_at, rpm, tpm, concurrency, budget_tokens,
 * budget_nusd, budget_period)`; a budget without a period is monthly. `bool` stores `admin` as
 * the database wants it.
 */
export function newKeyRow(key: NewKey, now: Date, bool: (flag: boolean) => boolean | number = (flag) => flag): { id: string; values: unknown[] } {
  const id = `key_${randomBytes(8).toString("hex")}`;
  const limits = key.limits;
  const period = limits.period ?? (limits.budgetTokens !== undefined || limits.budgetUsd !== undefined ? "month" : null);
  return {
    id,
    values: [
      id,
      key.name,
      key.prefix,
      key.secretHash,
      bool(key.admin),
      key.models === undefined ? null : JSON.stringify(key.models),
      key.expiresAt ?? null,
      now.toISOString(),
      limits.rpm ?? null,
      limits.tpm ?? null,
      limits.concurrency ?? null,
      limits.budgetTokens ?? null,
      limits.budgetUsd === undefined ? null : toNano(limits.budgetUsd),
      period,
    ],
  };
}

/** What a reservation compares and adds, in the database's units: its budget window, its cost in nano-dollars (rounded up), and the key's budgets (null: none). */
export function reserveAmounts(request: ReserveRequest) {
  const { limits } = request;
  const { start, end } = periodBounds(limits.period ?? "month", request.now);
  return {
    start,
    end,
    nusd: toNanoCeil(request.usd),
    budgetTokens: limits.budgetTokens ?? null,
    budgetNusd: limits.budgetUsd === undefined ? null : toNano(limits.budgetUsd),
  };
}

/** A budget window's row (none yet: nothing spent) as a {@link BudgetState}. */
export function toBudgetState(periodStart: string, row: WindowRow | undefined): BudgetState {
  return {
    periodStart,
    spentTokens: row?.spent_tokens ?? 0,
    reservedTokens: row?.reserved_tokens ?? 0,
    spentUsd: (row?.spent_nusd ?? 0) / NANO,
    reservedUsd: (row?.reserved_nusd ?? 0) / NANO,
  };
}

/** One group of `SELECT … AS grp[, … AS part], count(*) AS requests, …` over usage, as both stores write it. */
export interface SummaryRow {
  grp: string;
  part?: string;
  requests: number;
  prompt: number;
  completion: number;
  cost: number;
  cancelled: number;
  errors: number;
  ttft: number | null;
}

export function toUsageSummary(row: SummaryRow): UsageSummary {
  return {
    group: row.grp,
    ...(row.part === undefined ? {} : { split: row.part }),
    requests: row.requests,
    promptTokens: row.prompt,
    completionTokens: row.completion,
    costUsd: row.cost / NANO,
    cancelled: row.cancelled,
    errors: row.errors,
    meanTtftMs: row.ttft,
  };
}

/**
 * A usage row's values in the order of `INSERT INTO usage (request_id, key_id, model_digest,
 * model, endpoint, prompt_tokens, completion_tokens, cost_nusd, ttft_ms, duration_ms, status,
 * cancelled, created_at)`; `bool` stores `cancelled` as the database wants it.
 */
export function usageValues(usage: UsageRecord, bool: (flag: boolean) => boolean | number = (flag) => flag): unknown[] {
  return [
    usage.requestId,
    usage.keyId ?? null,
    usage.modelDigest,
    usage.model,
    usage.endpoint,
    usage.promptTokens,
    usage.completionTokens,
    toNano(usage.costUsd),
    usage.ttftMs ?? null,
    usage.durationMs,
    usage.status,
    bool(usage.cancelled),
    usage.createdAt,
  ];
}
