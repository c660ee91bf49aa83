import { randomInt } from "node:crypto";
import type { Digest } from "../core/digest.js";
import { GroveError, ModelNotFoundError } from "../core/errors.js";
import type { Engine, LoadedModel, ModelSource } from "../engine/engine.js";
import type { ModelStore } from "../store/model-store.js";
import { formatModelName, parseModelName } from "../store/model-ref.js";
import type { CatalogEntry, ModelCatalog } from "./model-catalog.js";

/** A model must sit idle this long before it may be unloaded to make room. */
const IDLE_BEFORE_UNLOAD_MS = 10_000;

export interface StoreCatalogOptions {
  readonly store: ModelStore;
  readonly engine: Engine;
  /** Models kept loaded at once; past it, the least recently used idle one is unloaded. @default 2 */
  readonly maxLoaded?: number;
}

/**
 * Serves every model of the store under its names, digests and aliases. A model loads on
 * first use (under its digest, so two names of one file share one load) and the least
 * recently used idle model is unloaded when more than `maxLoaded` are in memory.
 */
export class StoreCatalog implements ModelCatalog {
  private readonly lastUsed = new Map<string, number>();

  constructor(private readonly options: StoreCatalogOptions) {}

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
    for (const alias of await this.options.store.registry.listAliases()) {
      entries.push({ id: alias.name, digest: alias.targets[0]?.digest ?? "", created: 0, details: { alias: alias.targets } });
    }
    return entries;
  }

  async get(name: string): Promise<LoadedModel> {
    const digest = await this.resolve(name);
    this.lastUsed.set(digest, Date.now());
    const model = await this.options.engine.load(await this.sourceOf(digest));
    await this.unloadIdle(digest);
    return model;
  }

  /**
   * What to load for a model: its blob, or for an adapter fork its base's blob with the adapter
   * applied (at the card's `adapter_scale`, default 1). Loaded under the adapter's digest, so it
   * never shares a load with its bare base.
   */
  private async sourceOf(digest: Digest): Promise<ModelSource> {
    const { store } = this.options;
    const path = store.blobs.pathOf(digest);
    const edge = (await store.registry.parentsOf(digest)).find((parent) => parent.relation === "adapter");
    if (edge === undefined) return { id: digest, digest, path };
    const scale = (await store.registry.getModel(digest))?.card["adapter_scale"];
    return {
      id: digest,
      digest,
      path: store.blobs.pathOf(edge.parent),
      adapters: [{ path, scale: typeof scale === "number" && Number.isFinite(scale) ? scale : 1 }],
    };
  }

  /** A name, digest, unique prefix or alias → digest. Malformed names are simply unknown models. */
  private async resolve(name: string): Promise<Digest> {
    try {
      const alias = await this.options.store.registry.getAlias(formatModelName(parseModelName(name)));
      if (alias && alias.targets.length > 0) return pickWeighted(alias.targets);
    } catch (error) {
      if (!(error instanceof GroveError)) throw error;
    }
    try {
      return (await this.options.store.resolve(name)).digest;
    } catch (error) {
      if (error instanceof ModelNotFoundError || (error instanceof GroveError && error.code.startsWith("invalid"))) {
        throw new ModelNotFoundError(name, { cause: error });
      }
      throw error;
    }
  }

  private async unloadIdle(keep: string): Promise<void> {
    const { engine } = this.options;
    const limit = this.options.maxLoaded ?? 2;
    const now = Date.now();
    const idle = engine.models
      .filter((model) => model.info.id !== keep)
      .filter((model) => {
        const stats = model.stats();
        return stats.slotsBusy === 0 && stats.queued === 0 && now - (this.lastUsed.get(model.info.id) ?? 0) >= IDLE_BEFORE_UNLOAD_MS;
      })
      .sort((a, b) => (this.lastUsed.get(a.info.id) ?? 0) - (this.lastUsed.get(b.info.id) ?? 0));
    let excess = engine.models.length - limit;
    for (const model of idle) {
      if (excess-- <= 0) break;
      await engine.unload(model.info.id);
    }
  }
}

/** Picks an alias target with probability weight / total (canary rollout). */
function pickWeighted(targets: readonly { digest: Digest; weight: number }[]): Digest {
  const total = targets.reduce((sum, target) => sum + target.weight, 0);
  let point = (randomInt(0, 1_000_000) / 1_000_000) * total;
  for (const target of targets) {
    point -= target.weight;
    if (point < 0) return target.digest;
  }
  return targets[targets.length - 1]!.digest;
}
