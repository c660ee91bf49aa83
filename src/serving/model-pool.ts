import { OverloadedError } from "../core/errors.js";
import { KEEP_FOREVER } from "../core/keep-alive.js";
import type { Engine, LoadedModel, ModelSource } from "../engine/engine.js";
import type { Logger } from "../logging/logger.js";
import { SERVING_BASELINE_BYTES, type MemoryEstimate } from "../plan/memory-estimate.js";
import { PooledModel } from "./pooled-model.js";

const MIB = 1024 * 1024;

/** Options of {@link ModelPool}. */
export interface ModelPoolOptions {
  readonly engine: Engine;
  /** How much memory a model takes once loaded (the plan module's estimate for the served ctx × slots). */
  readonly estimate: (source: ModelSource) => Promise<MemoryEstimate>;
  /**
   * The whole serving process's budget in bytes: the baseline plus every loaded model's estimate
   * must stay within it. 0 means no budget.
   * @default 0
   */
  readonly memoryBudget?: number;
  /** Models kept loaded at once; past it the least recently used idle one is unloaded (soft: busy models stay). @default 2 */
  readonly maxLoaded?: number;
  /**
   * How long a model stays loaded after its last request, in milliseconds, when the request does not
   * say (Ollama's `OLLAMA_KEEP_ALIVE`): `Infinity` keeps it until evicted for room, 0 unloads it as
   * soon as its requests end. A request's own `keep_alive` replaces it for that model ({@link acquire}).
   * @default Infinity
   */
  readonly keepAliveMs?: number;
  /** The serving process without a model, counted against the budget. @default SERVING_BASELINE_BYTES */
  readonly baselineBytes?: number;
  /**
   * A model handed to a request counts as in use until this long after its last call, so the
   * request's work between lookup and generation (tokenizing, admission) never meets an unload.
   * @default 1000
   */
  readonly graceMs?: number;
  readonly logger?: Logger;
}

type EntryState = "loading" | "loaded" | "evicting";

/** Options of {@link ModelPool.acquire}. */
export interface AcquireOptions {
  /** The request's keep-alive in milliseconds (Infinity: until evicted; 0: unload when done). @default the pool's `keepAliveMs` */
  readonly keepAliveMs?: number;
  /** The name the request used, shown by `ps`. */
  readonly name?: string;
}

/** The pool's bookkeeping for one model id, from its reservation until it is unloaded. */
export interface PoolEntry {
  readonly id: string;
  /** For an adapter fork: the id of the base entry it runs on (its memory is its adapters'; it takes no model place). */
  readonly base: string | undefined;
  state: EntryState;
  /** The estimate without the process baseline: what this model adds. */
  readonly modelBytes: number;
  readonly estimate: MemoryEstimate;
  /** Context tokens per slot and slots this model is loaded with (absent: the engine's defaults). */
  readonly contextSize: number | undefined;
  readonly slots: number | undefined;
  /** Last time a request asked for it (LRU order), ms since the epoch. */
  lastUsed: number;
  /** Last call through a handed-out model (grace for unloads), ms since the epoch. */
  touched: number;
  /** Generations and embeddings running through the pool's handles. */
  active: number;
  /** How long it stays loaded once idle: the last request's keep-alive, else the pool's (ms; Infinity: until evicted). */
  keepAliveMs: number;
  /** The name the last request used (what `ps` shows). */
  name: string | undefined;
}

/** One loaded model, as `GET /api/loaded` lists it. */
export interface LoadedModelReport {
  id: string;
  digest: string;
  /** For an adapter fork: the loaded base it runs on (its estimate is its adapter files' size). */
  base?: string;
  state: EntryState;
  /** Estimated bytes of this model (weights + KV cache + compute), without the process baseline. */
  estimateBytes: number;
  estimate: { weightsBytes: number; kvCacheBytes: number; computeBytes: number };
  /** Context tokens per slot this model is served with (its `--model-settings` ctx, else `--ctx-size`). */
  contextSize: number | null;
  /** Slots of this model (its `--model-settings` slots, else `--parallel`). */
  slots: number | null;
  lastUsedAt: string;
  idleSeconds: number;
  slotsBusy: number;
  slotsTotal: number;
  queued: number;
  /** The name the last request used for it. */
  name?: string;
  /** When it will be unloaded if no request comes (ISO 8601); null: kept until evicted for room. */
  expiresAt: string | null;
  /** Its keep-alive in seconds; -1: kept until evicted for room. */
  keepAliveSeconds: number;
}

