import { join } from "node:path";
import type { Digest } from "../core/digest.js";
import { migratePostgres, openPostgresDatabase, type OpenPostgresOptions, type PostgresDatabase, type PostgresMigration } from "../store/postgres-database.js";
import { openSqliteDatabase, type SqliteDatabase } from "../store/sqlite-database.js";
import type { Machine } from "./machine.js";
import { canonicalJson } from "../core/canonical-json.js";
import type { ResultBackend, ResultKey, ResultKind, ResultQuery, ResultRecord } from "./result-record.js";
import type { ResultSamples } from "./uncertainty.js";

// The two homes of results: `<home>/results.db` and a shared PostgreSQL database. Both keep the
// same columns; JSON goes in TEXT (SQLite) or jsonb (PostgreSQL), settings as canonical JSON text
// in both since it is part of the key.

interface Row {
  model_digest: string;
  kind: string;
  task: string;
  task_digest: string;
  settings: string;
  engine_version: string;
  machine_fingerprint: string;
  metrics: string | Record<string, number | null>;
  flags: string | string[];
  details: string | Record<string, unknown>;
  created_at: string;
  standard_errors: string | Record<string, number | null>;
  samples: string | ResultSamples | null;
  machine: string | Machine | null;
}

const COLUMNS = "model_digest, kind, task, task_digest, settings, engine_version, machine_fingerprint, metrics, flags, details, created_at, standard_errors, samples, machine";
const KEY_COLUMNS = ["model_digest", "task", "task_digest", "settings", "engine_version", "machine_fingerprint"];

/** The fingerprint column of a result: '' for none (quality results, and unknown machines). */
function fingerprintOf(machine: Machine | null | undefined): string {
  return machine?.fingerprint ?? "";
}

function toParameters(result: ResultRecord): unknown[] {
  return [
    result.modelDigest,
    result.kind,
    result.task,
    result.taskDigest,
    canonicalJson(result.settings),
    result.engineVersion,
    fingerprintOf(result.machine),
    JSON.stringify(result.metrics),
    JSON.stringify(result.flags),
    JSON.stringify(result.details),
    result.createdAt,
    JSON.stringify(result.standardErrors ?? {}),
    result.samples == null ? null : JSON.stringify(result.samples),
    result.machine == null ? null : JSON.stringify(result.machine),
  ];
}

function keyParameters(key: ResultKey): unknown[] {
  return [key.modelDigest, key.task, key.taskDigest, canonicalJson(key.settings), key.engineVersion, fingerprintOf(key.machine)];
}

function json<T>(value: string | T): T {
  return typeof value === "string" ? (JSON.parse(value) as T) : value;
}

function fromRow(row: Row): ResultRecord {
  const standardErrors = json<Record<string, number | null>>(row.standard_errors);
  const metrics = json<Record<string, number | null>>(row.metrics);
  return {
    modelDigest: row.model_digest as Digest,
    kind: row.kind as ResultKind,
    task: row.task,
    taskDigest: row.task_digest,
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    engineVersion: row.engine_version,
    metrics,
    flags: json<string[]>(row.flags),
    details: json<Record<string, unknown>>(row.details),
    createdAt: row.created_at,
    // Every metric gets an entry: null where the error is not known.
    standardErrors: Object.fromEntries(Object.keys(metrics).map((name) => [name, typeof standardErrors[name] === "number" ? standardErrors[name] : null])),
    samples: row.samples === null ? null : json<ResultSamples>(row.samples),
    machine: row.machine === null ? null : json<Machine>(row.machine),
  };
}

function where(query: ResultQuery, placeholder: (index: number) => string): { sql: string; values: unknown[] } {
  const clauses: string[] = [];
  const values: unknown[] = [];
  const add = (value: unknown): string => {
    values.push(value);
    return placeholder(values.length);
  };
  if (query.task !== undefined) clauses.push(`task = ${add(query.task)}`);
  if (query.kind !== undefined) clauses.push(`kind = ${add(query.kind)}`);
  if (query.modelDigests !== undefined) clauses.push(`model_digest IN (${query.modelDigests.map((digest) => add(digest)).join(", ")})`);
  return { sql: clauses.length > 0 ? ` WHERE ${clauses.join(" AND ")}` : "", values };
}

/** Version 1: the results table as first shipped (no errors, samples or machine). */
const SQLITE_V1 = `
  CREATE TABLE IF NOT EXISTS results (
    model_digest TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('quality', 'cost')),
    task TEXT NOT NULL,
    task_digest TEXT NOT NULL,
    settings TEXT NOT NULL CHECK (json_valid(settings)),
    engine_version TEXT NOT NULL,
    metrics TEXT NOT NULL CHECK (json_valid(metrics)),
    flags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(flags)),
    details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    created_at TEXT NOT NULL,
    PRIMARY KEY (model_digest, task, task_digest, settings, engine_version)
  ) STRICT;
`;

/**
 * Version 2: standard errors, per-unit samples and the machine, whose fingerprint joins the key.
 * SQLite cannot change a primary key in place: the table is rebuilt, old rows copied with no
 * errors ('{}', read as null), no samples and an unknown machine.
 */
