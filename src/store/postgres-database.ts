import pg from "pg";
import { ConfigError } from "../core/errors.js";
import { maskUrl } from "../core/mask-url.js";

// The one home of the `pg` driver: everything else talks to PostgresDatabase.

/** What a query answers. */
export interface PostgresResult<Row> {
  readonly rows: Row[];
  /** Rows inserted, updated, deleted or returned. */
  readonly rowCount: number;
}

/** Runs SQL with `$1`-style parameters. */
export interface PostgresQueryable {
  query<Row = Record<string, unknown>>(sql: string, parameters?: readonly unknown[]): Promise<PostgresResult<Row>>;
}

/** A pool of connections to one PostgreSQL database. */
export interface PostgresDatabase extends PostgresQueryable {
  /** Runs `fn` on one connection inside BEGIN … COMMIT (ROLLBACK when it throws). */
  transaction<T>(fn: (connection: PostgresQueryable) => Promise<T>): Promise<T>;
  /** The URL with its password masked, for messages and logs. */
  readonly displayUrl: string;
  close(): Promise<void>;
}

/** Options of {@link openPostgresDatabase}. */
export interface OpenPostgresOptions {
  /** Connections kept at most. @default 10 */
  readonly maxConnections?: number;
  /** How long to wait for a connection, ms. @default 5000 */
  readonly connectTimeoutMs?: number;
  /** Called when an idle connection fails (the database restarted …); the pool replaces it. */
  readonly onError?: (error: Error) => void;
  /** The flag and variable that named the URL, for error messages. @default "--database (GROVE_DATABASE_URL)" */
  readonly source?: string;
}

// bigint (20) and numeric (1700, what sum() of bigints gives) as numbers: every quantity Grove
// keeps (tokens, nano-dollars) stays far below 2^53. timestamptz (1184) as ISO 8601 strings,
// the form every Grove record uses.
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20 || oid === 1700) return (value: string) => Number(value);
    if (oid === 1184) return (value: string) => new Date(value).toISOString();
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

/**
 * Opens a pool on a `postgres://` URL and checks it with one round trip, so that a wrong
 * URL, a refused connection or a bad password fails at startup with a message naming the
 * setting instead of at the first request.
 * @throws ConfigError when the URL is malformed or the database cannot be reached
 */
export async function openPostgresDatabase(url: string, options: OpenPostgresOptions = {}): Promise<PostgresDatabase> {
  const source = options.source ?? "--database (GROVE_DATABASE_URL)";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ConfigError(`${source} must be a URL such as postgres://user:password@host:5432/grove`, { cause: error, param: "--database" });
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new ConfigError(`${source} must start with postgres:// or postgresql://; got ${parsed.protocol}//…`, { param: "--database" });
  }
  const displayUrl = maskUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    application_name: "grove",
    types,
  });
  // Without a listener an idle connection's failure would crash the process.
  pool.on("error", (error) => options.onError?.(error));
  try {
    await pool.query("SELECT 1");
  } catch (error) {
    await pool.end().catch(() => undefined);
    const reason = error instanceof Error ? error.message || (error as NodeJS.ErrnoException).code || error.name : String(error);
    throw new ConfigError(`Cannot connect to PostgreSQL at ${displayUrl} (set with ${source}): ${reason}`, { cause: error, param: "--database" });
  }
  const query = async <Row>(client: pg.Pool | pg.PoolClient, sql: string, parameters?: readonly unknown[]) => {
    const result = await client.query(sql, parameters as unknown[] | undefined);
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  };
  return {
    displayUrl,
    query: (sql, parameters) => query(pool, sql, parameters),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn({ query: (sql, parameters) => query(client, sql, parameters) });
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** One step of a schema's history: applied once, in order, in the transaction of its version. */
export interface PostgresMigration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/**
 * Brings the schema of `component` (e.g. `gateway`) up to the last migration, under an
 * advisory lock so that replicas starting together migrate once. Versions are kept per
 * component in `grove_schema`, so that several parts of Grove can share one database.
 * @throws ConfigError when the database was migrated by a newer Grove
 */
export async function migratePostgres(database: PostgresDatabase, component: string, migrations: readonly PostgresMigration[]): Promise<void> {
  const latest = migrations.at(-1)?.version ?? 0;
  await database.transaction(async (connection) => {
    await connection.query("SELECT pg_advisory_xact_lock(hashtext('grove-schema'))");
    await connection.query(
      "CREATE TABLE IF NOT EXISTS grove_schema (component text PRIMARY KEY, version integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
    );
    const { rows } = await connection.query<{ version: number }>("SELECT version FROM grove_schema WHERE component = $1", [component]);
    const current = rows[0]?.version ?? 0;
    if (current > latest) {
      throw new ConfigError(`${database.displayUrl} holds a ${component} schema of version ${current}, written by a newer Grove (this one knows ${latest})`);
    }
    for (const migration of migrations) {
      if (migration.version > current) await connection.query(migration.sql);
    }
    await connection.query(
      `INSERT INTO grove_schema (component, version) VALUES ($1, $2)
       ON CONFLICT (component) DO UPDATE SET version = excluded.version, updated_at = now()`,
      [component, latest],
    );
  });
}
