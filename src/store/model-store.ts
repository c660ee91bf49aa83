import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Digest } from "../core/digest.js";
import { ConflictError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import { GgufMetadataReader } from "../gguf/gguf-metadata-reader.js";
import { validateGgufFile, type GgufSummary } from "../gguf/gguf-validator.js";
import { adapterRecipe, checkAdapter, checkAdapterImport, isAdapterFile } from "./adapter-check.js";
import { BlobStore } from "./blob-store.js";
import { checkImportOptions, type ImportOptions } from "./import-options.js";
import { nameForImport } from "./model-names.js";
import { formatModelName, parseModelName, quoteUntrusted } from "./model-ref.js";
import { ModelResolver } from "./model-resolver.js";
import { PostgresRegistry } from "./postgres-registry.js";
import type { AliasRecord, LineageEdge, ModelRecord, NameRecord, Registry, Relation } from "./registry.js";
import { SqliteRegistry } from "./sqlite-registry.js";

export type { ImportOptions } from "./import-options.js";

/** What {@link ModelStore.importFile} did. */
export interface ImportResult {
  model: ModelRecord;
  /** The canonical name pointed at it: the one given, else one the store chose (`nameForImport`). */
  name?: string;
  /** Edges to its parents recorded by this import. */
  parents: LineageEdge[];
  /** False when the registry already had the model (the stored record is returned). */
  created: boolean;
  /** False when an identical blob was already stored. */
  blobCreated: boolean;
}

/**
 * A model with its names, as `grove ls` shows it. `local` is false when the registry is shared
 * (`--database`) and the model's file is on another replica only: it is listed but not served here.
 */
export type ModelListing = ModelRecord & { names: string[]; local: boolean };

/** Options of {@link ModelStore.open}. */
export interface ModelStoreOptions {
  /**
   * A PostgreSQL URL (`--database`, GROVE_DATABASE_URL): the registry is shared by every replica
   * that names it, while blobs stay in each replica's `<home>/blobs`. Empty or absent:
   * `<home>/registry.db`. @default ""
   */
  database?: string;
  /** Called when an idle PostgreSQL connection fails (the pool replaces it). */
  onDatabaseError?: (error: Error) => void;
}

/** Everything about one model, as `grove show` shows it. */
export interface ModelDetails {
  model: ModelRecord;
  names: string[];
  /** The blob's path. */
  path: string;
  /** Edges to its parents, with relation and recipe. */
  parents: LineageEdge[];
  /** Edges to its direct forks. */
  children: LineageEdge[];
}

/** One node of a fork tree. A merge appears under each of its parents. */
export interface TreeNode {
  digest: Digest;
  names: string[];
  /** How it derives from the node above; `null` at a root. */
  relation: Relation | null;
  size: number;
  quantization: string;
  children: TreeNode[];
}

/** What {@link ModelStore.remove} dropped. */
export interface RemoveResult {
  digest: Digest;
  names: string[];
  /** Edges dropped: to its parents, and to its forks when forced. */
  edges: LineageEdge[];
}

/** What {@link ModelStore.gc} freed. */
export interface GcResult {
  removedBlobs: Digest[];
  freedBytes: number;
  removedTempFiles: number;
}

/** What {@link ModelStore.verify} found. */
export interface VerifyResult {
  /** Blobs re-hashed. */
  checked: number;
  /** Blobs whose content differs from their name. */
  mismatched: Digest[];
  /** Registry models without a blob. */
  missing: Digest[];
  /** Blobs no model references (freed by `gc`). */
  unreferenced: Digest[];
}

const CARD_KEYS = ["name", "author", "organization", "description", "url", "doi", "version", "basename", "finetune", "size_label", "license.name", "license.link", "quantized_by", "repo_url", "source.url", "source.repo_url"];
const MAX_CARD_VALUE_LENGTH = 4096;

/**
 * Grove's local hub of models: content-addressed blobs ({@link BlobStore}) plus a {@link Registry}
 * of models, names and lineage. Every file is validated as GGUF before it enters; the blob is
 * durable before its registry row is written, so every row points at a complete, verified blob.
 * Removing a model drops only rows; {@link gc} frees the blobs.
 */
export class ModelStore {
  /** The store's home directory (`GROVE_HOME`). */
  readonly home: string;
  readonly blobs: BlobStore;
  /**
   * The registry, for `store/` only: every other folder asks the store (or its {@link resolver}),
   * so the rules the store keeps (names vs aliases, one transaction per change) stay in one place.
   */
  readonly registry: Registry;
  /** The one resolution of a model name: alias → weighted target → model → weights, adapter base and scale. */
  readonly resolver: ModelResolver;

  constructor(home: string, blobs: BlobStore, registry: Registry) {
    this.home = home;
    this.blobs = blobs;
    this.registry = registry;
    this.resolver = new ModelResolver(registry, blobs);
  }

  /**
   * Opens the store at `home`, creating its directories and `<home>/registry.db` if needed; with
   * `database`, the registry is the shared PostgreSQL one instead (blobs stay under `home`).
   * @throws ConfigError for a bad database URL, an unreachable database or a newer schema
   */
  static async open(home: string, options: ModelStoreOptions = {}): Promise<ModelStore> {
    const root = resolve(home);
    const blobs = new BlobStore(root);
    await mkdir(blobs.blobsDirectory, { recursive: true });
    await mkdir(blobs.tempDirectory, { recursive: true });
    const registry = options.database
      ? await PostgresRegistry.open(options.database, options.onDatabaseError === undefined ? {} : { onError: options.onDatabaseError })
      : SqliteRegistry.open(join(root, "registry.db"));
    return new ModelStore(root, blobs, registry);
  }

  /**
   * Imports a GGUF file: validates it, stores its blob, then records the model, its name and its
   * lineage in one registry transaction. Importing a file already there stores nothing new.
   *
   * @example
   * await store.importFile("tiny.q8_0.gguf", { name: "tiny:q8_0", base: "tiny:f16", relation: "quantized" });
   * @throws InvalidRequestError for a bad name, reference, relation or recipe (before any file is read)
   * @throws ModelNotFoundError when a base is not in the store
   * @throws InvalidModelFileError when the file is not a valid GGUF
   * @throws InvalidRequestError when a LoRA adapter has no base or does not fit it, or an `adapter`
   *   relation is given for a file that is not an adapter (see `checkAdapter`; nothing is written)
   * @throws DigestMismatchError when `expectedDigest` is given and differs
   */
  async importFile(path: string, options: ImportOptions = {}): Promise<ImportResult> {
    const name = options.name === undefined ? undefined : formatModelName(parseModelName(options.name));
    const baseRefs = [...(options.base === undefined ? [] : [options.base]), ...(options.bases ?? [])];
    // A LoRA adapter imported with a base is an adapter fork unless told otherwise.
    if (options.relation === undefined && baseRefs.length > 0 && (await isAdapterFile(path))) options = { ...options, relation: "adapter" };
    checkImportOptions(baseRefs, options);
    const parents = await this.#resolveAll(baseRefs);
    const adapterBase = parents.length === 1 ? { path: this.blobs.pathOf(parents[0]!), digest: parents[0]!, label: baseRefs[0]! } : undefined;
    // Fails fast, with an error naming the user's file.
    const adapter = await checkAdapterImport(path, await validateGgufFile(path), options.relation, adapterBase);
    if (adapter !== undefined && options.recipe === undefined) options = { ...options, recipe: adapterRecipe(adapter.result, adapter.base.digest) };
    let summary: GgufSummary | undefined;
    let fileCard: { license?: string; card: Record<string, unknown> } = { card: {} };
    const put = await this.blobs.putFile(path, {
      mode: options.mode ?? "copy",
      ...(options.expectedDigest === undefined ? {} : { expectedDigest: options.expectedDigest }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      // What is stored is validated again: the source may have changed since.
      inspect: async (tempPath) => {
        summary = await validateGgufFile(tempPath);
        if (adapter !== undefined) await checkAdapter(tempPath, adapter.base);
        fileCard = await readCard(tempPath);
      },
    });
    if (summary === undefined) throw new Error("unreachable: putFile returned without inspecting the file");
    const record = toModelRecord(put.digest, put.size, summary, options.license ?? fileCard.license, { ...fileCard.card, ...options.card });
    const edges: LineageEdge[] = parents.map((parent) => ({ child: put.digest, parent, relation: options.relation as Relation, recipe: options.recipe ?? null }));
    const created = await this.registry.transaction(async (registry) => {
      // Under the write lock: a concurrent gc cannot take the blob between this check and the commit.
      if (!(await this.blobs.has(put.digest))) throw new ConflictError(`The blob of ${put.digest} was collected while it was imported; import it again`);
      const inserted = await registry.addModel(record);
      // Every model has a name: without one given, the store chooses one (the parent's plus a suffix…).
      const chosen = name ?? (await nameForImport(registry, {
        digest: put.digest, parents, relation: options.relation, quantization: summary?.fileType, preferred: options.defaultName, fileName: path,
      }));
      await registry.setName(chosen, put.digest);
      await registry.addEdges(edges);
      return { inserted, chosen };
    });
    const model = (await this.registry.getModel(put.digest)) ?? record;
    return { model, name: created.chosen, parents: edges, created: created.inserted, blobCreated: put.created };
  }

  /**
   * The model a reference means: a name (`family[:tag]`), a digest, or a unique digest prefix
   * ({@link ModelResolver.resolve}). A bare hex reference that is also a name is tried as a name first.
   * @throws InvalidRequestError for a malformed reference
   * @throws ModelNotFoundError when nothing matches
   * @throws AmbiguousModelError listing candidates when a prefix matches several
   */
  async resolve(ref: string): Promise<ModelRecord> {
    return this.resolver.resolve(ref);
  }

  /** A model's registry row by its digest, or undefined (no reference parsing: for digests already resolved). */
  async model(digest: Digest): Promise<ModelRecord | undefined> {
    return this.registry.getModel(digest);
  }

  /** The model a canonical name (`family:tag`, no alias, no prefix) points at, or undefined. */
  async nameTarget(name: string): Promise<Digest | undefined> {
    return this.registry.getNameTarget(name);
  }

  /** A model's names, sorted. */
  async namesOf(digest: Digest): Promise<string[]> {
    return this.registry.namesOf(digest);
  }

  /** The edges from a model to its parents, with relation and recipe. */
  async parentsOf(digest: Digest): Promise<LineageEdge[]> {
    return this.registry.parentsOf(digest);
  }

  /** Every name with its model, sorted by name. */
  async names(): Promise<NameRecord[]> {
    return this.registry.listNames();
  }

  /** Every lineage edge. */
  async edges(): Promise<LineageEdge[]> {
    return this.registry.listEdges();
  }

  /** Every alias with its targets, sorted by name (their names and shares: `AliasBook.list`). */
  async aliases(): Promise<AliasRecord[]> {
    return this.registry.listAliases();
  }

  /**
   * Records a model that has no blob of its own (a config fork) in one transaction: its row, then
   * `name` pointed at it and, when the row is new, its `edges`.
   * @returns false when the registry already had the model
   */
  async addRecord(record: ModelRecord, options: { name?: string; edges: readonly LineageEdge[] }): Promise<boolean> {
    return this.registry.transaction(async (registry) => {
      const inserted = await registry.addModel(record);
      if (options.name !== undefined) await registry.setName(options.name, record.digest);
      if (inserted) await registry.addEdges([...options.edges]);
      return inserted;
    });
  }

  /**
   * Undoes imports, newest first, in one transaction: a model an import created loses its rows;
   * a name an import moved points back at `previous` (or goes, when it had none).
   */
  async undoImports(steps: readonly { digest: Digest; name: string; created: boolean; previous?: Digest | undefined }[]): Promise<void> {
    await this.registry.transaction(async (registry) => {
      for (const step of [...steps].reverse()) {
        if (step.created) await registry.removeModel(step.digest);
        else if (step.previous === undefined) await registry.removeName(step.name);
        else if (step.previous !== step.digest) await registry.setName(step.name, step.previous);
      }
    });
  }

  /** Every model with its names, oldest first, and whether its file is on this machine. */
  async list(): Promise<ModelListing[]> {
    const names = await this.#namesByDigest();
    const local = new Set<string>(await this.blobs.list());
    const models = await this.registry.listModels();
    // A config fork has no file: it is local where the weights it runs on are.
    const configParent = new Map((await this.registry.listEdges()).filter((edge) => edge.relation === "config").map((edge) => [edge.child, edge.parent]));
    const weightsOf = (digest: Digest): Digest => {
      for (let depth = 0; depth < 64 && configParent.has(digest); depth++) digest = configParent.get(digest)!;
      return digest;
    };
    return models.map((model) => ({ ...model, names: names.get(model.digest) ?? [], local: local.has(weightsOf(model.digest)) }));
  }

  /** The model whose file holds a model's weights ({@link ModelResolver.weightsOf}). */
  async weightsOf(digest: Digest): Promise<Digest> {
    return this.resolver.weightsOf(digest);
  }

  /**
   * The path of a model's file, for loading it ({@link ModelResolver.localPath}).
   * @throws ModelNotLocalError when this machine lacks the file
   */
  async localPath(digest: Digest, label: string = digest): Promise<string> {
    return this.resolver.localPath(digest, label);
  }

  /** A model with its names, blob path, parents (relation and recipe) and forks. */
  async show(ref: string): Promise<ModelDetails> {
    const model = await this.resolve(ref);
    return {
      model,
      names: await this.registry.namesOf(model.digest),
      path: this.blobs.pathOf(await this.weightsOf(model.digest)),
      parents: await this.registry.parentsOf(model.digest),
      children: await this.registry.childrenOf(model.digest),
    };
  }

  /**
   * Fork trees. With `ref`: the tree(s) holding that model, from its roots (walking parents up)
   * down through every fork. Without: every tree in the store, one per model without parents.
   */
  async tree(ref?: string): Promise<TreeNode[]> {
    const models = await this.registry.listModels();
    const names = await this.#namesByDigest();
    const parents = new Map<Digest, LineageEdge[]>();
    const children = new Map<Digest, LineageEdge[]>();
    for (const edge of await this.registry.listEdges()) {
      parents.set(edge.child, [...(parents.get(edge.child) ?? []), edge]);
      children.set(edge.parent, [...(children.get(edge.parent) ?? []), edge]);
    }
    const isRoot = (digest: Digest) => (parents.get(digest) ?? []).length === 0;
    let roots = models.map((model) => model.digest).filter(isRoot);
    if (ref !== undefined) {
      const ancestors = new Set<Digest>();
      const pending = [(await this.resolve(ref)).digest];
      for (let digest = pending.pop(); digest !== undefined; digest = pending.pop()) {
        if (ancestors.has(digest)) continue;
        ancestors.add(digest);
        pending.push(...(parents.get(digest) ?? []).map((edge) => edge.parent));
      }
      roots = roots.filter((digest) => ancestors.has(digest));
    }
    const byDigest = new Map(models.map((model) => [model.digest, model]));
    const build = (digest: Digest, relation: Relation | null, path: ReadonlySet<Digest>): TreeNode => {
      const model = byDigest.get(digest) ?? missingRow(digest);
      const below = new Set(path).add(digest);
      return {
        digest,
        names: names.get(digest) ?? [],
        relation,
        size: model.size,
        quantization: model.quantization,
        // The registry refuses cycles; the path check keeps a damaged database from looping forever.
        children: (children.get(digest) ?? []).filter((edge) => !below.has(edge.child)).map((edge) => build(edge.child, edge.relation, below)),
      };
    };
    return roots.map((digest) => build(digest, null, new Set()));
  }

  /** Points a name at a model; returns the digest it pointed at before, if any. */
  async tag(ref: string, name: string): Promise<{ name: string; digest: Digest; previous?: Digest }> {
    const canonical = formatModelName(parseModelName(name));
    const model = await this.resolve(ref);
    if ((await this.registry.getAlias(canonical)) !== undefined) {
      throw new ConflictError(`'${canonical}' is an alias; a model name may not shadow it. Choose another name, or remove the alias first (grove alias rm)`, { param: "name" });
    }
    const previous = await this.registry.setName(canonical, model.digest);
    return { name: canonical, digest: model.digest, ...(previous === undefined || previous === model.digest ? {} : { previous }) };
  }

  /**
   * Removes a name (the model stays).
   * @throws ModelNotFoundError when no model has that name
   */
  async untag(name: string): Promise<void> {
    const canonical = formatModelName(parseModelName(name));
    if (!(await this.registry.removeName(canonical))) throw new ModelNotFoundError(canonical);
  }

  /**
   * Removes a model's registry rows: the model, its names and its edges. Refuses when it has
   * forks unless `force` (then the forks lose their edge to it and become roots). The blob stays
   * until {@link gc}.
   * @throws ConflictError when it has forks and `force` is not set, or when an alias routes to it
   */
  async remove(ref: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    const model = await this.resolve(ref);
    return this.registry.transaction(async (registry) => {
      const children = await registry.childrenOf(model.digest);
      if (children.length > 0 && options.force !== true) {
        const forks = await Promise.all(children.map(async (edge) => describe(edge.child, await registry.namesOf(edge.child))));
        throw new ConflictError(
          `${describe(model.digest, await registry.namesOf(model.digest))} has ${children.length} fork${children.length > 1 ? "s" : ""} (${forks.join(", ")}); removing it would orphan them — remove them first or force`,
        );
      }
      const names = await registry.namesOf(model.digest);
      const edges = [...(await registry.parentsOf(model.digest)), ...children];
      await registry.removeModel(model.digest);
      return { digest: model.digest, names, edges };
    });
  }

  /**
   * Deletes blobs no model references, and temp files whose writing process is gone (see
   * BlobStore.cleanTemp; a temp file of unknown writer goes when untouched for
   * `unknownTempOlderThanMs`, default an hour).
   */
  async gc(options: { unknownTempOlderThanMs?: number } = {}): Promise<GcResult> {
    // Under the write lock, so an import cannot add a row for a blob while it is deleted.
    const { removedBlobs, freedBytes } = await this.registry.transaction(async (registry) => {
      const referenced = new Set((await registry.listModels()).map((model) => model.digest));
      const removed: Digest[] = [];
      let bytes = 0;
      for (const digest of await this.blobs.list()) {
        if (referenced.has(digest)) continue;
        const size = (await this.blobs.size(digest)) ?? 0;
        if (await this.blobs.remove(digest)) {
          removed.push(digest);
          bytes += size;
        }
      }
      return { removedBlobs: removed, freedBytes: bytes };
    });
    const temp = await this.blobs.cleanTemp(options.unknownTempOlderThanMs === undefined ? {} : { unknownOlderThanMs: options.unknownTempOlderThanMs });
    return { removedBlobs, freedBytes: freedBytes + temp.bytes, removedTempFiles: temp.files };
  }

  /** Re-hashes every blob and checks every registry model has one. Reads every byte of the store. */
  async verify(): Promise<VerifyResult> {
    const result: VerifyResult = { checked: 0, mismatched: [], missing: [], unreferenced: [] };
    const configForks = new Set((await this.registry.listEdges()).filter((edge) => edge.relation === "config").map((edge) => edge.child));
    // Config forks have no file of their own (their weights are their parent's).
    const referenced = new Set((await this.registry.listModels()).map((model) => model.digest).filter((digest) => !configForks.has(digest)));
    const present = new Set<Digest>();
    for (const digest of await this.blobs.list()) {
      const actual = await this.blobs.digestOf(digest);
      if (actual === undefined) continue; // removed meanwhile
      present.add(digest);
      result.checked++;
      if (actual !== digest) result.mismatched.push(digest);
      if (!referenced.has(digest)) result.unreferenced.push(digest);
    }
    for (const digest of referenced) if (!present.has(digest)) result.missing.push(digest);
    return result;
  }

  /** Closes the registry. */
  async close(): Promise<void> {
    await this.registry.close();
  }

  async #resolveAll(refs: readonly string[]): Promise<Digest[]> {
    const digests: Digest[] = [];
    for (const ref of refs) {
      const { digest } = await this.resolve(ref);
      if (digests.includes(digest)) throw new InvalidRequestError(`The base ${quoteUntrusted(ref)} is given twice`, { param: "base" });
      digests.push(digest);
    }
    return digests;
  }

  async #namesByDigest(): Promise<Map<Digest, string[]>> {
    const names = new Map<Digest, string[]>();
    for (const record of await this.registry.listNames()) names.set(record.digest, [...(names.get(record.digest) ?? []), record.name]);
    return names;
  }
}

