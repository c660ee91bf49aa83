import { randomBytes } from "node:crypto";
import { NotFoundError } from "../core/errors.js";
import { migratePostgres, openPostgresDatabase, type OpenPostgresOptions, type PostgresDatabase, type PostgresMigration } from "../store/postgres-database.js";
import { periodBounds, type BudgetState, type KeyLimits, type KeyRecord, type NewKey, type PriceRecord, type ReserveRequest, type ReserveResult, type ServiceStore, type UsageGrouping, type UsageSplit, type UsageQuery, type UsageRecord, type UsageSummary } from "./service-store.js";
import { KEY_COLUMNS, type KeyRow, newKeyRow, type PriceRow, reserveAmounts, type SummaryRow, toBudgetState, toKey, toPrice, toUsage, toUsageSummary, type UsageRow, usageValues, type WindowRow, whereOf } from "./service-rows.js";


const MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    description: "keys, budget windows, reservations, usage, prices",
    sql: `
      CREATE TABLE keys (
        id text PRIMARY KEY,
        name text NOT NULL,
        prefix text NOT NULL,
        secret_hash text NOT NULL UNIQUE CHECK (length(secret_hash) = 64),
        admin boolean NOT NULL,
        models jsonb,
        expires_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL,
        rpm integer,
        tpm bigint,
        concurrency integer,
        budget_tokens bigint,
        budget_nusd bigint,
        budget_period text CHECK (budget_period IN ('day', 'month'))
      );
      CREATE TABLE budget_windows (
        key_id text NOT NULL REFERENCES keys (id),
        period_start timestamptz NOT NULL,
        spent_tokens bigint NOT NULL DEFAULT 0,
        reserved_tokens bigint NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
        spent_nusd bigint NOT NULL DEFAULT 0,
        reserved_nusd bigint NOT NULL DEFAULT 0 CHECK (reserved_nusd >= 0),
        PRIMARY KEY (key_id, period_start)
      );
      CREATE TABLE reservations (
        id text PRIMARY KEY,
        key_id text NOT NULL,
        period_start timestamptz NOT NULL,
        tokens bigint NOT NULL,
        nusd bigint NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE TABLE usage (
        id bigserial PRIMARY KEY,
        request_id text NOT NULL,
        key_id text,
        model_digest text NOT NULL,
        model text NOT NULL,
        endpoint text NOT NULL,
        prompt_tokens integer NOT NULL,
        completion_tokens integer NOT NULL,
        cost_nusd bigint NOT NULL,
        ttft_ms double precision,
        duration_ms double precision NOT NULL,
        status integer NOT NULL,
        cancelled boolean NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE INDEX usage_by_time ON usage (created_at);
      CREATE INDEX usage_by_key ON usage (key_id, created_at);
      CREATE TABLE prices (
        model_digest text PRIMARY KEY,
        input_per_1m double precision NOT NULL CHECK (input_per_1m >= 0),
        output_per_1m double precision NOT NULL CHECK (output_per_1m >= 0),
        updated_at timestamptz NOT NULL
      );
    `,
  },
];


const GROUP_EXPRESSIONS: Record<UsageGrouping, string> = {
  model: "model_digest",
  key: "coalesce(key_id, '-')",
  day: "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
  hour: "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')",
};

/**
 * The shared {@link ServiceStore}: keys, budgets, reservations, usage and prices in one
 * PostgreSQL database that every Grove replica (and the `grove keys|usage|price` commands)
 * opens with `--database postgres://…`. A reservation is one conditional UPDATE
 * (`… WHERE spent + reserved + cost <= budget`) whose row lock serialises concurrent
 * reservations of a key across connections and replicas, so no interleaving can overspend.
 */
export class PostgresServiceStore implements ServiceStore {
  readonly #db: PostgresDatabase;

  private constructor(db: PostgresDatabase) {
    this.#db = db;
  }

