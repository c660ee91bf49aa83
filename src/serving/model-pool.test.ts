import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OverloadedError } from "../core/errors.js";
import type { Digest } from "../core/digest.js";
import type { Engine, GenerateEvent, LoadedModel, ModelSource, ModelStats } from "../engine/engine.js";
import type { MemoryEstimate } from "../plan/memory-estimate.js";
import { ModelPool } from "./model-pool.js";

const MIB = 1024 * 1024;
const BASELINE = 100 * MIB;

/** A model whose generation runs until `release` is called, so tests can hold it busy. */
class FakeModel implements Partial<LoadedModel> {
  busy = 0;
  readonly info;
  private releases: (() => void)[] = [];
  constructor(id: string) {
    this.info = { id, digest: `sha256:${id.padEnd(64, "0")}` as Digest, path: id, contextSize: 256, trainContextSize: 256, slots: 2, threads: 1, vocabularySize: 8, embeddingSize: 8, loadedAt: 0 };
  }
  stats(): ModelStats {
    return { slotsBusy: this.busy, slotsTotal: 2, queued: 0, finished: { stop: 0, length: 0, aborted: 0 } };
  }
  tokenize(): number[] {
    return [1];
  }
  async *generate(): AsyncGenerator<GenerateEvent, void, void> {
    this.busy++;
    try {
      await new Promise<void>((resolve) => this.releases.push(resolve));
      yield { type: "done", finishReason: "stop", promptTokens: 1, completionTokens: 0, cachedTokens: 0, timeToFirstTokenMs: 0, totalMs: 0 };
    } finally {
      this.busy--;
    }
  }
  release(): void {
    for (const release of this.releases.splice(0)) release();
  }
}

/** An engine that records the largest sum of estimates ever loaded at once. */
class FakeEngine implements Partial<Engine> {
  readonly loaded = new Map<string, FakeModel>();
  peakBytes = 0;
  loads = 0;
  constructor(private readonly sizes: Record<string, number>) {}
  get models(): readonly LoadedModel[] {
    return [...this.loaded.values()] as unknown as LoadedModel[];
  }
  async load(source: ModelSource): Promise<LoadedModel> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (!this.loaded.has(source.id)) {
      this.loads++;
      this.loaded.set(source.id, new FakeModel(source.id));
    }
    const bytes = BASELINE + [...this.loaded.keys()].reduce((sum, id) => sum + this.sizes[id]!, 0);
    this.peakBytes = Math.max(this.peakBytes, bytes);
    return this.loaded.get(source.id) as unknown as LoadedModel;
  }
  async unload(id: string): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.loaded.delete(id);
    // A base's adapter forks ("a+1" on "a") go with it, as NativeEngine's.
    for (const other of [...this.loaded.keys()]) if (other.startsWith(`${id}+`)) this.loaded.delete(other);
  }
}

const SIZES = { a: 300 * MIB, b: 200 * MIB, c: 250 * MIB, huge: 2000 * MIB, "a+1": 10 * MIB, "a+2": 10 * MIB, "a+3": 10 * MIB };

function makePool(options: { budget: number; graceMs?: number; keepAliveMs?: number; maxLoaded?: number }) {
  const engine = new FakeEngine(SIZES);
  const estimate = async (source: ModelSource): Promise<MemoryEstimate> => {
    const bytes = SIZES[source.id as keyof typeof SIZES];
    return { weightsBytes: bytes, kvCacheBytes: 0, computeBytes: 0, baselineBytes: BASELINE, totalBytes: bytes + BASELINE, shape: {} as MemoryEstimate["shape"] };
  };
  const pool = new ModelPool({
    engine: engine as unknown as Engine,
    estimate,
    memoryBudget: options.budget,
    baselineBytes: BASELINE,
    maxLoaded: options.maxLoaded ?? 8,
    graceMs: options.graceMs ?? 0,
    ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
  });
  const source = (id: string): ModelSource => ({ id, path: id, digest: `sha256:${id.padEnd(64, "0")}` as Digest });
  /** An adapter fork "a+1" of base "a". */
  const fork = (id: string): ModelSource => ({ ...source(id), adapters: [{ path: id }], base: source(id.split("+")[0]!) });
  return { engine, pool, source, fork };
}

const isOverloaded = (pattern: RegExp) => (error: unknown) => error instanceof OverloadedError && pattern.test(error.message);