/** The file's `general.license` and `general.*` card strings; best effort, since the file is already valid. */
async function readCard(path: string): Promise<{ license?: string; card: Record<string, unknown> }> {
  const metadata = await GgufMetadataReader.open(path);
  const text = (key: string): string | undefined => {
    try {
      const value = metadata.string(key);
      return value === undefined ? undefined : value.slice(0, MAX_CARD_VALUE_LENGTH);
    } catch {
      return undefined; // present with another type: not card material
    }
  };
  const card: Record<string, unknown> = {};
  for (const key of CARD_KEYS) {
    const value = text(`general.${key}`);
    if (value !== undefined) card[key] = value;
  }
  const license = text("general.license");
  return license === undefined ? { card } : { license, card };
}

function toModelRecord(digest: Digest, size: number, summary: GgufSummary, license: string | undefined, card: Record<string, unknown>): ModelRecord {
  const record: ModelRecord = {
    digest,
    size,
    architecture: summary.architecture,
    parameterCount: summary.parameterCount,
    quantization: summary.fileType ?? "unknown",
    contextLength: summary.contextLength,
    vocabularySize: summary.vocabularySize,
    card,
    createdAt: new Date().toISOString(),
  };
  if (summary.chatTemplate !== undefined) record.chatTemplate = summary.chatTemplate;
  if (license !== undefined) record.license = license;
  return record;
}

function describe(digest: Digest, names: readonly string[]): string {
  return names.length > 0 ? `${names[0]} (${digest.slice(0, 19)})` : digest.slice(0, 19);
}

function missingRow(digest: Digest): never {
  throw new ModelNotFoundError(digest);
}
