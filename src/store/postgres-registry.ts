import type { Digest } from "../core/digest.js";
import { ConflictError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import {
  migratePostgres,
  openPostgresDatabase,
  type OpenPostgresOptions,
  type PostgresDatabase,
  type PostgresMigration,
  type PostgresQueryable,
} from "./postgres-database.js";
import type { AliasEvent, AliasRecord, LineageEdge, ModelRecord, NameRecord, Recipe, Registry, Relation } from "./registry.js";
import { checkAlias, type ModelRow, onlyMatch, PREFIX_ROWS, toModelRecord } from "./registry-rows.js";

/**
 * The registry's PostgreSQL schema, kept under the component `registry` in `grove_schema` (the
 * gateway's tables live beside it). Append only, like SQLITE_MIGRATIONS. Text keys use the "C"
 * collation so that names and digests sort bytewise, as in SQLite, and a digest prefix is a range.
 * Timestamps stay ISO 8601 text, exactly as written, like SQLite's.
 */
export const POSTGRES_REGISTRY_MIGRATIONS: readonly PostgresMigration[] = Object.freeze([
  {
    version: 1,
    description: "models, names, lineage edges, aliases, alias history",
    sql: `
      CREATE TABLE models (
        digest text COLLATE "C" PRIMARY KEY CHECK (length(digest) = 71 AND substr(digest, 1, 7) = 'sha256:'),
        size bigint NOT NULL CHECK (size >= 0),
        architecture text NOT NULL,
        parameter_count bigint NOT NULL CHECK (parameter_count >= 0),
        quantization text NOT NULL,
        context_length integer NOT NULL,
        vocabulary_size integer NOT NULL,
        chat_template text,
        license text,
        card jsonb NOT NULL DEFAULT '{}',
        created_at text COLLATE "C" NOT NULL
      );

      CREATE TABLE names (
        name text COLLATE "C" PRIMARY KEY,
        digest text COLLATE "C" NOT NULL REFERENCES models (digest),
        updated_at text NOT NULL
      );
      CREATE INDEX names_by_digest ON names (digest);

      CREATE TABLE edges (
        child text COLLATE "C" NOT NULL REFERENCES models (digest),
        parent text COLLATE "C" NOT NULL REFERENCES models (digest),
        relation text NOT NULL CHECK (relation IN ('finetune', 'adapter', 'quantized', 'merge')),
        recipe jsonb,
        created_at text COLLATE "C" NOT NULL,
        PRIMARY KEY (child, parent),
        CHECK (child <> parent)
      );
      CREATE INDEX edges_by_parent ON edges (parent);

      CREATE TABLE aliases (
        name text COLLATE "C" PRIMARY KEY,
        updated_at text NOT NULL
      );

      CREATE TABLE alias_targets (
        alias text COLLATE "C" NOT NULL REFERENCES aliases (name) ON DELETE CASCADE,
        digest text COLLATE "C" NOT NULL REFERENCES models (digest),
        weight double precision NOT NULL CHECK (weight > 0),
        PRIMARY KEY (alias, digest)
      );
      CREATE INDEX alias_targets_by_digest ON alias_targets (digest);

      CREATE TABLE alias_history (
        id bigserial PRIMARY KEY,
        alias text COLLATE "C" NOT NULL,
        at text NOT NULL,
        action text NOT NULL CHECK (action IN ('set', 'remove', 'migrate', 'rollback')),
        from_targets jsonb NOT NULL,
        to_targets jsonb NOT NULL,
        tasks jsonb NOT NULL DEFAULT '[]',
        scores jsonb NOT NULL DEFAULT '[]',
        decision text NOT NULL CHECK (decision IN ('applied', 'refused')),
        reason text NOT NULL
      );
      CREATE INDEX alias_history_by_alias ON alias_history (alias, id);
    `,
  },
  {
    version: 2,
    description: "relation 'config': a fork that keeps its parent's weights with new defaults (grove create -f Modelfile)",
    sql: `
      ALTER TABLE edges DROP CONSTRAINT edges_relation_check;
      ALTER TABLE edges ADD CONSTRAINT edges_relation_check CHECK (relation IN ('finetune', 'adapter', 'quantized', 'merge', 'config'));
    `,
  },
]);

/** The one lock every registry writer takes, on every replica (SQLite's single writer, shared). */
const WRITE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('grove-registry'))";

/** How many candidates an ambiguous prefix lists. */

interface EdgeRow {
  child: Digest;
  parent: Digest;
  relation: Relation;
  recipe: Recipe | null;
}

