import { InvalidRequestError } from "../core/errors.js";
import { stat } from "node:fs/promises";
import type { ModelSetting } from "../config/model-settings.js";
import { DEFAULT_CONTEXT_SIZE, defaultContextSize } from "../core/context-size.js";
import type { Digest } from "../core/digest.js";
import type { Engine, LoadedModel, ModelSource } from "../engine/engine.js";
import type { Logger } from "../logging/logger.js";
import { estimateModelMemory, type MemoryEstimate } from "../plan/memory-estimate.js";
import type { ModelStore } from "../store/model-store.js";
import { generationDefaultsOf, type ModelConfig } from "../core/model-config.js";
import { ConfiguredModel } from "../engine/configured-model.js";
import type { AdapterEntry, CatalogEntry, GetModelOptions, ModelCatalog, UnloadResult } from "./model-catalog.js";
import { ModelPool, type ModelPoolOptions } from "./model-pool.js";
import { resolveModelSettings, type ServingShape } from "./model-settings.js";

export interface StoreCatalogOptions {
  readonly store: ModelStore;
  readonly engine: Engine;
  /** Models kept loaded at once; past it, the least recently used idle one is unloaded. @default 2 */
  readonly maxLoaded?: number;
  /** Memory budget of the serving process in bytes (`--memory-budget`); 0 for none. @default 0 */
  readonly memoryBudget?: number;
  /** How long a model stays loaded after a request that does not say (`--keep-alive`), in milliseconds; Infinity until evicted. @default Infinity */
  readonly keepAliveMs?: number;
  /** Context tokens per slot the engine creates, for the memory estimate. @default 2048 */
  readonly contextSize?: number;
  /** Slots per model the engine creates, for the memory estimate. @default 4 */
  readonly slots?: number;
  /**
   * Draws the number in [0, 1) that picks an alias's target; tests pass a seeded generator.
   * @default crypto-random, independently per request
   */
  readonly random?: () => number;
  /** See {@link ModelPoolOptions.graceMs}. @default 1000 */
  readonly graceMs?: number;
  readonly logger?: Logger;
}

/**
 * Serves every model of the store under its names, digests and aliases. A model loads on
 * first use (under its digest, so two names of one file share one load) and the least
 * recently used idle model is unloaded when more than `maxLoaded` are in memory or when the next
 * one would not fit the memory budget ({@link ModelPool}). What a name means (an alias's target
 * drawn by weight per request, a config fork's defaults, an adapter fork's base and scale) is the
 * store's one resolution ({@link ModelResolver}); this catalog turns it into loads.
 */
export class StoreCatalog implements ModelCatalog {
  /** The loaded models and the memory budget they live in. */
  readonly pool: ModelPool;
  /** The adapter ids given out per base (by the weights' digest): fork digests in first-seen order. */
  private readonly adapterIds = new Map<Digest, Digest[]>();
  /** Per-model context and slots (`--model-settings`), by digest; other models take the global ones. */
  private shapes = new Map<Digest, ServingShape>();

