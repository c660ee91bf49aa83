import { openPostgresResults, openSqliteResults } from "./result-backends.js";
import type { ResultBackend, ResultKey, ResultQuery, ResultRecord } from "./result-record.js";

export type { ResultBackend, ResultKey, ResultKind, ResultQuery, ResultRecord } from "./result-record.js";

/** Options of {@link ResultStore.open}. */
export interface ResultStoreOptions {
  /**
   * A PostgreSQL URL (`--database`, GROVE_DATABASE_URL): results live in the shared database
   * beside the registry, so that every replica sees every result. @default `<home>/results.db`
   */
  database?: string;
  /** Called when an idle PostgreSQL connection fails (the pool replaces it). */
  onDatabaseError?: (error: Error) => void;
}

/**
 * Measurements of models: one row per (model digest, task, task digest, settings, engine
 * version, machine of a cost result). A rerun replaces its row; `get` lets a command reuse a
 * stored result unless asked to `--force`. Results outlive the models they measure (a digest
 * names the same bytes forever). Opened once by the composition root (`services.ts`) and handed
 * to whatever reads or writes results.
 */
export class ResultStore {
  readonly #backend: ResultBackend;

  private constructor(backend: ResultBackend) {
    this.#backend = backend;
  }

  /**
   * Opens (creating, and migrating an older file) `<home>/results.db`, or the results of the
   * shared PostgreSQL database when `options.database` is set.
   * @throws ConfigError for a bad or unreachable PostgreSQL URL
   */
  static async open(home: string, options: ResultStoreOptions = {}): Promise<ResultStore> {
    if (options.database !== undefined && options.database !== "") {
      return new ResultStore(await openPostgresResults(options.database, options.onDatabaseError === undefined ? {} : { onError: options.onDatabaseError }));
    }
    return new ResultStore(openSqliteResults(home));
  }

  /** Stores a result, replacing the one with the same key. */
  put(result: ResultRecord): Promise<void> {
    return this.#backend.put(result);
  }

  /** The stored result with this key, if any. */
  get(key: ResultKey): Promise<ResultRecord | undefined> {
    return this.#backend.get(key);
  }

  /** Results matching the query, newest first. */
  list(query: ResultQuery = {}): Promise<ResultRecord[]> {
    if (query.modelDigests !== undefined && query.modelDigests.length === 0) return Promise.resolve([]);
    return this.#backend.list(query);
  }

  close(): Promise<void> {
    return this.#backend.close();
  }
}
