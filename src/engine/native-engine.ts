import { statSync } from "node:fs";
import { defaultContextSize } from "../core/context-size.js";
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { Worker } from "node:worker_threads";
import { ConfigError, EngineError, GroveError, InvalidModelFileError, ModelNotFoundError } from "../core/errors.js";
import { checkAdapter } from "../store/adapter-check.js";
import { validateGgufFile } from "../gguf/gguf-validator.js";
import type { Logger } from "../logging/logger.js";
import { loadLibllamaFfi } from "../native/libllama.js";
import { chooseLibraries, type LibrarySet } from "../native/library-directory.js";
import { CACHE_TYPES, NativeModel } from "../native/native-model.js";
import type { DecodeWorkerData, FromWorker } from "./decode-protocol.js";
import { AdapterForkModel } from "./adapter-fork-model.js";
import type { EmbeddingPooling, Engine, LoadedModel, ModelAdapter, ModelSource } from "./engine.js";
import { NativeLoadedModel } from "./native-loaded-model.js";

/** KV cache types `--cache-type-k` / `--cache-type-v` take. */
export type CacheType = keyof typeof CACHE_TYPES;

export interface NativeEngineOptions {
  readonly models: readonly ModelSource[];
  /** CPU threads; 0 picks {@link defaultThreadCount} per model. More threads than cores is many times slower. */
  readonly threads: number;
  /** Parallel slots per model. @default 4 */
  readonly slots?: number;
  /** Context tokens per slot; with `unifiedKv`, of the one cache all slots share. @default 2048, or the model's training context when smaller */
  readonly contextSize?: number;
  /**
   * One KV cache of `contextSize` tokens shared by a model's slots (llama-server's `--kv-unified`)
   * instead of one each: a slot may use the whole context while the others leave room. When it is
   * full, idle slots' caches are dropped, then every running generation fails. @default false
   */
  readonly unifiedKv?: boolean;
  /** Requests that may wait for a slot. @default 64 */
  readonly queueLimit?: number;
  /** `false` forces the CPU libraries; `"auto"` uses a GPU build when node-llama-cpp finds a usable GPU. @default "auto" */
  readonly gpu?: "auto" | false;
  /** Layers offloaded to the GPU; -1 all. Ignored on the CPU. @default -1 with a GPU */
  readonly gpuLayers?: number;
  /** KV cache types. @default "f16" */
  readonly cacheTypeK?: CacheType;
  readonly cacheTypeV?: CacheType;
  /** Flash attention: auto (llama.cpp decides), on, off. @default "auto" */
  readonly flashAttention?: "auto" | "on" | "off";
  /** Most tokens one decode takes. @default 2048 */
  readonly batchSize?: number;
  /** Tokens computed at once within a decode. @default 512 */
  readonly ubatchSize?: number;
  /** Prompt tokens per step while other slots generate. @default 512 */
  readonly prefillChunk?: number;
  /** Busy-wait level (0–100) of the persistent thread pool; null attaches none (ggml starts threads per graph). @default 0 */
  readonly threadpoolPoll?: number | null;
  /** Map model files (`on`), read them (`off`), or map them only when a GPU takes the weights (`auto`). @default "auto" */
  readonly mmap?: "auto" | "on" | "off";
  /** A chat template used instead of every loaded model's own (`--chat-template`, `--chat-template-file`): Jinja, or the name of one of llama.cpp's built-in formats. */
  readonly chatTemplate?: string;
  /** llama-server's `--reasoning`: `off` renders templates with `enable_thinking` false. @default "auto" */
  readonly reasoning?: "auto" | "on" | "off";
  /** Pooling of embeddings (`--pooling`); undefined: each model's own, or its last token's vector when it has none. */
  readonly pooling?: EmbeddingPooling;
  /** Seed of every generation that sets none (`--seed`); undefined: a new one each. */
  readonly seed?: number;
  /**
   * How often text goes from the decode thread to the main thread, ms (a first token, an ending
   * or an error at once). Each hand-over wakes the main thread, which on a small machine preempts
   * a compute thread: for a fast model, once per token cost a quarter of its decode speed.
   * @default 5
   */
  readonly flushMs?: number;
  /** Load these libraries instead (a reference build of the same llama.cpp). */
  readonly libraryDirectory?: string;
  readonly logger?: Logger;
}

/** llama.cpp's `enum llama_pooling_type` values. */
const POOLING_TYPES: Record<EmbeddingPooling, number> = { none: 0, mean: 1, cls: 2, last: 3 };

/** Below this many bytes of weights, one thread is the default (a step is too short to share). */
export const SINGLE_THREAD_BELOW_BYTES = 1 << 30;