  constructor(private readonly options: StoreCatalogOptions) {
    this.pool = new ModelPool({
      engine: options.engine,
      estimate: (source) => this.estimate(source),
      ...(options.memoryBudget === undefined ? {} : { memoryBudget: options.memoryBudget }),
      ...(options.maxLoaded === undefined ? {} : { maxLoaded: options.maxLoaded }),
      ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
      ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  /**
   * Serves the named models with their own ctx and slots (`--model-settings`); call before the
   * first `get`. Throws ConfigError naming the flag for an unknown name or a ctx past training.
   */
  async applySettings(settings: readonly ModelSetting[]): Promise<void> {
    this.shapes = await resolveModelSettings({
      settings,
      defaults: this.defaultShape(),
      resolve: async (name) => (await this.options.store.resolve(name)).digest,
      sourceOf: (digest, name) => this.sourceOf(digest, name),
    });
  }

  private defaultShape(): { contextSize?: number; slots: number } {
    return { ...(this.options.contextSize === undefined ? {} : { contextSize: this.options.contextSize }), slots: this.options.slots ?? 4 };
  }

  /** Stops the pool's idle timer. */
  close(): void {
    this.pool.close();
  }

  async list(): Promise<CatalogEntry[]> {
    const loaded = new Map(this.options.engine.models.map((model) => [model.info.digest as string, model]));
    const entries: CatalogEntry[] = [];
    for (const model of await this.options.store.list()) {
      const created = Math.floor(Date.parse(model.createdAt) / 1000);
      const details = {
        size: model.size,
        architecture: model.architecture,
        quantization: model.quantization,
        parameters: model.parameterCount,
      };
      for (const name of model.names) {
        entries.push({ id: name, digest: model.digest, created, loaded: loaded.get(model.digest), details });
      }
    }
    for (const alias of await this.options.store.aliases()) {
      entries.push({ id: alias.name, digest: alias.targets[0]?.digest ?? "", created: 0, details: { alias: alias.targets } });
    }
    return entries;
  }

  async get(name: string, options: GetModelOptions = {}): Promise<LoadedModel> {
    const { digest, config } = await this.options.store.resolver.resolveServed(name, this.options.random === undefined ? {} : { random: this.options.random });
    if (config !== undefined) return this.getConfigFork(digest, name, config, options);
    return this.getWeights(digest, name, options);
  }

  /**
   * A config fork (`grove create -f Modelfile`) runs on the load of the model holding its weights,
   * wrapped with its defaults ({@link ConfiguredModel}). Its `num_ctx` (or its own
   * `--model-settings` entry) is the context: when that differs from the weights' load, the fork
   * gets a load of its own at that shape, as Ollama reloads a model for another `num_ctx`. A fork
   * on an adapter fork runs on the base's load at the base's shape.
   */
  private async getConfigFork(digest: Digest, name: string, config: ModelConfig, options: GetModelOptions): Promise<LoadedModel> {
    const weights = await this.options.store.weightsOf(digest);
    const source = await this.sourceOf(weights, name);
    const shape = await this.shapeOf(weights);
    const contextSize = this.shapes.get(digest)?.contextSize ?? generationDefaultsOf(config).contextSize;
    const ownShape = this.shapes.get(digest) ?? (contextSize === undefined ? undefined : { ...shape, contextSize });
    const loaded =
      source.base === undefined && ownShape !== undefined && (ownShape.contextSize !== shape.contextSize || ownShape.slots !== shape.slots)
        ? await this.pool.acquire({ id: digest, digest, path: source.path, ...ownShape }, acquireOptions(name, options))
        : await this.getWeights(weights, name, options);
    return new ConfiguredModel(loaded, { id: digest, digest }, config);
  }

  private async getWeights(digest: Digest, name: string, options: GetModelOptions): Promise<LoadedModel> {
    const source = await this.sourceOf(digest, name);
    const acquire = acquireOptions(name, options);
    if (source.base === undefined) return this.pool.acquire({ ...source, ...(await this.shapeOf(digest)) }, acquire);
    // An adapter fork runs on its base's load, at the base's shape.
    return this.pool.acquire({ ...source, base: { ...source.base, ...(await this.shapeOf(source.base.digest)) } }, acquire);
  }

  /**
   * The adapter forks of the model `name` serves (through an alias of one target, or a config
   * fork's weights), oldest first. Ids stay as first given for the server's life: a fork added
   * later takes the next id, a removed one leaves its id unanswered, so a client's list never
   * silently means another adapter.
   * @throws InvalidRequestError for an alias of several models (no one base)
   */
  async adaptersOf(name: string): Promise<AdapterEntry[]> {
    const served = await this.options.store.resolver.servedDigests(name);
    if (served.length !== 1) throw new InvalidRequestError(`${name} is an alias of ${served.length} models; LoRA adapters belong to one base: name it`, { param: "model" });
    const weights = await this.options.store.weightsOf(served[0]!);
    const details = await this.options.store.show(weights);
    const forks = await Promise.all(
      details.children.filter((edge) => edge.relation === "adapter").map(async (edge) => ({ digest: edge.child, model: await this.options.store.model(edge.child), names: await this.options.store.namesOf(edge.child) })),
    );
    forks.sort((a, b) => (a.model?.createdAt ?? "").localeCompare(b.model?.createdAt ?? "") || a.digest.localeCompare(b.digest));
    const ids = this.adapterIds.get(weights) ?? [];
    for (const fork of forks) if (!ids.includes(fork.digest)) ids.push(fork.digest);
    this.adapterIds.set(weights, ids);
    return forks.map((fork) => ({ id: ids.indexOf(fork.digest), name: fork.names[0] ?? fork.digest, names: fork.names, digest: fork.digest })).sort((a, b) => a.id - b.id);
  }

  /** Unloads the model `name` resolves to (an alias: every target loaded), through the pool. */
  async unload(name: string): Promise<UnloadResult> {
    const digests = await this.options.store.resolver.servedDigests(name);
    let unloaded = false;
    for (const digest of digests) unloaded = (await this.pool.expire(digest)) || unloaded;
    return { digest: digests[0] ?? "", unloaded };
  }

  /** The model's `--model-settings` shape, else `--ctx-size` (or its default for this model's training context) × `--parallel`. */
  private async shapeOf(digest: Digest): Promise<ServingShape> {
    const own = this.shapes.get(digest);
    if (own !== undefined) return own;
    const { contextSize, slots } = this.defaultShape();
    if (contextSize !== undefined) return { contextSize, slots };
    return { contextSize: defaultContextSize((await this.options.store.model(digest))?.contextLength), slots };
  }

  /**
   * The plan module's estimate at the model's own context × slots. An adapter fork shares its
   * base's weights, KV cache and compute buffers (its base has an estimate of its own): it adds
   * its adapter files' size, as weights.
   */
  private async estimate(source: ModelSource): Promise<MemoryEstimate> {
    const shape = source.base ?? source;
    const estimate = await estimateModelMemory(shape.path, {
      contextSize: shape.contextSize ?? this.defaultShape().contextSize ?? DEFAULT_CONTEXT_SIZE,
      slots: shape.slots ?? this.defaultShape().slots,
    });
    if (source.base === undefined) return estimate;
    let adapterBytes = 0;
    for (const adapter of source.adapters ?? []) adapterBytes += (await stat(adapter.path)).size;
    return { ...estimate, weightsBytes: adapterBytes, kvCacheBytes: 0, computeBytes: 0, baselineBytes: 0, totalBytes: adapterBytes };
  }

  /**
   * What to load for a model: its blob, or for an adapter fork its adapter on its base's load (at
   * the card's `adapter_scale`, default 1; {@link ModelResolver.filesOf}): served under the
   * adapter's digest, on the one load of the base that the bare base and all its adapter forks
   * share. With a shared registry (`--database`) the files may be on another replica only: then a
   * {@link ModelNotLocalError} (503) names the model.
   */
  private async sourceOf(digest: Digest, name: string): Promise<ModelSource> {
    const files = await this.options.store.resolver.filesOf(digest, name);
    if (files.adapter === undefined) return { id: digest, digest, path: files.path };
    return {
      id: digest,
      digest,
      path: files.path,
      adapters: [{ path: files.adapter.path, scale: files.adapter.scale }],
      base: { id: files.adapter.base, digest: files.adapter.base, path: files.path },
    };
  }
}

/** The pool's options of one acquisition: the name asked for and the request's keep-alive. */
function acquireOptions(name: string, options: GetModelOptions): { name: string; keepAliveMs?: number } {
  return { name, ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }) };
}
