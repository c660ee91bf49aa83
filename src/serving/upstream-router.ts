import { UpstreamEngine } from "../engine/upstream-engine.js";
import type { UpstreamRecord, UpstreamStore } from "../gateway/upstream-store.js";
import type { Logger } from "../logging/logger.js";

/** Options of {@link UpstreamRouter}. */
export interface UpstreamRouterOptions {
  readonly store: UpstreamStore;
  /** Time between health checks (and re-reads of the store), in milliseconds; 0: never. @default 10000 */
  readonly healthIntervalMs?: number;
  /** Connect retries per request. @default 2 */
  readonly retries?: number;
  readonly logger?: Logger;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** One step of a route: an upstream to try, or a local name the routes serve themselves. */
export type RouteStep = { readonly kind: "upstream"; readonly engine: UpstreamEngine } | { readonly kind: "local"; readonly name: string };

/** Longest fallback chain followed; longer ones (or cycles) stop there. */
const MAX_CHAIN = 8;

/**
 * The upstreams a server routes to: one {@link UpstreamEngine} per record of the store, re-read
 * and health-checked every interval (so `grove upstream add|rm` takes effect on a running server
 * within one interval). Resolves a requested name to its chain: the upstream, then its fallbacks.
 */
export class UpstreamRouter {
  #engines = new Map<string, { record: UpstreamRecord; engine: UpstreamEngine }>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  readonly #options: UpstreamRouterOptions;

  constructor(options: UpstreamRouterOptions) {
    this.#options = options;
  }

  /**
   * Reads the store, then checks every upstream now (without waiting: an upstream counts as
   * healthy until a check or a request says otherwise, so a slow one does not hold up startup)
   * and every interval after.
   */
  async start(): Promise<void> {
    await this.refresh();
    void this.tick();
    const interval = this.#options.healthIntervalMs ?? 10_000;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.tick(), interval);
      this.#timer.unref();
    }
  }

  /** Re-reads the store and runs one health check of every upstream (one tick at a time). */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    try {
      await this.refresh();
      await Promise.all(
        [...this.#engines.values()].map(async ({ engine }) => {
          const before = engine.healthy;
          const health = await engine.checkHealth();
          if (health.healthy !== before) {
            this.#options.logger?.[health.healthy ? "info" : "warn"]({ upstream: engine.name, url: engine.url, reason: health.reason }, health.healthy ? "upstream healthy" : "upstream unhealthy");
          }
        }),
      );
    } catch (error) {
      this.#options.logger?.error({ err: error }, "upstream health check failed");
    }
  }

  /** Reconciles the engines with the store: new and changed records get a fresh engine. */
  async refresh(): Promise<void> {
    const records = await this.#options.store.listUpstreams();
    const next = new Map<string, { record: UpstreamRecord; engine: UpstreamEngine }>();
    for (const record of records) {
      const current = this.#engines.get(record.name);
      if (current && sameRecord(current.record, record)) {
        next.set(record.name, current);
        continue;
      }
      const engine = new UpstreamEngine({
        name: record.name,
        url: record.url,
        ...(record.remoteModel === undefined ? {} : { remoteModel: record.remoteModel }),
        ...(record.apiKey === undefined ? {} : { apiKey: record.apiKey }),
        ...(this.#options.retries === undefined ? {} : { retries: this.#options.retries }),
        ...(this.#options.fetch === undefined ? {} : { fetch: this.#options.fetch }),
      });
      next.set(record.name, { record, engine });
    }
    this.#engines = next;
  }

  /** True when `name` is routed to an upstream. */
  has(name: string): boolean {
    return this.#engines.has(name);
  }

  /** The upstreams now known, with their health. */
  get engines(): UpstreamEngine[] {
    return [...this.#engines.values()].map((entry) => entry.engine);
  }

  /** The records now known (their API keys included: never hand them to a response or a log). */
  get records(): UpstreamRecord[] {
    return [...this.#engines.values()].map((entry) => entry.record);
  }

  /**
   * The chain to try for `name`: its upstream, then each fallback in turn (an upstream or a
   * local name, which ends the chain); `undefined` when `name` is not an upstream.
   */
  route(name: string): RouteStep[] | undefined {
    if (!this.#engines.has(name)) return undefined;
    const steps: RouteStep[] = [];
    const seen = new Set<string>();
    let current: string | undefined = name;
    while (current !== undefined && !seen.has(current) && steps.length < MAX_CHAIN) {
      seen.add(current);
      const entry = this.#engines.get(current);
      if (entry === undefined) {
        steps.push({ kind: "local", name: current });
        break;
      }
      steps.push({ kind: "upstream", engine: entry.engine });
      current = entry.record.fallback;
    }
    return steps;
  }

  /** Stops the health checks. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function sameRecord(a: UpstreamRecord, b: UpstreamRecord): boolean {
  return a.url === b.url && a.remoteModel === b.remoteModel && a.apiKey === b.apiKey && a.fallback === b.fallback;
}