interface AliasEventRow {
  id: number;
  alias: string;
  at: string;
  action: AliasEvent["action"];
  from_targets: AliasEvent["from"];
  to_targets: AliasEvent["to"];
  tasks: string[];
  scores: AliasEvent["scores"];
  decision: AliasEvent["decision"];
  reason: string;
}

const EDGE_COLUMNS = "child, parent, relation, recipe";

/**
 * The shared {@link Registry}: the same tables and semantics as {@link SqliteRegistry}, in one
 * PostgreSQL database that several Grove replicas use at once. Reads run on the pool and see
 * committed rows. Every write, and every {@link transaction}, runs in one transaction on one
 * connection holding a transaction-scoped advisory lock: writers on every replica take turns,
 * as SQLite's writers do on its file, so checks such as the cycle test in {@link addEdges} or
 * the alias test in {@link removeModel} cannot race another replica's write.
 */
export class PostgresRegistry implements Registry {
  readonly #database: PostgresDatabase;
  /** The transaction's connection, for the view handed to a transaction's callback. */
  readonly #connection: PostgresQueryable | undefined;
  #ended = false;

  private constructor(database: PostgresDatabase, connection: PostgresQueryable | undefined) {
    this.#database = database;
    this.#connection = connection;
  }

  /**
   * Connects to `url` and creates or migrates the registry's schema (under the advisory lock
   * that {@link migratePostgres} takes, so replicas starting together migrate once).
   * @throws ConfigError for a malformed URL, an unreachable database or a newer schema
   */
  static async open(url: string, options: OpenPostgresOptions & { migrations?: readonly PostgresMigration[] } = {}): Promise<PostgresRegistry> {
    const database = await openPostgresDatabase(url, options);
    try {
      await migratePostgres(database, "registry", options.migrations ?? POSTGRES_REGISTRY_MIGRATIONS);
      return new PostgresRegistry(database, undefined);
    } catch (error) {
      await database.close();
      throw error;
    }
  }

  /** The URL with its password masked, for messages. */
  get displayUrl(): string {
    return this.#database.displayUrl;
  }

