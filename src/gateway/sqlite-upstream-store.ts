import { join } from "node:path";
import { openSqliteDatabase, type SqliteDatabase } from "../store/sqlite-database.js";
import type { UpstreamRecord, UpstreamStore } from "./upstream-store.js";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS upstreams (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    remote_model TEXT,
    api_key TEXT,
    fallback TEXT,
    created_at TEXT NOT NULL
  ) STRICT;
`;

interface UpstreamRow {
  name: string;
  url: string;
  remote_model: string | null;
  api_key: string | null;
  fallback: string | null;
  created_at: string;
}

function toRecord(row: UpstreamRow): UpstreamRecord {
  return {
    name: row.name,
    url: row.url,
    ...(row.remote_model === null ? {} : { remoteModel: row.remote_model }),
    ...(row.api_key === null ? {} : { apiKey: row.api_key }),
    ...(row.fallback === null ? {} : { fallback: row.fallback }),
    createdAt: row.created_at,
  };
}

/**
 * Upstreams in `<home>/service.db` (table `upstreams`, beside the gateway's keys and prices),
 * through a connection of its own: the table is independent of the service store's schema version.
 */
export class SqliteUpstreamStore implements UpstreamStore {
  readonly #db: SqliteDatabase;

  private constructor(db: SqliteDatabase) {
    this.#db = db;
  }

  /** Opens (creating) the table in `<home>/service.db`; the directory must exist. */
  static open(home: string): SqliteUpstreamStore {
    const db = openSqliteDatabase(join(home, "service.db"));
    try {
      db.pragma("journal_mode = WAL");
      db.exec(SCHEMA);
      return new SqliteUpstreamStore(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  async listUpstreams(): Promise<UpstreamRecord[]> {
    return (this.#db.prepare("SELECT * FROM upstreams ORDER BY name").all() as UpstreamRow[]).map(toRecord);
  }

  async getUpstream(name: string): Promise<UpstreamRecord | undefined> {
    const row = this.#db.prepare("SELECT * FROM upstreams WHERE name = ?").get(name) as UpstreamRow | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  async putUpstream(upstream: UpstreamRecord): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO upstreams (name, url, remote_model, api_key, fallback, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET url = excluded.url, remote_model = excluded.remote_model,
           api_key = excluded.api_key, fallback = excluded.fallback`,
      )
      .run(upstream.name, upstream.url, upstream.remoteModel ?? null, upstream.apiKey ?? null, upstream.fallback ?? null, upstream.createdAt);
  }

  async removeUpstream(name: string): Promise<boolean> {
    return this.#db.prepare("DELETE FROM upstreams WHERE name = ?").run(name).changes > 0;
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
