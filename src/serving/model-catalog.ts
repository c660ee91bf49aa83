import { ModelNotFoundError } from "../core/errors.js";
import type { Engine, LoadedModel } from "../engine/engine.js";

/** One model clients may name, as `/v1/models` lists it. */
export interface CatalogEntry {
  /** The name a client sends as `model`. */
  readonly id: string;
  readonly digest: string;
  /** Seconds since the epoch. */
  readonly created: number;
  /** Present when the model is loaded now. */
  readonly loaded?: LoadedModel;
  /** Extra facts (size, architecture…) for the listing. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Options of {@link ModelCatalog.get}. */
export interface GetModelOptions {
  /**
   * How long the model stays loaded after this request, in milliseconds (Ollama's `keep_alive`):
   * Infinity until evicted for room, 0 unloaded when the request ends. A catalog without a pool
   * (one `--model FILE`) keeps its model loaded whatever this says.
   * @default the server's `--keep-alive`
   */
  readonly keepAliveMs?: number;
}

/** What {@link ModelCatalog.unload} did. */
export interface UnloadResult {
  /** The digest the name resolved to. */
  readonly digest: string;
  /** False when the model was not loaded (nothing to do). */
  readonly unloaded: boolean;
}

/**
 * What the HTTP layer needs to find models: the names it may serve, and a loaded model for a
 * name (loading it on first use). The server never reaches the store or the engine's loader
 * directly, so a test can hand it any catalog.
 */
export interface ModelCatalog {
  list(): Promise<CatalogEntry[]>;
  /** Resolves a requested name to a loaded model; throws ModelNotFoundError. */
  get(name: string, options?: GetModelOptions): Promise<LoadedModel>;
  /**
   * Unloads the model a name resolves to now (Ollama's `keep_alive: 0` without a prompt). Absent
   * where models cannot be unloaded (one `--model FILE`, which would not load again).
   * @throws ModelNotFoundError for an unknown name
   */
  unload?(name: string): Promise<UnloadResult>;
  /**
   * The adapter forks of the model a name resolves to, oldest first: llama-server's LoRA adapter
   * list (`GET /lora-adapters`, per-request `lora: [{id, scale}]`), `id` its place in the list.
   * Absent where a catalog has no lineage (`--model FILE`, upstreams): no adapters to mix.
   */
  adaptersOf?(name: string): Promise<AdapterEntry[]>;
  /**
   * The adapters a request to `name` that gives no `lora` runs with: llama-server's `--lora`
   * adapters at their startup scales. Absent or empty: none (a store's base answers as itself).
   */
  defaultLora?(name: string): readonly LoraChoice[];
}

/** One entry of llama-server's per-request `lora`: an adapter of the served model by its id, and its scale. */
export interface LoraChoice {
  readonly id: number;
  readonly scale: number;
}

/** An adapter fork of a served base, as llama-server lists its LoRA adapters. */
export interface AdapterEntry {
  readonly id: number;
  /** The fork's name (its digest when it has none): what `get` loads it under. */
  readonly name: string;
  /** All its names, for a key's model list. @default [name] */
  readonly names?: readonly string[];
  readonly digest: string;
  /** The scale a request without `lora` applies it at (`GET /lora-adapters`' `scale`). @default 0 */
  readonly scale?: number;
}

/** llama-server's `--lora` adapters of the one model an {@link EngineCatalog} serves. */
export interface FileAdapters {
  /** The id of the model they adapt. */
  readonly base: string;
  readonly entries: readonly AdapterEntry[];
}

/**
 * Serves exactly the models an engine has loaded, under their ids (`grove serve --model FILE`),
 * and under the other names `aliases` gives a model id (`--alias`, llama-server's: every name
 * answers, the listing shows them as `aliases`).
 */
export class EngineCatalog implements ModelCatalog {
  readonly #byAlias = new Map<string, string>();

  constructor(
    private readonly engine: Engine,
    private readonly aliases: Readonly<Record<string, readonly string[]>> = {},
    /** llama-server's rule for a server of one model: any name means it (`--accept-any-model`). */
    private readonly anyName = false,
    /** Labels listed with every model (`--tags`, llama-server's: informational, never used to route). */
    private readonly tags: readonly string[] = [],
    /** `--lora` adapters of the served file, each also loaded as a model of its own. */
    private readonly adapters?: FileAdapters,
  ) {
    for (const [id, names] of Object.entries(aliases)) for (const name of names) this.#byAlias.set(name, id);
  }

  async list(): Promise<CatalogEntry[]> {
    return this.engine.models.map((model) => {
      const names = this.aliases[model.info.id];
      return {
        id: model.info.id,
        digest: model.info.digest,
        created: model.info.loadedAt,
        loaded: model,
        ...(names === undefined && this.tags.length === 0
          ? {}
          : { details: { ...(names === undefined ? {} : { aliases: [...names] }), ...(this.tags.length === 0 ? {} : { tags: [...this.tags] }) } }),
      };
    });
  }

  async get(name: string): Promise<LoadedModel> {
    const id = this.#byAlias.get(name) ?? name;
    const model = this.engine.models.find((candidate) => candidate.info.id === id);
    if (model) return model;
    // --lora adapters are models too (forks on the one load): any name means the one base.
    const bases = this.engine.models.filter((candidate) => candidate.info.base === undefined);
    if (this.anyName && bases.length === 1) return bases[0]!;
    throw new ModelNotFoundError(name);
  }

  /** The `--lora` adapters when `name` means the model they adapt; none for another name. */
  async adaptersOf(name: string): Promise<AdapterEntry[]> {
    return this.#adaptsName(name) ? [...this.adapters!.entries] : [];
  }

  defaultLora(name: string): readonly LoraChoice[] {
    if (!this.#adaptsName(name)) return [];
    return this.adapters!.entries.filter((entry) => (entry.scale ?? 0) !== 0).map((entry) => ({ id: entry.id, scale: entry.scale! }));
  }

  #adaptsName(name: string): boolean {
    if (this.adapters === undefined) return false;
    const id = this.#byAlias.get(name) ?? name;
    // Any name means the one model under --accept-any-model, but not an adapter's own name.
    return id === this.adapters.base || (this.anyName && !this.engine.models.some((model) => model.info.id === id));
  }
}
