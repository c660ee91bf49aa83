/** One schema change of the SQLite registry. */
export interface SqliteMigration {
  /** 1, 2, 3, … in order; recorded in `schema_migrations` once applied. */
  version: number;
  /** What it changes, for the record. */
  description: string;
  /** The statements. */
  sql: string;
}

/**
 * The SQLite registry's schema, as numbered migrations. Append only: an applied migration is
 * never edited; a change is a new entry with the next version.
 */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = Object.freeze([
  {
    version: 1,
    description: "models, names, lineage edges, aliases",
    sql: `
      CREATE TABLE models (
        digest TEXT PRIMARY KEY CHECK (length(digest) = 71 AND substr(digest, 1, 7) = 'sha256:'),
        size INTEGER NOT NULL CHECK (size >= 0),
        architecture TEXT NOT NULL,
        parameter_count INTEGER NOT NULL CHECK (parameter_count >= 0),
        quantization TEXT NOT NULL,
        context_length INTEGER NOT NULL,
        vocabulary_size INTEGER NOT NULL,
        chat_template TEXT,
        license TEXT,
        card TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(card)),
        created_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE names (
        name TEXT PRIMARY KEY,
        digest TEXT NOT NULL REFERENCES models (digest),
        updated_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX names_by_digest ON names (digest);

      CREATE TABLE edges (
        child TEXT NOT NULL REFERENCES models (digest),
        parent TEXT NOT NULL REFERENCES models (digest),
        relation TEXT NOT NULL CHECK (relation IN ('finetune', 'adapter', 'quantized', 'merge')),
        recipe TEXT CHECK (recipe IS NULL OR json_valid(recipe)),
        created_at TEXT NOT NULL,
        PRIMARY KEY (child, parent),
        CHECK (child <> parent)
      ) STRICT;
      CREATE INDEX edges_by_parent ON edges (parent);

      CREATE TABLE aliases (
        name TEXT PRIMARY KEY,
        updated_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE alias_targets (
        alias TEXT NOT NULL REFERENCES aliases (name) ON DELETE CASCADE,
        digest TEXT NOT NULL REFERENCES models (digest),
        weight REAL NOT NULL CHECK (weight > 0),
        PRIMARY KEY (alias, digest)
      ) STRICT;
      CREATE INDEX alias_targets_by_digest ON alias_targets (digest);
    `,
  },
  {
    version: 2,
    description: "alias history: every set, removal, migration decision and rollback",
    sql: `
      CREATE TABLE alias_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alias TEXT NOT NULL,
        at TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('set', 'remove', 'migrate', 'rollback')),
        from_targets TEXT NOT NULL CHECK (json_valid(from_targets)),
        to_targets TEXT NOT NULL CHECK (json_valid(to_targets)),
        tasks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tasks)),
        scores TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scores)),
        decision TEXT NOT NULL CHECK (decision IN ('applied', 'refused')),
        reason TEXT NOT NULL
      ) STRICT;
      CREATE INDEX alias_history_by_alias ON alias_history (alias, id);
    `,
  },
  {
    version: 3,
    description: "relation 'config': a fork that keeps its parent's weights with new defaults (grove create -f Modelfile)",
    // SQLite cannot change a CHECK in place: the edges table is rebuilt (nothing references it).
    sql: `
      CREATE TABLE edges_new (
        child TEXT NOT NULL REFERENCES models (digest),
        parent TEXT NOT NULL REFERENCES models (digest),
        relation TEXT NOT NULL CHECK (relation IN ('finetune', 'adapter', 'quantized', 'merge', 'config')),
        recipe TEXT CHECK (recipe IS NULL OR json_valid(recipe)),
        created_at TEXT NOT NULL,
        PRIMARY KEY (child, parent),
        CHECK (child <> parent)
      ) STRICT;
      INSERT INTO edges_new (child, parent, relation, recipe, created_at) SELECT child, parent, relation, recipe, created_at FROM edges;
      DROP TABLE edges;
      ALTER TABLE edges_new RENAME TO edges;
      CREATE INDEX edges_by_parent ON edges (parent);
    `,
  },
]);