describe("ModelPool: several models under a memory budget", () => {
  test("a budget that fits two of three: rotating evicts the least recently used idle model, never loading past the budget", async () => {
    const budget = BASELINE + SIZES.a + SIZES.c; // the two largest fit together; all three do not
    const { engine, pool, source } = makePool({ budget });
    for (const id of ["a", "b", "c", "a", "b", "c", "b", "a"]) {
      await pool.acquire(source(id));
      assert.ok(pool.usedBytes() <= budget, `used ${pool.usedBytes()} of ${budget}`);
    }
    assert.ok(engine.peakBytes <= budget, `peak ${engine.peakBytes} of ${budget}`);
    assert.deepEqual([...engine.loaded.keys()].sort(), ["a", "b"], "the last two used stay");
    const report = pool.report();
    assert.equal(report.budgetBytes, budget);
    assert.deepEqual(report.models.map((model) => [model.id, model.state, model.estimateBytes]).sort(), [["a", "loaded", SIZES.a], ["b", "loaded", SIZES.b]]);
  });

  test("concurrent requests across three models: each loads or gets a 503, and the loaded estimates never pass the budget", async () => {
    const budget = BASELINE + SIZES.a + SIZES.c;
    const { engine, pool, source } = makePool({ budget });
    const outcomes = await Promise.allSettled(Array.from({ length: 30 }, (_, index) => pool.acquire(source(["a", "b", "c"][index % 3]!))));
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") assert.ok(outcome.reason instanceof OverloadedError, String(outcome.reason));
    }
    assert.ok(outcomes.some((outcome) => outcome.status === "fulfilled"));
    assert.ok(engine.peakBytes <= budget, `peak ${engine.peakBytes} of ${budget}`);
  });

  test("a model too big for the budget alone gets a 503 that says so; nothing is unloaded for it", async () => {
    const { engine, pool, source } = makePool({ budget: BASELINE + 1000 * MIB });
    await pool.acquire(source("a"));
    await assert.rejects(pool.acquire(source("huge")), isOverloaded(/'huge' needs about 2000\.0 MiB .* cannot be loaded under this --memory-budget/));
    assert.deepEqual([...engine.loaded.keys()], ["a"]);
  });

  test("busy models are never evicted: the request gets a 503 until the generation ends, then the model loads", async () => {
    const budget = BASELINE + SIZES.a + SIZES.c;
    const { engine, pool, source } = makePool({ budget });
    const a = await pool.acquire(source("a"));
    await pool.acquire(source("b"));
    const running = a.generate({ promptTokens: [1], maxTokens: 1 });
    const first = running.next();
    await new Promise((resolve) => setImmediate(resolve));
    // b is idle and least recently used → it goes; a is busy and stays.
    await pool.acquire(source("c"));
    assert.deepEqual([...engine.loaded.keys()].sort(), ["a", "c"]);
    const c = await pool.acquire(source("c"));
    const runningC = c.generate({ promptTokens: [1], maxTokens: 1 });
    const firstC = runningC.next();
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(pool.acquire(source("b")), isOverloaded(/Not enough of the memory budget for 'b' now.*busy/));
    assert.deepEqual([...engine.loaded.keys()].sort(), ["a", "c"], "nothing was evicted for the refused request");
    (engine.loaded.get("a") as FakeModel).release();
    await first;
    await running.return(undefined);
    await pool.acquire(source("b"));
    assert.deepEqual([...engine.loaded.keys()].sort(), ["b", "c"]);
    (engine.loaded.get("c") as FakeModel).release();
    await firstC;
  });

  test("a model stays protected for the grace period after a request took it", async () => {
    const budget = BASELINE + SIZES.a + SIZES.b;
    const { pool, source } = makePool({ budget, graceMs: 60_000 });
    await pool.acquire(source("a"));
    await pool.acquire(source("b"));
    await assert.rejects(pool.acquire(source("c")), isOverloaded(/used in the last 60 s/));
  });

  test("a keep-alive frees models idle past it", async () => {
    const { engine, pool, source } = makePool({ budget: 0, keepAliveMs: 50 });
    try {
      await pool.acquire(source("a"));
      assert.equal(engine.loaded.size, 1);
      await pool.unloadIdle();
      assert.equal(engine.loaded.size, 1, "not idle long enough yet");
      await new Promise((resolve) => setTimeout(resolve, 60));
      await pool.unloadIdle();
      assert.equal(engine.loaded.size, 0);
      assert.deepEqual(pool.report().models, []);
    } finally {
      pool.close();
    }
  });

  test("a handle whose model was evicted loads it again for its next generation", async () => {
    const budget = BASELINE + SIZES.a + SIZES.c;
    const { engine, pool, source } = makePool({ budget });
    const a = await pool.acquire(source("a"));
    await pool.acquire(source("b"));
    await pool.acquire(source("c")); // evicts a
    assert.ok(!engine.loaded.has("a"));
    const loads = engine.loads;
    const running = a.generate({ promptTokens: [1], maxTokens: 1 });
    const next = running.next();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.ok(engine.loaded.has("a"));
    assert.equal(engine.loads, loads + 1);
    (engine.loaded.get("a") as FakeModel).release();
    await next;
    assert.ok(engine.peakBytes <= budget);
  });
});

