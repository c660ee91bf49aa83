import type { Digest } from "../core/digest.js";
import { ConfigError, ConflictError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import type { AliasEvent, AliasRecord, LineageEdge, ModelRecord, NameRecord, Recipe, Registry, Relation } from "./registry.js";
import { openSqliteDatabase, type SqliteDatabase } from "./sqlite-database.js";
import { SQLITE_MIGRATIONS, type SqliteMigration } from "./sqlite-migrations.js";
import { checkAlias, type ModelRow, onlyMatch, PREFIX_ROWS, toModelRecord } from "./registry-rows.js";

/** A model as SQLite stores it: the card as JSON text. */
type SqliteModelRow = Omit<ModelRow, "card"> & { card: string };
const modelOf = (row: SqliteModelRow): ModelRecord => toModelRecord({ ...row, card: JSON.parse(row.card) as Record<string, unknown> });

type Database = SqliteDatabase;

/** Options of {@link SqliteRegistry.open}. */
export interface SqliteRegistryOptions {
  /** How long to wait for another process's write lock, in milliseconds. @default 5000 */
  busyTimeoutMs?: number;
  /** The schema to migrate to; tests pass a shorter list. @default SQLITE_MIGRATIONS */
  migrations?: readonly SqliteMigration[];
}

interface EdgeRow {
  child: Digest;
  parent: Digest;
  relation: Relation;
  recipe: string | null;
}

interface AliasEventRow {
  id: number;
  alias: string;
  at: string;
  action: AliasEvent["action"];
  from_targets: string;
  to_targets: string;
  tasks: string;
  scores: string;
  decision: AliasEvent["decision"];
  reason: string;
}

/** How many candidates an ambiguous prefix lists. */

/** One lock per connection: while a transaction runs, calls outside it wait. */
interface Gate {
  busy: Promise<void> | undefined;
}

/**
 * The embedded {@link Registry}: one SQLite file through better-sqlite3, WAL, foreign keys on,
 * numbered migrations applied in one transaction when it opens, prepared statements throughout.
 */
export class SqliteRegistry implements Registry {
  readonly #database: Database;
  readonly #statements: ReturnType<typeof prepareStatements>;
  readonly #gate: Gate;
  /** True for the view handed to a transaction's callback. */
  readonly #inTransaction: boolean;
  #ended = false;

  private constructor(database: Database, statements: ReturnType<typeof prepareStatements>, gate: Gate, inTransaction: boolean) {
    this.#database = database;
    this.#statements = statements;
    this.#gate = gate;
    this.#inTransaction = inTransaction;
  }

  /**
   * Opens (creating if needed) the registry database at `path` and applies pending migrations.
   * @throws ConfigError when the database was written by a newer Grove (unknown schema version)
   */
  static open(path: string, options: SqliteRegistryOptions = {}): SqliteRegistry {
    const database = openSqliteDatabase(path, options.busyTimeoutMs ?? 5000);
    try {
      database.pragma("journal_mode = WAL");
      database.pragma("foreign_keys = ON");
      // FULL: a model reported imported survives a power cut too.
      database.pragma("synchronous = FULL");
      applyMigrations(database, options.migrations ?? SQLITE_MIGRATIONS, path);
      return new SqliteRegistry(database, prepareStatements(database), { busy: undefined }, false);
    } catch (error) {
      database.close();
      throw error;
    }
  }

  /** Versions recorded in `schema_migrations`, in order. */
  async appliedMigrations(): Promise<number[]> {
    return this.#run(() => (this.#database.prepare("SELECT version FROM schema_migrations ORDER BY version").all() as { version: number }[]).map((row) => row.version));
  }

  async addModel(record: ModelRecord): Promise<boolean> {
    return this.#run(() => {
      const result = this.#statements.insertModel.run(
        record.digest, record.size, record.architecture, record.parameterCount, record.quantization, record.contextLength,
        record.vocabularySize, record.chatTemplate ?? null, record.license ?? null, JSON.stringify(record.card), record.createdAt,
      );
      return result.changes > 0;
    });
  }

  async getModel(digest: Digest): Promise<ModelRecord | undefined> {
    return this.#run(() => {
      const row = this.#statements.getModel.get(digest) as SqliteModelRow | undefined;
      return row === undefined ? undefined : modelOf(row);
    });
  }

  async findByPrefix(hexPrefix: string): Promise<ModelRecord> {
    if (!/^[0-9a-f]{1,64}$/.test(hexPrefix)) throw new InvalidRequestError("A digest prefix holds hex digits only", { param: "model" });
    return this.#run(() => {
      const low = `sha256:${hexPrefix}`;
      // '~' sorts after every hex digit, so [low, low~) is exactly the digests starting with low.
      const rows = this.#statements.findByPrefix.all(low, `${low}~`, PREFIX_ROWS) as SqliteModelRow[];
      return modelOf(onlyMatch(rows, hexPrefix));
    });
  }

  async listModels(): Promise<ModelRecord[]> {
    return this.#run(() => (this.#statements.listModels.all() as SqliteModelRow[]).map(modelOf));
  }

  async removeModel(digest: Digest): Promise<boolean> {
    return this.#run(() =>
      this.#database.transaction(() => {
        const aliases = this.#aliasesTargeting(digest);
        if (aliases.length > 0) {
          throw new ConflictError(`The alias${aliases.length > 1 ? "es" : ""} ${aliases.join(", ")} route${aliases.length > 1 ? "" : "s"} to ${digest}; change ${aliases.length > 1 ? "them" : "it"} first`);
        }
        this.#statements.deleteNamesOf.run(digest);
        this.#statements.deleteEdgesOf.run(digest, digest);
        return this.#statements.deleteModel.run(digest).changes > 0;
      })(),
    );
  }

  async setName(name: string, digest: Digest): Promise<Digest | undefined> {
    return this.#run(() =>
      this.#database.transaction(() => {
        this.#assertModel(digest);
        const previous = this.#statements.getName.get(name) as { digest: Digest } | undefined;
        this.#statements.upsertName.run(name, digest, new Date().toISOString());
        return previous?.digest;
      })(),
    );
  }

  async removeName(name: string): Promise<boolean> {
    return this.#run(() => this.#statements.deleteName.run(name).changes > 0);
  }

  async getNameTarget(name: string): Promise<Digest | undefined> {
    return this.#run(() => (this.#statements.getName.get(name) as { digest: Digest } | undefined)?.digest);
  }

  async namesOf(digest: Digest): Promise<string[]> {
    return this.#run(() => (this.#statements.namesOf.all(digest) as { name: string }[]).map((row) => row.name));
  }

  async listNames(): Promise<NameRecord[]> {
    return this.#run(() =>
      (this.#statements.listNames.all() as { name: string; digest: Digest; updated_at: string }[]).map((row) => ({
        name: row.name,
        digest: row.digest,
        updatedAt: row.updated_at,
      })),
    );
  }

  async addEdge(edge: LineageEdge): Promise<void> {
    return this.addEdges([edge]);
  }

  async addEdges(edges: readonly LineageEdge[]): Promise<void> {
    return this.#run(() =>
      this.#database.transaction(() => {
        const now = new Date().toISOString();
        for (const edge of edges) {
          this.#assertModel(edge.child);
          this.#assertModel(edge.parent);
          if (edge.child === edge.parent) throw new InvalidRequestError(`A model cannot be its own parent (${edge.child})`, { param: "base" });
          if (this.#statements.isAncestor.get(edge.parent, edge.child) !== undefined) {
            throw new InvalidRequestError(`${edge.child} is already an ancestor of ${edge.parent}: the edge would make a cycle`, { param: "base" });
          }
          this.#statements.upsertEdge.run(edge.child, edge.parent, edge.relation, edge.recipe === null ? null : JSON.stringify(edge.recipe), now);
        }
      })(),
    );
  }

  async parentsOf(digest: Digest): Promise<LineageEdge[]> {
    return this.#run(() => (this.#statements.parentsOf.all(digest) as EdgeRow[]).map(toEdge));
  }

  async childrenOf(digest: Digest): Promise<LineageEdge[]> {
    return this.#run(() => (this.#statements.childrenOf.all(digest) as EdgeRow[]).map(toEdge));
  }

  async listEdges(): Promise<LineageEdge[]> {
    return this.#run(() => (this.#statements.listEdges.all() as EdgeRow[]).map(toEdge));
  }

  async setAlias(alias: AliasRecord): Promise<void> {
    checkAlias(alias);
    return this.#run(() =>
      this.#database.transaction(() => {
        this.#statements.upsertAlias.run(alias.name, new Date().toISOString());
        this.#statements.deleteAliasTargets.run(alias.name);
        for (const target of alias.targets) this.#assertModel(target.digest);
        for (const target of alias.targets) this.#statements.insertAliasTarget.run(alias.name, target.digest, target.weight);
      })(),
    );
  }

  async getAlias(name: string): Promise<AliasRecord | undefined> {
    return this.#run(() => {
      if (this.#statements.getAlias.get(name) === undefined) return undefined;
      return { name, targets: this.#statements.aliasTargets.all(name) as AliasRecord["targets"] };
    });
  }

  async listAliases(): Promise<AliasRecord[]> {
    return this.#run(() => {
      const aliases = new Map<string, AliasRecord>();
      for (const row of this.#statements.listAliasTargets.all() as { name: string; digest: Digest | null; weight: number | null }[]) {
        const alias = aliases.get(row.name) ?? { name: row.name, targets: [] };
        if (row.digest !== null && row.weight !== null) alias.targets.push({ digest: row.digest, weight: row.weight });
        aliases.set(row.name, alias);
      }
      return [...aliases.values()];
    });
  }

  async removeAlias(name: string): Promise<boolean> {
    return this.#run(() => this.#statements.deleteAlias.run(name).changes > 0);
  }

  async aliasesTargeting(digest: Digest): Promise<string[]> {
    return this.#run(() => this.#aliasesTargeting(digest));
  }

  async recordAliasEvent(event: Omit<AliasEvent, "id">): Promise<AliasEvent> {
    return this.#run(() => {
      // Prepared per call, not at open: a registry opened with an older schema (tests) has no such table.
      const insert = this.#database.prepare(
        "INSERT INTO alias_history (alias, at, action, from_targets, to_targets, tasks, scores, decision, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      );
      const result = insert.run(
        event.alias, event.at, event.action, JSON.stringify(event.from), JSON.stringify(event.to),
        JSON.stringify(event.tasks), JSON.stringify(event.scores), event.decision, event.reason,
      ) as { lastInsertRowid?: number | bigint };
      return { ...event, id: Number(result.lastInsertRowid) };
    });
  }

  async aliasHistory(name: string): Promise<AliasEvent[]> {
    return this.#run(() =>
      (this.#database.prepare("SELECT * FROM alias_history WHERE alias = ? ORDER BY id").all(name) as AliasEventRow[]).map((row) => ({
        id: row.id,
        alias: row.alias,
        at: row.at,
        action: row.action,
        from: JSON.parse(row.from_targets) as AliasEvent["from"],
        to: JSON.parse(row.to_targets) as AliasEvent["to"],
        tasks: JSON.parse(row.tasks) as string[],
        scores: JSON.parse(row.scores) as AliasEvent["scores"],
        decision: row.decision,
        reason: row.reason,
      })),
    );
  }

  async transaction<T>(fn: (registry: Registry) => Promise<T>): Promise<T> {
    this.#assertUsable();
    if (this.#inTransaction) return fn(this);
    while (this.#gate.busy !== undefined) await this.#gate.busy;
    let release!: () => void;
    this.#gate.busy = new Promise<void>((resolve) => (release = resolve));
    const view = new SqliteRegistry(this.#database, this.#statements, this.#gate, true);
    try {
      // IMMEDIATE takes the write lock now, so other processes' writers wait rather than fail later.
      this.#database.exec("BEGIN IMMEDIATE");
      const result = await fn(view);
      this.#database.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.#database.inTransaction) this.#database.exec("ROLLBACK");
      throw error;
    } finally {
      view.#ended = true;
      this.#gate.busy = undefined;
      release();
    }
  }

  async close(): Promise<void> {
    if (this.#inTransaction) throw new InvalidRequestError("Close the registry outside its transactions");
    while (this.#gate.busy !== undefined) await this.#gate.busy;
    if (!this.#ended) this.#database.close();
    this.#ended = true;
  }

  /** Foreign keys would refuse an unknown digest too, but with an error that names nothing. */
  #assertModel(digest: Digest): void {
    if (this.#statements.modelExists.get(digest) === undefined) throw new ModelNotFoundError(digest);
  }

  #aliasesTargeting(digest: Digest): string[] {
    return (this.#statements.aliasesTargeting.all(digest) as { alias: string }[]).map((row) => row.alias);
  }

  async #run<T>(operation: () => T): Promise<T> {
    this.#assertUsable();
    if (!this.#inTransaction) while (this.#gate.busy !== undefined) await this.#gate.busy;
    this.#assertUsable();
    return operation();
  }

  #assertUsable(): void {
    if (this.#ended) throw new InvalidRequestError(this.#inTransaction ? "The transaction has ended; use the outer registry" : "The registry is closed");
  }
}

function applyMigrations(database: Database, migrations: readonly SqliteMigration[], path: string): void {
  database.exec("BEGIN IMMEDIATE");
  try {
    database.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT");
    const current = (database.prepare("SELECT max(version) AS version FROM schema_migrations").get() as { version: number | null }).version ?? 0;
    const latest = migrations.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new ConfigError(`The registry ${path} has schema version ${current}, newer than this Grove knows (${latest}); upgrade Grove`);
    }
    const record = database.prepare("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)");
    for (const [index, migration] of migrations.entries()) {
      if (migration.version !== index + 1) throw new ConfigError(`Registry migrations must be numbered 1, 2, 3, …; found ${migration.version} at position ${index + 1}`);
      if (migration.version <= current) continue;
      database.exec(migration.sql);
      record.run(migration.version, migration.description, new Date().toISOString());
    }
    database.exec("COMMIT");
  } catch (error) {
    if (database.inTransaction) database.exec("ROLLBACK");
    throw error;
  }
}

function prepareStatements(database: Database) {
  const prepare = (sql: string) => database.prepare(sql);
  return {
    insertModel: prepare(
      `INSERT INTO models (digest, size, architecture, parameter_count, quantization, context_length, vocabulary_size,
         chat_template, license, card, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`,
    ),
    getModel: prepare("SELECT * FROM models WHERE digest = ?"),
    modelExists: prepare("SELECT 1 FROM models WHERE digest = ?"),
    findByPrefix: prepare("SELECT * FROM models WHERE digest >= ? AND digest < ? ORDER BY digest LIMIT ?"),
    listModels: prepare("SELECT * FROM models ORDER BY created_at, digest"),
    deleteModel: prepare("DELETE FROM models WHERE digest = ?"),
    deleteNamesOf: prepare("DELETE FROM names WHERE digest = ?"),
    deleteEdgesOf: prepare("DELETE FROM edges WHERE child = ? OR parent = ?"),
    getName: prepare("SELECT digest FROM names WHERE name = ?"),
    upsertName: prepare("INSERT INTO names (name, digest, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at"),
    deleteName: prepare("DELETE FROM names WHERE name = ?"),
    namesOf: prepare("SELECT name FROM names WHERE digest = ? ORDER BY name"),
    listNames: prepare("SELECT name, digest, updated_at FROM names ORDER BY name"),
    // Is the first argument's ancestry (itself included) holding the second?
    isAncestor: prepare(
      `WITH RECURSIVE ancestors (digest) AS (SELECT ? UNION SELECT edges.parent FROM edges JOIN ancestors ON edges.child = ancestors.digest)
       SELECT 1 FROM ancestors WHERE digest = ? LIMIT 1`,
    ),
    upsertEdge: prepare(
      `INSERT INTO edges (child, parent, relation, recipe, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (child, parent) DO UPDATE SET relation = excluded.relation, recipe = excluded.recipe`,
    ),
    parentsOf: prepare("SELECT child, parent, relation, recipe FROM edges WHERE child = ? ORDER BY created_at, parent"),
    childrenOf: prepare("SELECT child, parent, relation, recipe FROM edges WHERE parent = ? ORDER BY created_at, child"),
    listEdges: prepare("SELECT child, parent, relation, recipe FROM edges ORDER BY created_at, child, parent"),
    upsertAlias: prepare("INSERT INTO aliases (name, updated_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at"),
    deleteAliasTargets: prepare("DELETE FROM alias_targets WHERE alias = ?"),
    insertAliasTarget: prepare("INSERT INTO alias_targets (alias, digest, weight) VALUES (?, ?, ?)"),
    getAlias: prepare("SELECT name FROM aliases WHERE name = ?"),
    aliasTargets: prepare("SELECT digest, weight FROM alias_targets WHERE alias = ? ORDER BY digest"),
    listAliasTargets: prepare(
      "SELECT aliases.name AS name, digest, weight FROM aliases LEFT JOIN alias_targets ON alias_targets.alias = aliases.name ORDER BY aliases.name, digest",
    ),
    deleteAlias: prepare("DELETE FROM aliases WHERE name = ?"),
    aliasesTargeting: prepare("SELECT alias FROM alias_targets WHERE digest = ? ORDER BY alias"),
  };
}

function toEdge(row: EdgeRow): LineageEdge {
  return { child: row.child, parent: row.parent, relation: row.relation, recipe: row.recipe === null ? null : (JSON.parse(row.recipe) as Recipe) };
}