  async addModel(record: ModelRecord): Promise<boolean> {
    const result = await this.#query(
      `INSERT INTO models (digest, size, architecture, parameter_count, quantization, context_length, vocabulary_size,
         chat_template, license, card, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (digest) DO NOTHING`,
      [
        record.digest, record.size, record.architecture, record.parameterCount, record.quantization, record.contextLength,
        record.vocabularySize, record.chatTemplate ?? null, record.license ?? null, JSON.stringify(record.card), record.createdAt,
      ],
    );
    return result.rowCount > 0;
  }

  async getModel(digest: Digest): Promise<ModelRecord | undefined> {
    const { rows } = await this.#query<ModelRow>("SELECT * FROM models WHERE digest = $1", [digest]);
    return rows[0] === undefined ? undefined : toModelRecord(rows[0]);
  }

  async findByPrefix(hexPrefix: string): Promise<ModelRecord> {
    if (!/^[0-9a-f]{1,64}$/.test(hexPrefix)) throw new InvalidRequestError("A digest prefix holds hex digits only", { param: "model" });
    const low = `sha256:${hexPrefix}`;
    // '~' sorts after every hex digit (collation "C"), so [low, low~) is exactly the digests starting with low.
    const { rows } = await this.#query<ModelRow>("SELECT * FROM models WHERE digest >= $1 AND digest < $2 ORDER BY digest LIMIT $3", [low, `${low}~`, PREFIX_ROWS]);
    return toModelRecord(onlyMatch(rows, hexPrefix));
  }

  async listModels(): Promise<ModelRecord[]> {
    return (await this.#query<ModelRow>("SELECT * FROM models ORDER BY created_at, digest")).rows.map(toModelRecord);
  }

  async removeModel(digest: Digest): Promise<boolean> {
    return this.#write(async (registry) => {
      const aliases = await registry.aliasesTargeting(digest);
      if (aliases.length > 0) {
        throw new ConflictError(`The alias${aliases.length > 1 ? "es" : ""} ${aliases.join(", ")} route${aliases.length > 1 ? "" : "s"} to ${digest}; change ${aliases.length > 1 ? "them" : "it"} first`);
      }
      await registry.#query("DELETE FROM names WHERE digest = $1", [digest]);
      await registry.#query("DELETE FROM edges WHERE child = $1 OR parent = $1", [digest]);
      return (await registry.#query("DELETE FROM models WHERE digest = $1", [digest])).rowCount > 0;
    });
  }

  async setName(name: string, digest: Digest): Promise<Digest | undefined> {
    return this.#write(async (registry) => {
      await registry.#assertModel(digest);
      const previous = await registry.getNameTarget(name);
      await registry.#query(
        "INSERT INTO names (name, digest, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
        [name, digest, new Date().toISOString()],
      );
      return previous;
    });
  }

  async removeName(name: string): Promise<boolean> {
    return (await this.#query("DELETE FROM names WHERE name = $1", [name])).rowCount > 0;
  }

  async getNameTarget(name: string): Promise<Digest | undefined> {
    return (await this.#query<{ digest: Digest }>("SELECT digest FROM names WHERE name = $1", [name])).rows[0]?.digest;
  }

  async namesOf(digest: Digest): Promise<string[]> {
    return (await this.#query<{ name: string }>("SELECT name FROM names WHERE digest = $1 ORDER BY name", [digest])).rows.map((row) => row.name);
  }

  async listNames(): Promise<NameRecord[]> {
    const { rows } = await this.#query<{ name: string; digest: Digest; updated_at: string }>("SELECT name, digest, updated_at FROM names ORDER BY name");
    return rows.map((row) => ({ name: row.name, digest: row.digest, updatedAt: row.updated_at }));
  }

  async addEdge(edge: LineageEdge): Promise<void> {
    return this.addEdges([edge]);
  }

  async addEdges(edges: readonly LineageEdge[]): Promise<void> {
    if (edges.length === 0) return;
    return this.#write(async (registry) => {
      const now = new Date().toISOString();
      for (const edge of edges) {
        await registry.#assertModel(edge.child);
        await registry.#assertModel(edge.parent);
        if (edge.child === edge.parent) throw new InvalidRequestError(`A model cannot be its own parent (${edge.child})`, { param: "base" });
        // Is the parent's ancestry (itself included) holding the child?
        const cycle = await registry.#query(
          `WITH RECURSIVE ancestors (digest) AS (SELECT $1::text COLLATE "C" UNION SELECT edges.parent FROM edges JOIN ancestors ON edges.child = ancestors.digest)
           SELECT 1 FROM ancestors WHERE digest = $2 LIMIT 1`,
          [edge.parent, edge.child],
        );
        if (cycle.rowCount > 0) throw new InvalidRequestError(`${edge.child} is already an ancestor of ${edge.parent}: the edge would make a cycle`, { param: "base" });
        await registry.#query(
          `INSERT INTO edges (child, parent, relation, recipe, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (child, parent) DO UPDATE SET relation = excluded.relation, recipe = excluded.recipe`,
          [edge.child, edge.parent, edge.relation, edge.recipe === null ? null : JSON.stringify(edge.recipe), now],
        );
      }
    });
  }

  async parentsOf(digest: Digest): Promise<LineageEdge[]> {
    return (await this.#query<EdgeRow>(`SELECT ${EDGE_COLUMNS} FROM edges WHERE child = $1 ORDER BY created_at, parent`, [digest])).rows.map(toEdge);
  }

  async childrenOf(digest: Digest): Promise<LineageEdge[]> {
    return (await this.#query<EdgeRow>(`SELECT ${EDGE_COLUMNS} FROM edges WHERE parent = $1 ORDER BY created_at, child`, [digest])).rows.map(toEdge);
  }

  async listEdges(): Promise<LineageEdge[]> {
    return (await this.#query<EdgeRow>(`SELECT ${EDGE_COLUMNS} FROM edges ORDER BY created_at, child, parent`)).rows.map(toEdge);
  }

  async setAlias(alias: AliasRecord): Promise<void> {
    checkAlias(alias);
    return this.#write(async (registry) => {
      for (const target of alias.targets) await registry.#assertModel(target.digest);
      await registry.#query(
        "INSERT INTO aliases (name, updated_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
        [alias.name, new Date().toISOString()],
      );
      await registry.#query("DELETE FROM alias_targets WHERE alias = $1", [alias.name]);
      for (const target of alias.targets) {
        await registry.#query("INSERT INTO alias_targets (alias, digest, weight) VALUES ($1, $2, $3)", [alias.name, target.digest, target.weight]);
      }
    });
  }

  async getAlias(name: string): Promise<AliasRecord | undefined> {
    const { rows } = await this.#query<{ name: string; digest: Digest | null; weight: number | null }>(
      "SELECT aliases.name AS name, digest, weight FROM aliases LEFT JOIN alias_targets ON alias_targets.alias = aliases.name WHERE aliases.name = $1 ORDER BY digest",
      [name],
    );
    if (rows.length === 0) return undefined;
    return { name, targets: rows.flatMap((row) => (row.digest === null || row.weight === null ? [] : [{ digest: row.digest, weight: row.weight }])) };
  }

  async listAliases(): Promise<AliasRecord[]> {
    const aliases = new Map<string, AliasRecord>();
    const { rows } = await this.#query<{ name: string; digest: Digest | null; weight: number | null }>(
      "SELECT aliases.name AS name, digest, weight FROM aliases LEFT JOIN alias_targets ON alias_targets.alias = aliases.name ORDER BY aliases.name, digest",
    );
    for (const row of rows) {
      const alias = aliases.get(row.name) ?? { name: row.name, targets: [] };
      if (row.digest !== null && row.weight !== null) alias.targets.push({ digest: row.digest, weight: row.weight });
      aliases.set(row.name, alias);
    }
    return [...aliases.values()];
  }

  async removeAlias(name: string): Promise<boolean> {
    return (await this.#query("DELETE FROM aliases WHERE name = $1", [name])).rowCount > 0;
  }

  async aliasesTargeting(digest: Digest): Promise<string[]> {
    return (await this.#query<{ alias: string }>("SELECT alias FROM alias_targets WHERE digest = $1 ORDER BY alias", [digest])).rows.map((row) => row.alias);
  }

  async recordAliasEvent(event: Omit<AliasEvent, "id">): Promise<AliasEvent> {
    const { rows } = await this.#query<{ id: number }>(
      `INSERT INTO alias_history (alias, at, action, from_targets, to_targets, tasks, scores, decision, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
      [
        event.alias, event.at, event.action, JSON.stringify(event.from), JSON.stringify(event.to),
        JSON.stringify(event.tasks), JSON.stringify(event.scores), event.decision, event.reason,
      ],
    );
    return { ...event, id: Number(rows[0]!.id) };
  }

  async aliasHistory(name: string): Promise<AliasEvent[]> {
    const { rows } = await this.#query<AliasEventRow>("SELECT * FROM alias_history WHERE alias = $1 ORDER BY id", [name]);
    return rows.map((row) => ({
      id: Number(row.id),
      alias: row.alias,
      at: row.at,
      action: row.action,
      from: row.from_targets,
      to: row.to_targets,
      tasks: row.tasks,
      scores: row.scores,
      decision: row.decision,
      reason: row.reason,
    }));
  }

  /**
   * Runs `fn` in one PostgreSQL transaction on one connection, holding the registry's write lock
   * (writers on every replica wait; readers elsewhere see the rows once it commits).
   */
  async transaction<T>(fn: (registry: Registry) => Promise<T>): Promise<T> {
    this.#assertUsable();
    if (this.#connection !== undefined) return fn(this);
    return this.#database.transaction(async (connection) => {
      await connection.query(WRITE_LOCK);
      const view = new PostgresRegistry(this.#database, connection);
      try {
        return await fn(view);
      } finally {
        view.#ended = true;
      }
    });
  }

  async close(): Promise<void> {
    if (this.#connection !== undefined) throw new InvalidRequestError("Close the registry outside its transactions");
    if (!this.#ended) await this.#database.close();
    this.#ended = true;
  }

  /** A write: inside the current transaction, or in one of its own under the write lock. */
  async #write<T>(operation: (registry: PostgresRegistry) => Promise<T>): Promise<T> {
    this.#assertUsable();
    if (this.#connection !== undefined) return operation(this);
    return this.transaction((registry) => operation(registry as PostgresRegistry));
  }

  async #query<Row = Record<string, unknown>>(sql: string, parameters?: readonly unknown[]) {
    this.#assertUsable();
    return (this.#connection ?? this.#database).query<Row>(sql, parameters);
  }

  /** The foreign key would refuse an unknown digest too, but with an error that names nothing. */
  async #assertModel(digest: Digest): Promise<void> {
    if ((await this.#query("SELECT 1 FROM models WHERE digest = $1", [digest])).rowCount === 0) throw new ModelNotFoundError(digest);
  }

  #assertUsable(): void {
    if (this.#ended) throw new InvalidRequestError(this.#connection !== undefined ? "The transaction has ended; use the outer registry" : "The registry is closed");
  }
}

function toEdge(row: EdgeRow): LineageEdge {
  return { child: row.child, parent: row.parent, relation: row.relation, recipe: row.recipe };
}
