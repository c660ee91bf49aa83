import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ConfigError, NotFoundError } from "../core/errors.js";
import { openSqliteDatabase, type SqliteDatabase } from "../store/sqlite-database.js";
import { periodBounds, type BudgetState, type KeyLimits, type KeyRecord, type NewKey, type PriceRecord, type ReserveRequest, type ReserveResult, type ServiceStore, type UsageGrouping, type UsageSplit, type UsageQuery, type UsageRecord, type UsageSummary } from "./service-store.js";
import { KEY_COLUMNS, type KeyRow, newKeyRow, type PriceRow, reserveAmounts, type SummaryRow, toBudgetState, toKey, toNano, toPrice, toUsage, toUsageSummary, type UsageRow, usageValues, type WindowRow, whereOf } from "./service-rows.js";

/** A key as SQLite stores it: `admin` 0/1, `models` as JSON text. */
type SqliteKeyRow = Omit<KeyRow, "admin" | "models"> & { admin: number; models: string | null };
/** A usage row as SQLite stores it: `cancelled` 0/1. */
type SqliteUsageRow = Omit<UsageRow, "cancelled"> & { cancelled: number };

const keyOf = (row: SqliteKeyRow) => toKey({ ...row, admin: row.admin === 1, models: row.models === null ? null : (JSON.parse(row.models) as string[]) });
const usageOf = (row: SqliteUsageRow) => toUsage({ ...row, cancelled: row.cancelled === 1 });

/** The schema version this code writes (`PRAGMA user_version`). */
const SCHEMA_VERSION = 1;


const SCHEMA = `
  CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE CHECK (length(secret_hash) = 64),
    admin INTEGER NOT NULL CHECK (admin IN (0, 1)),
    models TEXT CHECK (models IS NULL OR json_valid(models)),
    expires_at TEXT,
    revoked_at TEXT,
    created_at TEXT NOT NULL,
    rpm INTEGER,
    tpm INTEGER,
    concurrency INTEGER,
    budget_tokens INTEGER,
    budget_nusd INTEGER,
    budget_period TEXT CHECK (budget_period IN ('day', 'month'))
  ) STRICT;
  CREATE TABLE IF NOT EXISTS budget_windows (
    key_id TEXT NOT NULL REFERENCES keys (id),
    period_start TEXT NOT NULL,
    spent_tokens INTEGER NOT NULL DEFAULT 0,
    reserved_tokens INTEGER NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
    spent_nusd INTEGER NOT NULL DEFAULT 0,
    reserved_nusd INTEGER NOT NULL DEFAULT 0 CHECK (reserved_nusd >= 0),
    PRIMARY KEY (key_id, period_start)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    period_start TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    nusd INTEGER NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_id TEXT,
    model_digest TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nusd INTEGER NOT NULL,
    ttft_ms REAL,
    duration_ms REAL NOT NULL,
    status INTEGER NOT NULL,
    cancelled INTEGER NOT NULL CHECK (cancelled IN (0, 1)),
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX IF NOT EXISTS usage_by_time ON usage (created_at);
  CREATE INDEX IF NOT EXISTS usage_by_key ON usage (key_id, created_at);
  CREATE TABLE IF NOT EXISTS prices (
    model_digest TEXT PRIMARY KEY,
    input_per_1m REAL NOT NULL CHECK (input_per_1m >= 0),
    output_per_1m REAL NOT NULL CHECK (output_per_1m >= 0),
    updated_at TEXT NOT NULL
  ) STRICT;
`;


const GROUP_EXPRESSIONS: Record<UsageGrouping, string> = {
  model: "model_digest",
  key: "coalesce(key_id, '-')",
  day: "substr(created_at, 1, 10)",
  hour: "substr(created_at, 1, 13)",
};

/**
 * The embedded {@link ServiceStore}: `<home>/service.db` (SQLite through better-sqlite3, WAL,
 * a busy timeout so the CLI and a running server can share it). A budget reservation is one
 * conditional UPDATE inside an IMMEDIATE transaction, so it is atomic across connections and
 * processes as well as within one.
 */
export class SqliteServiceStore implements ServiceStore {
  readonly #db: SqliteDatabase;

  private constructor(db: SqliteDatabase) {
    this.#db = db;
  }

  /** Opens (creating) `<home>/service.db`; the directory must exist. */
  static open(home: string): SqliteServiceStore {
    return SqliteServiceStore.openFile(join(home, "service.db"));
  }