/**
 * The thread count to use when none is configured: 1 for models under 1 GiB of weights, else
 * every core. With small models a decode step takes well under a millisecond, and splitting it
 * across threads costs more in synchronisation than it saves (docs/benchmarks.md).
 */
export function defaultThreadCount(modelBytes: number, cores = availableParallelism()): number {
  return modelBytes < SINGLE_THREAD_BELOW_BYTES ? 1 : Math.max(1, cores);
}

const LOG_LEVELS = { 3: "warn", 4: "error" } as const;
let logTarget: Logger | undefined;
let logInstalled = false;

/**
 * Routes llama.cpp's log (process-wide) to the logger: warnings and errors only. Installed on
 * the main thread, which never waits on a decode thread, so a line logged from one is queued here
 * without a deadlock.
 */
async function installLog(logger: Logger | undefined, directory: string): Promise<void> {
  logTarget = logger ?? logTarget;
  if (logInstalled) return;
  const lib = await loadLibllamaFfi(directory);
  const callback = lib.koffi.register((level: number, text: string) => {
    const method = LOG_LEVELS[level as 3 | 4];
    if (method !== undefined && text.trim() !== "") logTarget?.[method]({ source: "llama.cpp" }, text.trimEnd());
  }, lib.koffi.pointer(lib.logCallback));
  lib.fn.llama_log_set!(callback, null);
  logInstalled = true;
}

/**
 * The local engine: Grove's own decode loop on llama.cpp's C API (decode-loop.ts), one worker
 * thread per loaded model. Every file is validated by Grove before llama.cpp opens it, because
 * some malformed GGUFs abort the whole process.
 */
export class NativeEngine implements Engine {
  readonly #loaded = new Map<string, NativeLoadedModel>();
  /** Adapter forks, each on a model of `#loaded`. */
  readonly #forks = new Map<string, AdapterForkModel>();
  readonly #loading = new Map<string, Promise<LoadedModel>>();
  readonly #options: NativeEngineOptions;
  readonly #libraries: LibrarySet;

  private constructor(options: NativeEngineOptions, libraries: LibrarySet) {
    this.#options = options;
    this.#libraries = libraries;
  }