/** What the pool holds and how much of the budget it uses. */
export interface PoolReport {
  /** 0 when there is no budget. */
  budgetBytes: number;
  baselineBytes: number;
  /** Baseline + every loading or loaded model's estimate. */
  usedBytes: number;
  maxLoaded: number;
  /** The keep-alive of models whose requests did not set one, in seconds; -1: until evicted. */
  keepAliveSeconds: number;
  models: LoadedModelReport[];
}

/**
 * Keeps several models loaded under a memory budget (ollama's `sched.go` in miniature). Before a
 * model loads its estimate is reserved; least recently used idle models are evicted until it fits,
 * and their unloads finish before the load starts, so the estimates of what is in memory never add
 * up past the budget. When it cannot fit — too big alone, or every model that would have to go
 * is busy — the request gets {@link OverloadedError} (503 with Retry-After), never a load past the
 * budget. A model idle past its keep-alive (Ollama's `keep_alive`: the last request's, else the
 * pool's `keepAliveMs`) is unloaded by a timer of its own, and {@link expire} unloads one now (Ollama's
 * `expireRunner`).
 *
 * An adapter fork is an entry of its own on its base's entry (LoRAX's adapters on one base): the
 * base loads first (an entry like any model), then the adapters, reserving only their files' size
 * and taking no place among `maxLoaded`. An idle fork can be unloaded alone; a base is idle only
 * when its forks are, and unloading it unloads them.
 */
export class ModelPool {
  private readonly entries = new Map<string, PoolEntry>();
  private readonly pending = new Map<string, Promise<LoadedModel>>();
  private readonly unloading = new Set<Promise<void>>();
  /** Each entry's expiry timer and the time it fires (ms since the epoch). */
  private readonly timers = new Map<PoolEntry, { timer: NodeJS.Timeout; at: number }>();
  private closed = false;

  constructor(private readonly options: ModelPoolOptions) {}

  private get defaultKeepAlive(): number {
    return this.options.keepAliveMs ?? KEEP_FOREVER;
  }

  private get budget(): number {
    return this.options.memoryBudget ?? 0;
  }

  private get baseline(): number {
    return this.options.baselineBytes ?? SERVING_BASELINE_BYTES;
  }

  /**
   * A loaded model for `source`, loading it (and evicting others) when needed. `keepAliveMs` (the
   * request's `keep_alive`; absent: the pool's) is how long the model, and an adapter fork's base,
   * stay loaded once this request and any others are done.
   */
  async acquire(source: ModelSource, options: AcquireOptions = {}): Promise<LoadedModel> {
    const ids = source.base === undefined ? [source.id] : [source.id, source.base.id];
    const mark = (loaded: boolean) => {
      const now = Date.now();
      for (const id of ids) {
        const entry = this.entries.get(id);
        if (entry === undefined || entry.state === "evicting") continue;
        // LRU order is when requests asked; the grace runs from when this one got the model.
        if (!loaded) entry.lastUsed = now;
        entry.touched = now;
        entry.keepAliveMs = options.keepAliveMs ?? this.defaultKeepAlive;
        if (options.name !== undefined && id === source.id) entry.name = options.name;
        this.schedule(entry);
      }
    };
    mark(false);
    const model = await this.load(source);
    mark(true); // a model that loaded for this request takes its keep-alive too
    return new PooledModel(model, source, this);
  }

  /** A handle was used: restarts the grace before its model may be unloaded. */
  touch(id: string): void {
    const entry = this.entries.get(id);
    if (entry !== undefined) entry.touched = Date.now();
  }