describe("ModelPool: adapter forks on their base", () => {
  test("a fork loads its base first, reserves only its adapter, and takes no place among maxLoaded", async () => {
    const { engine, pool, fork } = makePool({ budget: 0, maxLoaded: 1 });
    await pool.acquire(fork("a+1"));
    await pool.acquire(fork("a+2"));
    assert.deepEqual([...engine.loaded.keys()].sort(), ["a", "a+1", "a+2"]);
    assert.equal(engine.loads, 3);
    assert.equal(pool.usedBytes(), BASELINE + SIZES.a + 2 * SIZES["a+1"]);
    const report = pool.report();
    assert.deepEqual(report.models.map((model) => `${model.id} on ${model.base ?? "-"}`).sort(), ["a on -", "a+1 on a", "a+2 on a"]);
  });

  test("when the budget is short an idle fork is unloaded alone; its base stays", async () => {
    const { engine, pool, fork } = makePool({ budget: BASELINE + SIZES.a + SIZES["a+1"] + 5 * MIB });
    await pool.acquire(fork("a+1"));
    await pool.acquire(fork("a+2"));
    assert.deepEqual([...engine.loaded.keys()].sort(), ["a", "a+2"]);
    assert.ok(engine.peakBytes <= BASELINE + SIZES.a + SIZES["a+1"] + 5 * MIB);
  });

  test("unloading a base unloads its forks; a busy fork keeps its base loaded", async () => {
    const { engine, pool, source, fork } = makePool({ budget: BASELINE + SIZES.a + SIZES["a+1"] + 5 * MIB });
    const busy = await pool.acquire(fork("a+1"));
    const running = busy.generate({ promptTokens: [1], maxTokens: 1 });
    const first = running.next();
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(pool.acquire(source("b")), isOverloaded(/Not enough of the memory budget for 'b' now/));
    assert.deepEqual([...engine.loaded.keys()].sort(), ["a", "a+1"]);
    (engine.loaded.get("a+1") as FakeModel).release();
    await first;
    await running.return(undefined);
    await pool.acquire(source("b"));
    assert.deepEqual([...engine.loaded.keys()], ["b"], "the base and its fork went together");
    assert.deepEqual(pool.report().models.map((model) => model.id), ["b"]);
  });
});

describe("ModelPool: keep_alive (Ollama's meaning)", () => {
  test("the pool's default keeps a model until evicted; the report says so", async () => {
    const { engine, pool, source } = makePool({ budget: 0 });
    await pool.acquire(source("a"));
    await pool.unloadIdle();
    assert.equal(engine.loaded.size, 1);
    const [report] = pool.report().models;
    assert.equal(report?.expiresAt, null);
    assert.equal(report?.keepAliveSeconds, -1);
    assert.equal(pool.report().keepAliveSeconds, -1);
  });

  test("a request's keep-alive replaces the previous one, and the report shows when the model goes", async () => {
    const { pool, source } = makePool({ budget: 0 });
    try {
      const before = Date.now();
      await pool.acquire(source("a"), { keepAliveMs: 60_000, name: "tiny:a" });
      let [report] = pool.report().models;
      assert.equal(report?.name, "tiny:a");
      assert.equal(report?.keepAliveSeconds, 60);
      const expires = Date.parse(report!.expiresAt!);
      assert.ok(expires >= before + 60_000 && expires <= Date.now() + 60_000, report!.expiresAt!);
      await pool.acquire(source("a"), { keepAliveMs: Number.POSITIVE_INFINITY });
      [report] = pool.report().models;
      assert.equal(report?.expiresAt, null);
    } finally {
      pool.close();
    }
  });

  test("keep-alive 0 unloads the model once its request ends, not while it runs", async () => {
    const { engine, pool, source } = makePool({ budget: 0 });
    await pool.acquire(source("a"), { keepAliveMs: 0 });
    pool.track(source("a").id, 1);
    await pool.unloadIdle();
    assert.equal(engine.loaded.size, 1, "a running request keeps it");
    pool.track(source("a").id, -1);
    await pool.unloadIdle();
    assert.equal(engine.loaded.size, 0);
  });

  test("the expiry timer unloads by itself", async () => {
    const { engine, pool, source } = makePool({ budget: 0 });
    await pool.acquire(source("a"), { keepAliveMs: 20 });
    const deadline = Date.now() + 5000;
    while (engine.loaded.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(engine.loaded.size, 0, "unloaded by its timer within 5 s");
  });

  test("expire unloads an idle model now, and a busy one when its requests end", async () => {
    const { engine, pool, source } = makePool({ budget: 0 });
    assert.equal(await pool.expire(source("a").id), false, "not loaded");
    await pool.acquire(source("a"));
    assert.equal(await pool.expire(source("a").id), true);
    assert.equal(engine.loaded.size, 0);
    await pool.acquire(source("b"));
    pool.track(source("b").id, 1);
    assert.equal(await pool.expire(source("b").id), true);
    assert.equal(engine.loaded.size, 1, "busy: still loaded");
    pool.track(source("b").id, -1);
    await pool.unloadIdle();
    assert.equal(engine.loaded.size, 0);
  });
});