  /** The loaded models, then the adapter forks served on them. */
  get models(): readonly LoadedModel[] {
    return [...this.#loaded.values(), ...this.#forks.values()];
  }

  /** The libraries in use and the GPU they drive. */
  get libraries(): LibrarySet {
    return this.#libraries;
  }

  /** Loads llama.cpp's libraries and the given models; on failure frees whatever was loaded. */
  static async create(options: NativeEngineOptions): Promise<NativeEngine> {
    let libraries: LibrarySet;
    try {
      libraries = options.libraryDirectory !== undefined ? { directory: options.libraryDirectory, gpu: false } : await chooseLibraries(options.gpu ?? "auto");
      await installLog(options.logger, libraries.directory);
    } catch (error) {
      throw new EngineError("Could not load llama.cpp's libraries", { cause: error });
    }
    const engine = new NativeEngine(options, libraries);
    try {
      for (const source of options.models) await engine.load(source);
    } catch (error) {
      await engine.close();
      throw error;
    }
    return engine;
  }

  getModel(id: string): LoadedModel {
    const entry = this.#loaded.get(id) ?? this.#forks.get(id);
    if (!entry) throw new ModelNotFoundError(id);
    return entry;
  }

  /**
   * Loads a model under `source.id`, once: concurrent calls for the same id share the load. An
   * adapter fork (`source.base`) runs on its base's load (loaded first when it is not) with its
   * adapters attached there, each file once.
   */
  load(source: ModelSource): Promise<LoadedModel> {
    const entry = this.#loaded.get(source.id) ?? this.#forks.get(source.id);
    if (entry) return Promise.resolve(entry);
    let pending = this.#loading.get(source.id);
    if (!pending) {
      pending = (source.base === undefined ? this.#loadOne(source) : this.#loadFork(source, source.base)).finally(() => this.#loading.delete(source.id));
      this.#loading.set(source.id, pending);
    }
    return pending;
  }

  /** An adapter fork: its base (loaded, or loaded now) with the fork's adapters attached. */
  async #loadFork(source: ModelSource, baseSource: ModelSource): Promise<LoadedModel> {
    const adapters = source.adapters ?? [];
    if (baseSource.base !== undefined || adapters.length === 0) {
      throw new ConfigError(`${source.id} names a base to run on but ${adapters.length === 0 ? "no adapter" : "that base is itself an adapter fork"}`);
    }
    // Before llama.cpp sees them (a malformed adapter can abort the process) and before the base loads.
    for (const adapter of adapters) await checkServedAdapter(adapter, baseSource);
    const loaded = await this.load(baseSource);
    const base = this.#loaded.get(baseSource.id);
    if (base === undefined || base !== loaded) throw new EngineError(`The base of ${source.id} was unloaded while it loaded; retry`);
    const attached: string[] = [];
    try {
      for (const adapter of adapters) {
        await base.attachAdapter(adapter.path, adapter.path);
        attached.push(adapter.path);
      }
    } catch (error) {
      for (const key of attached) if (!this.#adapterInUse(base, key)) base.detachAdapter(key);
      throw new EngineError(`Could not load the adapter of ${source.id} on its base: ${(error as Error).message}`, { cause: error });
    }
    if (this.#loaded.get(baseSource.id) !== base) throw new EngineError(`The base of ${source.id} was unloaded while its adapter loaded; retry`);
    const fork = new AdapterForkModel(
      { ...base.info, id: source.id, digest: source.digest, adapters, adapterKeys: adapters.map((adapter) => adapter.path), base: base.info.id, loadedAt: Math.floor(Date.now() / 1000) },
      base,
      adapters.map((adapter) => ({ key: adapter.path, scale: adapter.scale ?? 1 })),
    );
    this.#forks.set(source.id, fork);
    this.#options.logger?.info({ model: source.id, base: base.info.id, adapters: adapters.length }, "serving an adapter fork on its base");
    return fork;
  }

  /** True when another fork on `base` applies the adapter `key`. */
  #adapterInUse(base: LoadedModel, key: string): boolean {
    for (const fork of this.#forks.values()) if (fork.base === base && fork.adapters.some((adapter) => adapter.key === key)) return true;
    return false;
  }

  async #loadOne(source: ModelSource): Promise<LoadedModel> {
    const options = this.#options;
    const summary = await validateGgufFile(source.path);
    if (summary.adapterType !== undefined) {
      throw new InvalidModelFileError(`${basename(source.path)} is an adapter, not a model: serve it as a fork of its base (grove import --base)`);
    }
    if ((source.adapters ?? []).length > 0) throw new ConfigError(`${source.id} has adapters but no base to run them on (ModelSource.base)`);
    const threads = options.threads > 0 ? options.threads : defaultThreadCount(statSync(source.path).size);
    const slots = source.slots ?? options.slots ?? 4;
    const contextSize = source.contextSize ?? options.contextSize ?? defaultContextSize(summary.contextLength);
    const batchSize = options.batchSize ?? 2048;
    // A step takes the next token of every generating slot, so they must fit in one batch.
    if (batchSize < slots) {
      throw new ConfigError(`--batch-size ${batchSize} is below the ${slots} slots of ${source.id}: a decode step holds one token of every slot; raise --batch-size or lower --parallel`, { param: "--batch-size" });
    }
    options.logger?.info({ model: source.id, threads, slots, contextSize, gpu: this.#libraries.gpu }, "loading model");
    let vocabulary: NativeModel;
    try {
      vocabulary = await NativeModel.load(source.path, { vocabOnly: true, libraryDirectory: this.#libraries.directory });
    } catch (error) {
      throw new EngineError(`llama.cpp could not load ${basename(source.path)}`, { cause: error });
    }
    const signal = new SharedArrayBuffer(4);
    const data: DecodeWorkerData = {
      path: source.path,
      slots,
      contextSize,
      unifiedKv: options.unifiedKv ?? false,
      threads,
      batchSize,
      ubatchSize: options.ubatchSize ?? 512,
      prefillChunk: options.prefillChunk ?? 512,
      cacheTypeK: CACHE_TYPES[options.cacheTypeK ?? "f16"],
      cacheTypeV: CACHE_TYPES[options.cacheTypeV ?? "f16"],
      flashAttention: { auto: -1, on: 1, off: 0 }[options.flashAttention ?? "auto"],
      gpuLayers: this.#libraries.gpu === false ? 0 : (options.gpuLayers ?? -1),
      mmap: options.mmap === "on" || ((options.mmap ?? "auto") === "auto" && this.#libraries.gpu !== false),
      poolingType: options.pooling === undefined ? -1 : POOLING_TYPES[options.pooling],
      threadpoolPoll: options.threadpoolPoll === null ? undefined : (options.threadpoolPoll ?? 0),
      libraryDirectory: this.#libraries.directory,
      flushMs: options.flushMs ?? 5,
      signal,
    };
    const worker = new Worker(new URL("./decode-worker.js", import.meta.url), { workerData: data });
    let ready: Extract<FromWorker, { type: "ready" }>;
    const listeners: { message?: (message: FromWorker) => void; error?: (error: Error) => void; exit?: (code: number) => void } = {};
    try {
      ready = await new Promise((resolve, reject) => {
        listeners.message = (message: FromWorker) => {
          if (message.type === "ready") resolve(message);
          else if (message.type === "failed" && message.id === null) reject(new EngineError(message.message));
        };
        listeners.error = reject;
        listeners.exit = (code) => reject(new EngineError(`the decode thread exited with code ${code} while loading`));
        worker.on("message", listeners.message).on("error", listeners.error).on("exit", listeners.exit);
      });
    } catch (error) {
      await worker.terminate();
      vocabulary.free();
      if (error instanceof GroveError) {
        throw new EngineError(
          `Could not load ${basename(source.path)} with ${slots} slots × ${contextSize} tokens: ${error.message}`,
          { cause: error },
        );
      }
      throw new EngineError(`Could not load ${basename(source.path)}`, { cause: error });
    }
    // Only these: Worker keeps listeners of its own (removeAllListeners would stop its message port).
    worker.off("message", listeners.message!).off("error", listeners.error!).off("exit", listeners.exit!);
    let model: NativeLoadedModel;
    try {
      model = new NativeLoadedModel({
        info: {
          id: source.id,
          digest: source.digest,
          path: source.path,
          contextSize: ready.contextSize,
          ...(options.unifiedKv ? { unifiedKv: true } : {}),
          trainContextSize: ready.trainContextSize,
          slots,
          threads,
          vocabularySize: vocabulary.vocabularySize,
          embeddingSize: ready.embeddingSize,
          ...(options.pooling === undefined ? {} : { pooling: options.pooling }),
          loadedAt: Math.floor(Date.now() / 1000),
        },
        vocabulary,
        worker,
        signal,
        queueLimit: options.queueLimit ?? 64,
        ...(options.chatTemplate === undefined ? {} : { chatTemplate: options.chatTemplate }),
        ...(options.reasoning === undefined ? {} : { reasoning: options.reasoning }),
        ...(options.seed === undefined ? {} : { seed: options.seed }),
      });
    } catch (error) {
      // A chat template that does not parse refuses the load: the decode thread must not outlive it.
      await worker.terminate();
      vocabulary.free();
      throw error;
    }
    worker.on("error", (error) => {
      options.logger?.error({ err: error, model: source.id }, "the decode thread failed");
      model.fail(error.message);
    });
    worker.on("exit", (code) => {
      if (this.#loaded.get(source.id) === model) {
        this.#loaded.delete(source.id);
        this.#dropForks(model);
        options.logger?.error({ model: source.id, code }, "the decode thread exited");
      }
      model.fail(`the decode thread exited (code ${code})`);
    });
    this.#loaded.set(source.id, model);
    return model;
  }

  /**
   * Frees a loaded model with every adapter fork on it; for an adapter fork, detaches its adapters
   * (those no other fork applies) and leaves the base loaded.
   */
  async unload(id: string): Promise<void> {
    const fork = this.#forks.get(id);
    if (fork !== undefined) {
      this.#forks.delete(id);
      for (const adapter of fork.adapters) {
        if (!this.#adapterInUse(fork.base, adapter.key)) (fork.base as NativeLoadedModel).detachAdapter(adapter.key);
      }
      return;
    }
    const entry = this.#loaded.get(id);
    if (!entry) return;
    this.#loaded.delete(id);
    this.#dropForks(entry);
    await entry.dispose();
  }

  /** Forgets the forks of a base that is going (llama.cpp frees their adapters with the model). */
  #dropForks(base: LoadedModel): void {
    for (const [id, fork] of this.#forks) if (fork.base === base) this.#forks.delete(id);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#loading.values()]);
    for (const id of [...this.#loaded.keys()]) await this.unload(id);
  }
}

/**
 * Checks an adapter before it is loaded on a base: the file is there, is a valid LoRA adapter GGUF
 * and fits the base (architecture, every tensor pair's shape, and a recorded base digest equal to
 * the base's — the import's check, made again because the files are what llama.cpp reads now).
 * Messages name files, never their directories.
 * @throws InvalidModelFileError for a missing or malformed file, InvalidRequestError (param `base`) when it does not fit
 */
async function checkServedAdapter(adapter: ModelAdapter, base: ModelSource): Promise<void> {
  const file = basename(adapter.path);
  try {
    await stat(adapter.path);
  } catch (error) {
    throw new InvalidModelFileError(`The adapter file ${file} is missing`, { cause: error });
  }
  if ((await validateGgufFile(adapter.path)).adapterType === undefined) throw new InvalidModelFileError(`${file} is not an adapter`);
  await checkAdapter(adapter.path, { path: base.path, digest: base.digest, label: base.id });
}