  /** A generation or embedding through a handle starts (+1) or ends (-1). */
  track(id: string, change: 1 | -1): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.active = Math.max(0, entry.active + change);
    entry.touched = Date.now();
    if (entry.active === 0) {
      this.schedule(entry);
      if (entry.base !== undefined) {
        const base = this.entries.get(entry.base);
        if (base !== undefined) this.schedule(base);
      }
    }
  }

  /**
   * Unloads a model now (Ollama's `keep_alive: 0` without a prompt, `ollama stop`). A model whose
   * last call is within the grace is unloaded when the grace ends (awaited: it is at most
   * `graceMs`); one with requests running is unloaded as soon as they end (not awaited). Resolves to
   * false when it is not loaded.
   */
  async expire(id: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.state === "evicting") return false;
    entry.keepAliveMs = 0;
    for (let tries = 0; tries < 3 && this.entries.get(id) === entry && entry.state === "loaded"; tries++) {
      if (this.isIdle(entry)) {
        this.evict(entry);
        await Promise.allSettled([...this.unloading]);
        return true;
      }
      if (!this.isIdle(entry, Number.POSITIVE_INFINITY)) break; // busy: its end arms the timer
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, entry.touched + (this.options.graceMs ?? 1000) - Date.now())));
    }
    this.schedule(entry);
    return true;
  }

  /** When an idle entry unloads: its last activity plus its keep-alive (Infinity: never). */
  private expiryOf(entry: PoolEntry): number {
    return entry.keepAliveMs === KEEP_FOREVER ? KEEP_FOREVER : Math.max(entry.lastUsed, entry.touched) + entry.keepAliveMs;
  }

  /**
   * Arms the entry's expiry timer for its expiry, or for the end of the grace after its last call
   * when that is later (a model handed to a request is never unloaded under it). A timer already
   * due sooner stays: it re-arms itself when it fires early.
   */
  private schedule(entry: PoolEntry): void {
    const expiry = this.expiryOf(entry);
    if (expiry === KEEP_FOREVER) return;
    this.arm(entry, Math.max(expiry, entry.touched + (this.options.graceMs ?? 1000)));
  }

  private arm(entry: PoolEntry, at: number): void {
    if (this.closed) return;
    const armed = this.timers.get(entry);
    if (armed !== undefined && armed.at <= at) return;
    if (armed !== undefined) clearTimeout(armed.timer);
    const timer = setTimeout(() => {
      this.timers.delete(entry);
      this.expireIfDue(entry);
    }, Math.max(0, at - Date.now()));
    timer.unref();
    this.timers.set(entry, { timer, at });
  }

  /** The timer fired: unload the entry if it is idle and past its keep-alive, else look again later. */
  private expireIfDue(entry: PoolEntry): void {
    if (this.entries.get(entry.id) !== entry || entry.state !== "loaded") return;
    const now = Date.now();
    const expiry = this.expiryOf(entry);
    if (expiry === KEEP_FOREVER) return;
    if (now >= expiry && this.isIdle(entry, now)) return this.evict(entry);
    const next = Math.max(expiry, entry.touched + (this.options.graceMs ?? 1000));
    // Busy: the end of its requests re-arms the timer; a slot the engine still reports busy ends
    // without telling the pool, so look again shortly too.
    this.arm(entry, next > now ? next : now + Math.max(100, this.options.graceMs ?? 1000));
  }

  /** True while `model` is still the engine's loaded instance. */
  isLoaded(model: LoadedModel): boolean {
    return this.options.engine.models.includes(model);
  }

  /** Loads `source` once (concurrent callers share the load), within the budget. */
  private load(source: ModelSource): Promise<LoadedModel> {
    const loaded = this.options.engine.models.find((model) => model.info.id === source.id);
    if (loaded !== undefined && this.entries.get(source.id)?.state === "loaded") return Promise.resolve(loaded);
    let pending = this.pending.get(source.id);
    if (pending === undefined) {
      pending = (source.base === undefined ? this.admitAndLoad(source) : this.loadFork(source, source.base)).finally(() => this.pending.delete(source.id));
      this.pending.set(source.id, pending);
    }
    return pending;
  }

  /** An adapter fork: its base first (within the budget, like any model), then its adapters' bytes. */
  private async loadFork(source: ModelSource, base: ModelSource): Promise<LoadedModel> {
    await this.load(base);
    return this.admitAndLoad(source, base.id);
  }

  private async admitAndLoad(source: ModelSource, base?: string): Promise<LoadedModel> {
    const estimate = await this.options.estimate(source);
    // From here to the reservation nothing awaits: the decision and the reservation are one step.
    const modelBytes = Math.max(0, estimate.totalBytes - estimate.baselineBytes);
    if (base !== undefined && this.entries.get(base)?.state !== "loaded") {
      throw new OverloadedError(`The base of '${source.id}' was unloaded while its adapter was about to load; retry`);
    }
    const victims = this.chooseVictims(source.id, modelBytes, base);
    const now = Date.now();
    const entry: PoolEntry = {
      id: source.id, base, state: "loading", modelBytes, estimate, contextSize: source.base?.contextSize ?? source.contextSize, slots: source.base?.slots ?? source.slots, lastUsed: now, touched: now, active: 0,
      keepAliveMs: this.defaultKeepAlive, name: undefined,
    };
    this.entries.set(source.id, entry);
    try {
      for (const victim of victims) this.evict(victim);
      // Whatever is being unloaded (for this load or another) leaves memory before this one enters.
      while (this.unloading.size > 0) await Promise.allSettled([...this.unloading]);
      this.options.logger?.info({ model: source.id, estimateMiB: round(modelBytes / MIB), usedMiB: round(this.usedBytes() / MIB) }, "loading model into the pool");
      const model = await this.options.engine.load(source);
      entry.state = "loaded";
      return model;
    } catch (error) {
      if (this.entries.get(source.id) === entry) this.entries.delete(source.id);
      throw error;
    }
  }

  /**
   * The least recently used idle models to unload so that `modelBytes` more fit the budget (and,
   * softly, the model count). Throws OverloadedError when the budget cannot be met.
   */
  private chooseVictims(id: string, modelBytes: number, base?: string): PoolEntry[] {
    const budget = this.budget;
    if (budget > 0 && this.baseline + modelBytes > budget) {
      throw new OverloadedError(
        `The model '${id}' needs about ${mib(modelBytes)} (estimate: weights, KV cache and compute buffers for the served context × slots) ` +
          `and the memory budget is ${mib(budget)}, of which the process itself takes ${mib(this.baseline)}: it cannot be loaded ` +
          "under this --memory-budget (GROVE_MEMORY_BUDGET). Raise the budget, or lower --ctx-size or --parallel (or its ctx and slots in --model-settings)",
      );
    }
    const resident = [...this.entries.values()].filter((entry) => entry.state !== "evicting");
    // An adapter's base stays: the adapter is loaded onto it.
    const candidates = resident.filter((entry) => entry.id !== id && entry.id !== base && this.isIdle(entry)).sort((a, b) => a.lastUsed - b.lastUsed);
    const victims: PoolEntry[] = [];
    let used = this.baseline + resident.reduce((sum, entry) => sum + entry.modelBytes, 0);
    let count = resident.filter((entry) => entry.base === undefined).length;
    const maxLoaded = this.options.maxLoaded ?? 2;
    for (const candidate of candidates) {
      if (victims.includes(candidate)) continue;
      const overBudget = budget > 0 && used + modelBytes > budget;
      if (!overBudget && (base !== undefined || count < maxLoaded)) break;
      // An adapter frees only budget; it is worth taking only when the budget is short.
      if (!overBudget && candidate.base !== undefined) continue;
      for (const going of [candidate, ...this.forksOf(candidate.id)]) {
        if (victims.includes(going)) continue;
        victims.push(going);
        used -= going.modelBytes;
      }
      if (candidate.base === undefined) count--;
    }
    if (budget > 0 && used + modelBytes > budget) {
      const busy = resident.filter((entry) => !victims.includes(entry)).map((entry) => entry.id);
      throw new OverloadedError(
        `Not enough of the memory budget for '${id}' now: it needs about ${mib(modelBytes)}, ${mib(Math.max(0, budget - used))} of ${mib(budget)} is free, ` +
          `and the loaded models (${busy.join(", ")}) are busy or were used in the last ${Math.round((this.options.graceMs ?? 1000) / 1000)} s. Retry shortly`,
      );
    }
    return victims;
  }

  /** The adapter fork entries on a base entry. */
  private forksOf(id: string): PoolEntry[] {
    return [...this.entries.values()].filter((entry) => entry.base === id && entry.state !== "evicting");
  }

  /**
   * Idle: no request through the pool and none in the engine, and past the grace after the last
   * call. A fork's requests run in its base's slots, so a fork counts only its own requests, and
   * a base is idle only when every fork on it is.
   */
  private isIdle(entry: PoolEntry, now = Date.now()): boolean {
    if (entry.state !== "loaded" || entry.active > 0 || now - entry.touched < (this.options.graceMs ?? 1000)) return false;
    if (entry.base !== undefined) return true;
    if (this.forksOf(entry.id).some((fork) => !this.isIdle(fork, now))) return false;
    const model = this.options.engine.models.find((candidate) => candidate.info.id === entry.id);
    if (model === undefined) return true;
    const stats = model.stats();
    return stats.slotsBusy === 0 && stats.queued === 0;
  }

  /** Unloads an entry; a base takes its forks with it (the engine ends them with it). */
  private evict(entry: PoolEntry): void {
    if (entry.state === "evicting") return;
    const forks = entry.base === undefined ? this.forksOf(entry.id) : [];
    for (const going of [entry, ...forks]) {
      going.state = "evicting";
      const armed = this.timers.get(going);
      if (armed !== undefined) clearTimeout(armed.timer);
      this.timers.delete(going);
    }
    this.options.logger?.info({ model: entry.id, ...(entry.base === undefined ? {} : { base: entry.base }), forks: forks.length, idleSeconds: round((Date.now() - entry.lastUsed) / 1000) }, entry.base === undefined ? "unloading model" : "unloading an adapter fork");
    const unload = this.options.engine
      .unload(entry.id)
      .catch((error: unknown) => this.options.logger?.error({ err: error, model: entry.id }, "unloading a model failed"))
      .finally(() => {
        for (const going of [entry, ...forks]) if (this.entries.get(going.id) === going) this.entries.delete(going.id);
        this.unloading.delete(unload);
      });
    this.unloading.add(unload);
  }

  /** Unloads every model idle past its keep-alive now, and waits for the unloads (the timers' job; public for tests). */
  async unloadIdle(): Promise<void> {
    const now = Date.now();
    for (const entry of [...this.entries.values()]) {
      if (entry.state === "loaded" && now >= this.expiryOf(entry) && this.isIdle(entry, now)) this.evict(entry);
    }
    await Promise.allSettled([...this.unloading]);
  }

  /** Baseline plus the estimates of every model loading or loaded. */
  usedBytes(): number {
    let used = this.baseline;
    for (const entry of this.entries.values()) if (entry.state !== "evicting") used += entry.modelBytes;
    return used;
  }

  /** The pool's state, for `GET /api/loaded`. */
  report(): PoolReport {
    const now = Date.now();
    const models: LoadedModelReport[] = [];
    for (const entry of this.entries.values()) {
      const model = this.options.engine.models.find((candidate) => candidate.info.id === entry.id);
      const stats = model?.stats();
      models.push({
        id: entry.id,
        digest: model?.info.digest ?? entry.id,
        ...(entry.base === undefined ? {} : { base: entry.base }),
        state: entry.state,
        estimateBytes: entry.modelBytes,
        estimate: { weightsBytes: entry.estimate.weightsBytes, kvCacheBytes: entry.estimate.kvCacheBytes, computeBytes: entry.estimate.computeBytes },
        contextSize: model?.info.contextSize ?? entry.contextSize ?? null,
        slots: model?.info.slots ?? entry.slots ?? null,
        lastUsedAt: new Date(entry.lastUsed).toISOString(),
        idleSeconds: round((now - Math.max(entry.lastUsed, entry.touched)) / 1000),
        slotsBusy: stats?.slotsBusy ?? 0,
        slotsTotal: stats?.slotsTotal ?? 0,
        queued: stats?.queued ?? 0,
        ...(entry.name === undefined ? {} : { name: entry.name }),
        expiresAt: this.expiresAt(entry, now),
        keepAliveSeconds: entry.keepAliveMs === KEEP_FOREVER ? -1 : entry.keepAliveMs / 1000,
      });
    }
    return {
      budgetBytes: this.budget,
      baselineBytes: this.baseline,
      usedBytes: this.usedBytes(),
      maxLoaded: this.options.maxLoaded ?? 2,
      keepAliveSeconds: this.defaultKeepAlive === KEEP_FOREVER ? -1 : this.defaultKeepAlive / 1000,
      models,
    };
  }

  /**
   * When an entry will unload if no request comes, as Ollama's `expires_at`: a busy model's is its
   * keep-alive from now (Ollama's too); null when it is kept until evicted for room.
   */
  private expiresAt(entry: PoolEntry, now: number): string | null {
    if (entry.keepAliveMs === KEEP_FOREVER) return null;
    const busy = entry.state !== "loaded" || !this.isIdle(entry, Number.POSITIVE_INFINITY);
    return new Date(busy ? now + entry.keepAliveMs : this.expiryOf(entry)).toISOString();
  }

  /** A handle's underlying model was unloaded: load it again (within the budget) for its next generation. */
  reacquire(source: ModelSource): Promise<LoadedModel> {
    return this.load(source);
  }

  /** Stops the expiry timers (the engine unloads the models when it closes). */
  close(): void {
    this.closed = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}
