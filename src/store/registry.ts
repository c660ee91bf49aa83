import type { Digest } from "../core/digest.js";
import type { Relation, ModelRecord, LineageEdge } from "../core/wire.js";

/** The JSON shapes the admin API answers with are declared once, in core/wire.ts (the web app reads them too). */
export type { Relation, Recipe, ModelRecord, LineageEdge } from "../core/wire.js";

/** Every relation, for validation and help text. */
export const RELATIONS: readonly Relation[] = ["finetune", "adapter", "quantized", "merge", "config"];

/** A name `family:tag` and the model it points at. */
export interface NameRecord {
  /** Canonical `family:tag`. */
  name: string;
  digest: Digest;
  /** When the name was last pointed, ISO 8601. */
  updatedAt: string;
}

/** One model an alias routes to, with its share of the traffic. */
export interface AliasTarget {
  digest: Digest;
  /** Relative weight, > 0; shares are weight / sum of weights. */
  weight: number;
}

/** A served name that routes to one or more models (canary rollout). */
export interface AliasRecord {
  name: string;
  targets: AliasTarget[];
}

/** What changed an alias: `grove alias set|rm`, `grove migrate`, `grove rollback`. */
export type AliasAction = "set" | "remove" | "migrate" | "rollback";

/** One task's scores in a migration decision. */
export interface AliasScore {
  task: string;
  /** The primary metric compared (`acc`, `exactMatch`, `perplexity`, …). */
  metric: string;
  higherIsBetter: boolean;
  /** The current target's score, or null when it has none (flagged). */
  current: number | null;
  /** The candidate's score, or null when it has none (flagged). */
  candidate: number | null;
  /** How much worse the candidate is, relative to the current score (negative: better). */
  regression: number | null;
  /** Standard error of the difference (candidate − current) on the scale it was tested on; null or absent when unknown. */
  standardError?: number | null;
  /** Per-chunk or per-item differences were used (the same text or task, measured alike). */
  paired?: boolean;
  /** Whether the difference is beyond noise (|z| > 1.96); null or absent when it cannot be judged. */
  significant?: boolean | null;
  /**
   * `regressed` (worse beyond the limit and beyond noise, or noise unknown), `improved` (better
   * beyond noise), `within noise` (no difference that can be called one), `ok` (worse within the
   * limit, or better with the noise unknown), `no score`. Absent in entries of older Groves.
   */
  verdict?: "regressed" | "improved" | "within noise" | "ok" | "no score";
}

/** One entry of an alias's history. */
export interface AliasEvent {
  /** Increasing with time. */
  id: number;
  alias: string;
  /** ISO 8601. */
  at: string;
  action: AliasAction;
  /** Targets before (empty: the alias did not exist). */
  from: AliasTarget[];
  /** Targets after; for a refused migration, the targets it proposed. Empty: removed. */
  to: AliasTarget[];
  /** Tasks a migration evaluated. */
  tasks: string[];
  scores: AliasScore[];
  /** `refused`: the alias was left as it was. */
  decision: "applied" | "refused";
  reason: string;
}

/**
 * The registry of models, names, lineage and aliases. Asynchronous so that a server database
 * (PostgreSQL) can back it; {@link SqliteRegistry} is the embedded one. Digests passed in are
 * already validated; names are canonical `family:tag` strings.
 */
export interface Registry {
  /** Adds a model; false (and the stored record unchanged) when the digest is already there. */
  addModel(record: ModelRecord): Promise<boolean>;
  getModel(digest: Digest): Promise<ModelRecord | undefined>;
  /**
   * The one model whose digest starts with `sha256:<hexPrefix>`.
   * @throws ModelNotFoundError when none does
   * @throws AmbiguousModelError listing the candidates when several do
   */
  findByPrefix(hexPrefix: string): Promise<ModelRecord>;
  /** Every model, oldest first. */
  listModels(): Promise<ModelRecord[]>;
  /**
   * Removes a model with its names and every edge that touches it (as child or parent).
   * @throws ConflictError when an alias routes to it
   * @returns false when it was not there
   */
  removeModel(digest: Digest): Promise<boolean>;

  /** Points a name at a model; returns the digest it pointed at before, if any. */
  setName(name: string, digest: Digest): Promise<Digest | undefined>;
  /** False when the name did not exist. */
  removeName(name: string): Promise<boolean>;
  getNameTarget(name: string): Promise<Digest | undefined>;
  /** Names pointing at a model, sorted. */
  namesOf(digest: Digest): Promise<string[]>;
  /** Every name, sorted. */
  listNames(): Promise<NameRecord[]>;

  /**
   * Records an edge; an edge between the same two models is replaced.
   * @throws InvalidRequestError when it would make a cycle (a model its own ancestor)
   */
  addEdge(edge: LineageEdge): Promise<void>;
  /** {@link addEdge} for several edges, all or none. */
  addEdges(edges: readonly LineageEdge[]): Promise<void>;
  /** Edges where `digest` is the child. */
  parentsOf(digest: Digest): Promise<LineageEdge[]>;
  /** Edges where `digest` is the parent. */
  childrenOf(digest: Digest): Promise<LineageEdge[]>;
  /** Every edge. */
  listEdges(): Promise<LineageEdge[]>;

  /** Creates or replaces an alias; targets must be models in the registry. */
  setAlias(alias: AliasRecord): Promise<void>;
  getAlias(name: string): Promise<AliasRecord | undefined>;
  /** Every alias, sorted by name. */
  listAliases(): Promise<AliasRecord[]>;
  /** False when the alias did not exist. */
  removeAlias(name: string): Promise<boolean>;
  /** Names of the aliases that route to a model. */
  aliasesTargeting(digest: Digest): Promise<string[]>;
  /** Appends to an alias's history (kept when the alias is removed); returns the entry with its id. */
  recordAliasEvent(event: Omit<AliasEvent, "id">): Promise<AliasEvent>;
  /** An alias's history, oldest first. */
  aliasHistory(name: string): Promise<AliasEvent[]>;

  /**
   * Runs `fn` in one transaction holding the registry's write lock (other writers, in this
   * process or another, wait): committed when it resolves, rolled back when it throws. Use the
   * registry `fn` receives, not the outer one, inside it.
   */
  transaction<T>(fn: (registry: Registry) => Promise<T>): Promise<T>;
  /** Closes the connection. */
  close(): Promise<void>;
}
