import { createRequire } from "node:module";

// The part of better-sqlite3's API Grove uses (the package ships no types).

/** A prepared statement. */
export interface SqliteStatement {
  run(...parameters: unknown[]): { changes: number };
  get(...parameters: unknown[]): unknown;
  all(...parameters: unknown[]): unknown[];
}

/** A better-sqlite3 connection. */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): void;
  readonly inTransaction: boolean;
}

type DatabaseConstructor = new (path: string, options?: { timeout?: number }) => SqliteDatabase;

/** Opens (creating) a SQLite file with better-sqlite3; `timeoutMs` waits for another writer's lock. */
export function openSqliteDatabase(path: string, timeoutMs = 5000): SqliteDatabase {
  const Driver = createRequire(import.meta.url)("better-sqlite3") as DatabaseConstructor;
  return new Driver(path, { timeout: timeoutMs });
}
