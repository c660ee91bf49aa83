import { join } from "node:path";
import type { Digest } from "../core/digest.js";
import { openSqliteDatabase, type SqliteDatabase } from "../store/sqlite-database.js";
import type { ResultKind, ResultRecord } from "../core/wire.js";

/** The JSON shapes the admin API answers with are declared once, in core/wire.ts (the web app reads them too). */
export type { ResultKind, ResultRecord } from "../core/wire.js";

/** The key a result is unique under: rerunning the same measurement replaces it. */
export type ResultKey = Pick<ResultRecord, "modelDigest" | "task" | "taskDigest" | "settings" | "engineVersion">;

/** Filters of {@link ResultStore.list}. */
export interface ResultQuery {
  modelDigests?: readonly Digest[];
  task?: string;
  kind?: ResultKind;
}

/** JSON with object keys sorted at every level: one spelling per settings object. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

interface Row {
  model_digest: string;
  kind: string;
  task: string;
  task_digest: string;
  settings: string;
  engine_version: string;
  metrics: string;
  flags: string;
  details: string;
  created_at: string;
}

const SCHEMA = `
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
  CREATE INDEX IF NOT EXISTS results_by_task ON results (task, task_digest);
`;

/**
 * Measurements of models, in `<home>/results.db` (SQLite, WAL): one row per (model digest,
 * task, task digest, settings, engine version). A rerun replaces its row; `get` lets a command
 * reuse a stored result unless asked to `--force`. Results outlive the models they measure (a
 * digest names the same bytes forever).
 */
export class ResultStore {
  readonly #db: SqliteDatabase;

  private constructor(db: SqliteDatabase) {
    this.#db = db;
  }

  /** Opens (creating) `<home>/results.db`. */
  static open(home: string): ResultStore {
    const db = openSqliteDatabase(join(home, "results.db"));
    db.pragma("journal_mode = WAL");
    db.exec(SCHEMA);
    return new ResultStore(db);
  }

  /** Stores a result, replacing the one with the same key. */
  put(result: ResultRecord): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO results (model_digest, kind, task, task_digest, settings, engine_version, metrics, flags, details, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        result.modelDigest,
        result.kind,
        result.task,
        result.taskDigest,
        canonicalJson(result.settings),
        result.engineVersion,
        JSON.stringify(result.metrics),
        JSON.stringify(result.flags),
        JSON.stringify(result.details),
        result.createdAt,
      );
  }

  /** The stored result with this key, if any. */
  get(key: ResultKey): ResultRecord | undefined {
    const row = this.#db
      .prepare(`SELECT * FROM results WHERE model_digest = ? AND task = ? AND task_digest = ? AND settings = ? AND engine_version = ?`)
      .get(key.modelDigest, key.task, key.taskDigest, canonicalJson(key.settings), key.engineVersion) as Row | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** Results matching the query, newest first. */
  list(query: ResultQuery = {}): ResultRecord[] {
    const where: string[] = [];
    const values: unknown[] = [];
    if (query.task !== undefined) {
      where.push("task = ?");
      values.push(query.task);
    }
    if (query.kind !== undefined) {
      where.push("kind = ?");
      values.push(query.kind);
    }
    if (query.modelDigests !== undefined) {
      if (query.modelDigests.length === 0) return [];
      where.push(`model_digest IN (${query.modelDigests.map(() => "?").join(", ")})`);
      values.push(...query.modelDigests);
    }
    const sql = `SELECT * FROM results${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC`;
    return (this.#db.prepare(sql).all(...values) as Row[]).map(fromRow);
  }

  close(): void {
    this.#db.close();
  }
}

function fromRow(row: Row): ResultRecord {
  return {
    modelDigest: row.model_digest as Digest,
    kind: row.kind as ResultKind,
    task: row.task,
    taskDigest: row.task_digest,
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    engineVersion: row.engine_version,
    metrics: JSON.parse(row.metrics) as Record<string, number | null>,
    flags: JSON.parse(row.flags) as string[],
    details: JSON.parse(row.details) as Record<string, unknown>,
    createdAt: row.created_at,
  };
}