  /** Opens (creating) a service database at `path`. */
  static openFile(path: string): SqliteServiceStore {
    const db = openSqliteDatabase(path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      const version = db.pragma("user_version", { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new ConfigError(`${path} was written by a newer Grove (schema ${version}; this one knows ${SCHEMA_VERSION})`);
      }
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return new SqliteServiceStore(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction: the write lock is taken before anything is read. */
  #immediate<T>(fn: () => T): T {
    const transaction = this.#db.transaction(fn) as unknown as { immediate: () => T };
    return transaction.immediate();
  }

  async hasKeys(): Promise<boolean> {
    return this.#db.prepare("SELECT 1 FROM keys LIMIT 1").get() !== undefined;
  }

  async createKey(key: NewKey, now: Date): Promise<KeyRecord> {
    const { id, values } = newKeyRow(key, now, (flag) => (flag ? 1 : 0));
    this.#db
      .prepare(
        `INSERT INTO keys (id, name, prefix, secret_hash, admin, models, expires_at, created_at, rpm, tpm, concurrency, budget_tokens, budget_nusd, budget_period)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...values);
    return (await this.getKey(id))!;
  }

  async findKeyByHash(secretHash: string): Promise<KeyRecord | undefined> {
    const row = this.#db.prepare(`SELECT ${KEY_COLUMNS} FROM keys WHERE secret_hash = ?`).get(secretHash) as SqliteKeyRow | undefined;
    return row && keyOf(row);
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const row = this.#db.prepare(`SELECT ${KEY_COLUMNS} FROM keys WHERE id = ?`).get(id) as SqliteKeyRow | undefined;
    return row && keyOf(row);
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (this.#db.prepare(`SELECT ${KEY_COLUMNS} FROM keys ORDER BY created_at, id`).all() as SqliteKeyRow[]).map(keyOf);
  }

  async revokeKey(id: string, now: Date): Promise<KeyRecord> {
    this.#db.prepare("UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?").run(now.toISOString(), id);
    const key = await this.getKey(id);
    if (!key) throw new NotFoundError(`No key with id '${id}' (see grove keys list)`);
    return key;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const { start, end, nusd, budgetTokens, budgetNusd } = reserveAmounts(request);
    return this.#immediate((): ReserveResult => {
      this.#db.prepare("INSERT OR IGNORE INTO budget_windows (key_id, period_start) VALUES (?, ?)").run(request.keyId, start);
      // The check and the write are one statement: no other reservation can slip in between.
      const { changes } = this.#db
        .prepare(
          `UPDATE budget_windows SET reserved_tokens = reserved_tokens + @tokens, reserved_nusd = reserved_nusd + @nusd
           WHERE key_id = @keyId AND period_start = @start
             AND (@budgetTokens IS NULL OR spent_tokens + reserved_tokens + @tokens <= @budgetTokens)
             AND (@budgetNusd IS NULL OR spent_nusd + reserved_nusd + @nusd <= @budgetNusd)`,
        )
        .run({ tokens: request.tokens, nusd, keyId: request.keyId, start, budgetTokens, budgetNusd });
      if (changes === 1) {
        const reservationId = randomBytes(12).toString("hex");
        this.#db
          .prepare("INSERT INTO reservations (id, key_id, period_start, tokens, nusd, created_at) VALUES (?, ?, ?, ?, ?, ?)")
          .run(reservationId, request.keyId, start, request.tokens, nusd, request.now.toISOString());
        return { admitted: true, reservationId };
      }
      const window = this.#db
        .prepare("SELECT spent_tokens, reserved_tokens, spent_nusd, reserved_nusd FROM budget_windows WHERE key_id = ? AND period_start = ?")
        .get(request.keyId, start) as WindowRow;
      const tokensShort = budgetTokens !== null && window.spent_tokens + window.reserved_tokens + request.tokens > budgetTokens;
      const fitsAfterInFlight =
        (budgetTokens === null || window.spent_tokens + request.tokens <= budgetTokens) &&
        (budgetNusd === null || window.spent_nusd + nusd <= budgetNusd);
      return { admitted: false, limit: tokensShort ? "budget_tokens" : "budget_usd", fitsAfterInFlight, periodEnd: end };
    });
  }

  async settle(reservationId: string | undefined, usage: UsageRecord): Promise<void> {
    const costNusd = toNano(usage.costUsd);
    this.#immediate(() => {
      if (reservationId !== undefined) {
        const held = this.#db.prepare("SELECT key_id, period_start, tokens, nusd FROM reservations WHERE id = ?").get(reservationId) as
          | { key_id: string; period_start: string; tokens: number; nusd: number }
          | undefined;
        if (held) {
          this.#db
            .prepare(
              `UPDATE budget_windows SET reserved_tokens = reserved_tokens - ?, spent_tokens = spent_tokens + ?,
                 reserved_nusd = reserved_nusd - ?, spent_nusd = spent_nusd + ?
               WHERE key_id = ? AND period_start = ?`,
            )
            .run(held.tokens, usage.promptTokens + usage.completionTokens, held.nusd, costNusd, held.key_id, held.period_start);
          this.#db.prepare("DELETE FROM reservations WHERE id = ?").run(reservationId);
        }
      }
      this.#db
        .prepare(
          `INSERT INTO usage (request_id, key_id, model_digest, model, endpoint, prompt_tokens, completion_tokens, cost_nusd, ttft_ms, duration_ms, status, cancelled, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(...usageValues(usage, (flag) => (flag ? 1 : 0)));
    });
  }

  async expireReservations(before: Date): Promise<number> {
    return this.#immediate(() => {
      const expired = this.#db.prepare("SELECT id, key_id, period_start, tokens, nusd FROM reservations WHERE created_at < ?").all(before.toISOString()) as
        { id: string; key_id: string; period_start: string; tokens: number; nusd: number }[];
      const release = this.#db.prepare("UPDATE budget_windows SET reserved_tokens = reserved_tokens - ?, reserved_nusd = reserved_nusd - ? WHERE key_id = ? AND period_start = ?");
      const remove = this.#db.prepare("DELETE FROM reservations WHERE id = ?");
      for (const held of expired) {
        release.run(held.tokens, held.nusd, held.key_id, held.period_start);
        remove.run(held.id);
      }
      return expired.length;
    });
  }

  async budgetState(keyId: string, limits: KeyLimits, now: Date): Promise<BudgetState> {
    const { start } = periodBounds(limits.period ?? "month", now);
    const row = this.#db
      .prepare("SELECT spent_tokens, reserved_tokens, spent_nusd, reserved_nusd FROM budget_windows WHERE key_id = ? AND period_start = ?")
      .get(keyId, start) as WindowRow | undefined;
    return toBudgetState(start, row);
  }

  async listUsage(query: UsageQuery): Promise<UsageRecord[]> {
    const { sql, parameters } = whereOf(query, () => "?");
    const rows = this.#db
      .prepare(`SELECT * FROM usage ${sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(...parameters, query.limit ?? 1000) as SqliteUsageRow[];
    return rows.map(usageOf);
  }

  async summarizeUsage(query: UsageQuery, by: UsageGrouping, split?: UsageSplit): Promise<UsageSummary[]> {
    const { sql, parameters } = whereOf(query, () => "?");
    const group = GROUP_EXPRESSIONS[by];
    const splitColumn = split === undefined ? "" : `, ${GROUP_EXPRESSIONS[split]} AS part`;
    const rows = this.#db
      .prepare(
        `SELECT ${group} AS grp${splitColumn}, count(*) AS requests, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
           sum(cost_nusd) AS cost, sum(cancelled) AS cancelled, sum(status >= 400) AS errors, avg(ttft_ms) AS ttft
         FROM usage ${sql} GROUP BY grp${split === undefined ? "" : ", part"} ORDER BY grp${split === undefined ? "" : ", part"}`,
      )
      .all(...parameters) as SummaryRow[];
    return rows.map(toUsageSummary);
  }

  async setPrice(price: PriceRecord): Promise<void> {
    this.#db
      .prepare("INSERT OR REPLACE INTO prices (model_digest, input_per_1m, output_per_1m, updated_at) VALUES (?, ?, ?, ?)")
      .run(price.modelDigest, price.inputPer1m, price.outputPer1m, price.updatedAt);
  }

  async getPrice(modelDigest: string): Promise<PriceRecord | undefined> {
    const row = this.#db.prepare("SELECT * FROM prices WHERE model_digest = ?").get(modelDigest) as PriceRow | undefined;
    return row && toPrice(row);
  }

  async listPrices(): Promise<PriceRecord[]> {
    return (this.#db.prepare("SELECT * FROM prices ORDER BY model_digest").all() as PriceRow[]).map(toPrice);
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