  /**
   * Connects to `url` and creates or migrates the schema.
   * @throws ConfigError for a malformed URL, an unreachable database or a newer schema
   */
  static async open(url: string, options: OpenPostgresOptions = {}): Promise<PostgresServiceStore> {
    const db = await openPostgresDatabase(url, options);
    try {
      await migratePostgres(db, "gateway", MIGRATIONS);
      return new PostgresServiceStore(db);
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  async hasKeys(): Promise<boolean> {
    return (await this.#db.query("SELECT 1 FROM keys LIMIT 1")).rowCount > 0;
  }

  async createKey(key: NewKey, now: Date): Promise<KeyRecord> {
    const { values } = newKeyRow(key, now);
    const { rows } = await this.#db.query<KeyRow>(
      `INSERT INTO keys (id, name, prefix, secret_hash, admin, models, expires_at, created_at, rpm, tpm, concurrency, budget_tokens, budget_nusd, budget_period)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING ${KEY_COLUMNS}`,
      values,
    );
    return toKey(rows[0]!);
  }

  async findKeyByHash(secretHash: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.#db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys WHERE secret_hash = $1`, [secretHash]);
    return rows[0] && toKey(rows[0]);
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.#db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys WHERE id = $1`, [id]);
    return rows[0] && toKey(rows[0]);
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (await this.#db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys ORDER BY created_at, id`)).rows.map(toKey);
  }

  async revokeKey(id: string, now: Date): Promise<KeyRecord> {
    const { rows } = await this.#db.query<KeyRow>(
      `UPDATE keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 RETURNING ${KEY_COLUMNS}`,
      [now.toISOString(), id],
    );
    if (!rows[0]) throw new NotFoundError(`No key with id '${id}' (see grove keys list)`);
    return toKey(rows[0]);
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const { start, end, nusd, budgetTokens, budgetNusd } = reserveAmounts(request);
    await this.#db.query("INSERT INTO budget_windows (key_id, period_start) VALUES ($1, $2) ON CONFLICT DO NOTHING", [request.keyId, start]);
    const reservationId = randomBytes(12).toString("hex");
    // Check and write are one statement: the UPDATE takes the window's row lock and, under READ
    // COMMITTED, re-evaluates its WHERE against the row as the previous holder left it, so two
    // replicas cannot both pass the check on the same spend. The reservation row is written by
    // the same statement, only when the UPDATE matched.
    const admitted = await this.#db.query(
      `WITH reserved AS (
         UPDATE budget_windows SET reserved_tokens = reserved_tokens + $3::bigint, reserved_nusd = reserved_nusd + $4::bigint
         WHERE key_id = $1 AND period_start = $2
           AND ($5::bigint IS NULL OR spent_tokens + reserved_tokens + $3 <= $5::bigint)
           AND ($6::bigint IS NULL OR spent_nusd + reserved_nusd + $4 <= $6::bigint)
         RETURNING key_id, period_start
       )
       INSERT INTO reservations (id, key_id, period_start, tokens, nusd, created_at)
       SELECT $7::text, key_id, period_start, $3::bigint, $4::bigint, $8::timestamptz FROM reserved RETURNING id`,
      [request.keyId, start, request.tokens, nusd, budgetTokens, budgetNusd, reservationId, request.now.toISOString()],
    );
    if (admitted.rowCount === 1) return { admitted: true, reservationId };
    const { rows } = await this.#db.query<WindowRow>(
      "SELECT spent_tokens, reserved_tokens, spent_nusd, reserved_nusd FROM budget_windows WHERE key_id = $1 AND period_start = $2",
      [request.keyId, start],
    );
    const window = rows[0] ?? { spent_tokens: 0, reserved_tokens: 0, spent_nusd: 0, reserved_nusd: 0 };
    const tokensShort = budgetTokens !== null && window.spent_tokens + window.reserved_tokens + request.tokens > budgetTokens;
    const fitsAfterInFlight =
      (budgetTokens === null || window.spent_tokens + request.tokens <= budgetTokens) && (budgetNusd === null || window.spent_nusd + nusd <= budgetNusd);
    return { admitted: false, limit: tokensShort ? "budget_tokens" : "budget_usd", fitsAfterInFlight, periodEnd: end };
  }