const SQLITE_V2 = `
  CREATE TABLE results_v2 (
    model_digest TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('quality', 'cost')),
    task TEXT NOT NULL,
    task_digest TEXT NOT NULL,
    settings TEXT NOT NULL CHECK (json_valid(settings)),
    engine_version TEXT NOT NULL,
    machine_fingerprint TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL CHECK (json_valid(metrics)),
    flags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(flags)),
    details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    created_at TEXT NOT NULL,
    standard_errors TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(standard_errors)),
    samples TEXT CHECK (samples IS NULL OR json_valid(samples)),
    machine TEXT CHECK (machine IS NULL OR json_valid(machine)),
    PRIMARY KEY (model_digest, task, task_digest, settings, engine_version, machine_fingerprint)
  ) STRICT;
  INSERT INTO results_v2 (model_digest, kind, task, task_digest, settings, engine_version, metrics, flags, details, created_at)
    SELECT model_digest, kind, task, task_digest, settings, engine_version, metrics, flags, details, created_at FROM results;
  DROP TABLE results;
  ALTER TABLE results_v2 RENAME TO results;
  CREATE INDEX results_by_task ON results (task, task_digest);
  CREATE INDEX results_by_model ON results (model_digest);
`;

const SQLITE_VERSION = 2;

/** Opens `<home>/results.db` (WAL), migrating a file of an older Grove. */
export function openSqliteResults(home: string): ResultBackend {
  const db = openSqliteDatabase(join(home, "results.db"));
  db.pragma("journal_mode = WAL");
  migrateSqlite(db);
  const insert = db.prepare(`INSERT OR REPLACE INTO results (${COLUMNS}) VALUES (${COLUMNS.split(",").map(() => "?").join(", ")})`);
  const get = db.prepare(`SELECT * FROM results WHERE ${KEY_COLUMNS.map((column) => `${column} = ?`).join(" AND ")}`);
  return {
    put: async (result) => void insert.run(...toParameters(result)),
    get: async (key) => {
      const row = get.get(...keyParameters(key)) as Row | undefined;
      return row === undefined ? undefined : fromRow(row);
    },
    list: async (query) => {
      const filter = where(query, () => "?");
      return (db.prepare(`SELECT * FROM results${filter.sql} ORDER BY created_at DESC`).all(...filter.values) as Row[]).map(fromRow);
    },
    close: async () => db.close(),
  };
}

function migrateSqlite(db: SqliteDatabase): void {
  const version = (): number => db.pragma("user_version", { simple: true }) as number;
  if (version() >= SQLITE_VERSION) return;
  // IMMEDIATE: two processes opening an old file together migrate it once.
  const migrate = db.transaction(() => {
    if (version() >= SQLITE_VERSION) return;
    db.exec(SQLITE_V1);
    db.exec(SQLITE_V2);
    db.pragma(`user_version = ${SQLITE_VERSION}`);
  }) as (() => void) & { immediate: () => void };
  migrate.immediate();
}

/** The results schema in PostgreSQL, kept under the component `results` in `grove_schema`. Append only. */
export const POSTGRES_RESULT_MIGRATIONS: readonly PostgresMigration[] = Object.freeze([
  {
    version: 1,
    description: "results with standard errors, samples and machine",
    sql: `
      CREATE TABLE results (
        model_digest text COLLATE "C" NOT NULL,
        kind text NOT NULL CHECK (kind IN ('quality', 'cost')),
        task text COLLATE "C" NOT NULL,
        task_digest text COLLATE "C" NOT NULL,
        settings text COLLATE "C" NOT NULL,
        engine_version text COLLATE "C" NOT NULL,
        machine_fingerprint text COLLATE "C" NOT NULL DEFAULT '',
        metrics jsonb NOT NULL,
        flags jsonb NOT NULL DEFAULT '[]',
        details jsonb NOT NULL DEFAULT '{}',
        created_at text COLLATE "C" NOT NULL,
        standard_errors jsonb NOT NULL DEFAULT '{}',
        samples jsonb,
        machine jsonb,
        PRIMARY KEY (model_digest, task, task_digest, settings, engine_version, machine_fingerprint)
      );
      CREATE INDEX results_by_task ON results (task, task_digest);
      CREATE INDEX results_by_model ON results (model_digest);
    `,
  },
]);

/**
 * Opens the results of a shared PostgreSQL database (migrating its schema), so that replicas
 * sharing the registry share results too.
 * @throws ConfigError for a bad or unreachable URL
 */
export async function openPostgresResults(url: string, options: OpenPostgresOptions = {}): Promise<ResultBackend> {
  const db: PostgresDatabase = await openPostgresDatabase(url, options);
  try {
    await migratePostgres(db, "results", POSTGRES_RESULT_MIGRATIONS);
  } catch (error) {
    await db.close();
    throw error;
  }
  const placeholders = COLUMNS.split(",").map((_, index) => `$${index + 1}`).join(", ");
  const updates = COLUMNS.split(", ").filter((column) => !KEY_COLUMNS.includes(column)).map((column) => `${column} = excluded.${column}`).join(", ");
  return {
    put: async (result) => {
      await db.query(`INSERT INTO results (${COLUMNS}) VALUES (${placeholders}) ON CONFLICT (${KEY_COLUMNS.join(", ")}) DO UPDATE SET ${updates}`, toParameters(result));
    },
    get: async (key) => {
      const { rows } = await db.query<Row>(`SELECT * FROM results WHERE ${KEY_COLUMNS.map((column, index) => `${column} = $${index + 1}`).join(" AND ")}`, keyParameters(key));
      return rows[0] === undefined ? undefined : fromRow(rows[0]);
    },
    list: async (query) => {
      const filter = where(query, (index) => `$${index}`);
      const { rows } = await db.query<Row>(`SELECT * FROM results${filter.sql} ORDER BY created_at DESC`, filter.values);
      return rows.map(fromRow);
    },
    close: () => db.close(),
  };
}
