import { InvalidRequestError } from "../core/errors.js";
import type { LoadedModel } from "../engine/engine.js";
import type { AdapterEntry, CatalogEntry, GetModelOptions, LoraChoice, ModelCatalog, UnloadResult } from "./model-catalog.js";
import type { UpstreamRouter } from "./upstream-router.js";

/** The digest usage rows and prices carry for a model served by an upstream: `upstream:<name>`. */
export function upstreamDigest(name: string): string {
  return `upstream:${name}`;
}

/**
 * A catalog that also knows the upstreams' names: `/v1/models` and `/api/tags` list them
 * (with their health), and the OpenAI routes' upstream proxy (upstream-proxy.ts) answers them
 * before the routes ask {@link get}. A route that does ask (the Ollama-compatible ones) gets a
 * clear 400. An upstream's name shadows a local model of the same name.
 */
export class UpstreamCatalog implements ModelCatalog {
  constructor(
    private readonly inner: ModelCatalog,
    private readonly router: UpstreamRouter,
  ) {}

  async list(): Promise<CatalogEntry[]> {
    const local = (await this.inner.list()).filter((entry) => !this.router.has(entry.id));
    const remote = this.router.engines.map(
      (engine): CatalogEntry => ({
        id: engine.name,
        digest: upstreamDigest(engine.name),
        created: 0,
        details: { upstream: engine.url, remote_model: engine.remoteModel, healthy: engine.healthy },
      }),
    );
    return [...local, ...remote];
  }

  async get(name: string, options?: GetModelOptions): Promise<LoadedModel> {
    this.refuseUpstream(name);
    return this.inner.get(name, options);
  }

  get unload(): ((name: string) => Promise<UnloadResult>) | undefined {
    const inner = this.inner;
    if (inner.unload === undefined) return undefined;
    return async (name) => {
      this.refuseUpstream(name);
      return inner.unload!(name);
    };
  }

  get adaptersOf(): ((name: string) => Promise<AdapterEntry[]>) | undefined {
    const inner = this.inner;
    if (inner.adaptersOf === undefined) return undefined;
    return async (name) => {
      this.refuseUpstream(name);
      return inner.adaptersOf!(name);
    };
  }

  get defaultLora(): ((name: string) => readonly LoraChoice[]) | undefined {
    const inner = this.inner;
    if (inner.defaultLora === undefined) return undefined;
    return (name) => (this.router.has(name) ? [] : inner.defaultLora!(name));
  }

  private refuseUpstream(name: string): void {
    if (this.router.has(name)) {
      throw new InvalidRequestError(`'${name}' is served by an upstream: use /v1/chat/completions, /v1/completions or /v1/embeddings`, { param: "model" });
    }
  }
}