  async settle(reservationId: string | undefined, usage: UsageRecord): Promise<void> {
    // One statement again: the reservation is deleted, its window settled and the usage row
    // written together, so a reservation is settled at most once whichever replica settles it.
    await this.#db.query(
      `WITH held AS (
         DELETE FROM reservations WHERE id = $1 RETURNING key_id, period_start, tokens, nusd
       ), settled AS (
         UPDATE budget_windows AS w SET reserved_tokens = w.reserved_tokens - held.tokens, spent_tokens = w.spent_tokens + $2,
           reserved_nusd = w.reserved_nusd - held.nusd, spent_nusd = w.spent_nusd + $10
         FROM held WHERE w.key_id = held.key_id AND w.period_start = held.period_start
       )
       INSERT INTO usage (request_id, key_id, model_digest, model, endpoint, prompt_tokens, completion_tokens, cost_nusd, ttft_ms, duration_ms, status, cancelled, created_at)
       VALUES ($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      // $10, the usage's cost, is also what the window spends.
      [reservationId ?? null, usage.promptTokens + usage.completionTokens, ...usageValues(usage)],
    );
  }

  async expireReservations(before: Date): Promise<number> {
    // One statement: the DELETE … RETURNING takes each row lock, so a reservation a replica is
    // settling at the same moment is either settled there or released here, never both.
    const { rows } = await this.#db.query<{ released: string | number }>(
      `WITH expired AS (
         DELETE FROM reservations WHERE created_at < $1::timestamptz RETURNING key_id, period_start, tokens, nusd
       ), totals AS (
         SELECT key_id, period_start, sum(tokens)::bigint AS tokens, sum(nusd)::bigint AS nusd, count(*) AS released FROM expired GROUP BY key_id, period_start
       ), windows AS (
         UPDATE budget_windows AS w SET reserved_tokens = w.reserved_tokens - t.tokens, reserved_nusd = w.reserved_nusd - t.nusd
         FROM totals AS t WHERE w.key_id = t.key_id AND w.period_start = t.period_start
       )
       SELECT coalesce(sum(released), 0)::int AS released FROM totals`,
      [before.toISOString()],
    );
    return Number(rows[0]?.released ?? 0);
  }

  async budgetState(keyId: string, limits: KeyLimits, now: Date): Promise<BudgetState> {
    const { start } = periodBounds(limits.period ?? "month", now);
    const { rows } = await this.#db.query<WindowRow>(
      "SELECT spent_tokens, reserved_tokens, spent_nusd, reserved_nusd FROM budget_windows WHERE key_id = $1 AND period_start = $2",
      [keyId, start],
    );
    const row = rows[0];
    return toBudgetState(start, row);
  }

  async listUsage(query: UsageQuery): Promise<UsageRecord[]> {
    const { sql, parameters } = whereOf(query, (index) => `$${index}`);
    const { rows } = await this.#db.query<UsageRow>(
      `SELECT * FROM usage ${sql} ORDER BY created_at DESC, id DESC LIMIT $${parameters.length + 1}`,
      [...parameters, query.limit ?? 1000],
    );
    return rows.map(toUsage);
  }

  async summarizeUsage(query: UsageQuery, by: UsageGrouping, split?: UsageSplit): Promise<UsageSummary[]> {
    const { sql, parameters } = whereOf(query, (index) => `$${index}`);
    const splitColumn = split === undefined ? "" : `, ${GROUP_EXPRESSIONS[split]} AS part`;
    const order = split === undefined ? "grp" : "grp, part";
    const { rows } = await this.#db.query<SummaryRow>(
      `SELECT ${GROUP_EXPRESSIONS[by]} AS grp${splitColumn}, count(*) AS requests, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
         sum(cost_nusd) AS cost, count(*) FILTER (WHERE cancelled) AS cancelled, count(*) FILTER (WHERE status >= 400) AS errors, avg(ttft_ms) AS ttft
       FROM usage ${sql} GROUP BY ${order} ORDER BY ${order}`,
      parameters,
    );
    return rows.map(toUsageSummary);
  }

  async setPrice(price: PriceRecord): Promise<void> {
    await this.#db.query(
      `INSERT INTO prices (model_digest, input_per_1m, output_per_1m, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (model_digest) DO UPDATE SET input_per_1m = excluded.input_per_1m, output_per_1m = excluded.output_per_1m, updated_at = excluded.updated_at`,
      [price.modelDigest, price.inputPer1m, price.outputPer1m, price.updatedAt],
    );
  }

  async getPrice(modelDigest: string): Promise<PriceRecord | undefined> {
    const { rows } = await this.#db.query<PriceRow>("SELECT * FROM prices WHERE model_digest = $1", [modelDigest]);
    return rows[0] && toPrice(rows[0]);
  }

  async listPrices(): Promise<PriceRecord[]> {
    return (await this.#db.query<PriceRow>("SELECT * FROM prices ORDER BY model_digest")).rows.map(toPrice);
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
