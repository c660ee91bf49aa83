import { statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { Worker } from "node:worker_threads";
import { ConfigError, EngineError, GroveError, InvalidModelFileError, ModelNotFoundError } from "../core/errors.js";
import { validateGgufFile } from "../gguf/gguf-validator.js";
import type { Logger } from "../logging/logger.js";
import { loadLibllamaFfi } from "../native/libllama.js";
import { chooseLibraries, type LibrarySet } from "../native/library-directory.js";
import { CACHE_TYPES, NativeModel } from "../native/native-model.js";
import type { DecodeWorkerData, FromWorker } from "./decode-protocol.js";
import type { EmbeddingPooling, Engine, LoadedModel, ModelSource } from "./engine.js";
import { NativeLoadedModel } from "./native-loaded-model.js";

/** KV cache types `--cache-type-k` / `--cache-type-v` take. */
export type CacheType = keyof typeof CACHE_TYPES;

export interface NativeEngineOptions {
  readonly models: readonly ModelSource[];
  /** CPU threads; 0 picks {@link defaultThreadCount} per model. More threads than cores is many times slower. */
  readonly threads: number;
  /** Parallel slots per model. @default 4 */
  readonly slots?: number;
  /** Context tokens per slot; with `unifiedKv`, of the one cache all slots share. @default 2048 */
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
  readonly #loading = new Map<string, Promise<LoadedModel>>();
  readonly #options: NativeEngineOptions;
  readonly #libraries: LibrarySet;

  private constructor(options: NativeEngineOptions, libraries: LibrarySet) {
    this.#options = options;
    this.#libraries = libraries;
  }

  get models(): readonly LoadedModel[] {
    return [...this.#loaded.values()];
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
    const entry = this.#loaded.get(id);
    if (!entry) throw new ModelNotFoundError(id);
    return entry;
  }

  /** Loads a model under `source.id`, once: concurrent calls for the same id share the load. */
  load(source: ModelSource): Promise<LoadedModel> {
    const entry = this.#loaded.get(source.id);
    if (entry) return Promise.resolve(entry);
    let pending = this.#loading.get(source.id);
    if (!pending) {
      pending = this.#loadOne(source).finally(() => this.#loading.delete(source.id));
      this.#loading.set(source.id, pending);
    }
    return pending;
  }

  async #loadOne(source: ModelSource): Promise<LoadedModel> {
    const options = this.#options;
    if ((await validateGgufFile(source.path)).adapterType !== undefined) {
      throw new InvalidModelFileError(`${basename(source.path)} is an adapter, not a model: serve it as a fork of its base (grove import --base)`);
    }
    const adapters = source.adapters ?? [];
    for (const adapter of adapters) {
      // Malformed adapters can abort the process inside llama.cpp too.
      if ((await validateGgufFile(adapter.path)).adapterType === undefined) throw new InvalidModelFileError(`${basename(adapter.path)} is not an adapter`);
    }
    const threads = options.threads > 0 ? options.threads : defaultThreadCount(statSync(source.path).size);
    const slots = source.slots ?? options.slots ?? 4;
    const contextSize = source.contextSize ?? options.contextSize ?? 2048;
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
      adapters: adapters.map((adapter) => ({ path: adapter.path, scale: adapter.scale ?? 1 })),
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
          `Could not load ${basename(source.path)} with ${slots} slots × ${contextSize} tokens${adapters.length === 0 ? "" : " and its adapter"}: ${error.message}`,
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
          ...(adapters.length === 0 ? {} : { adapters }),
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
        options.logger?.error({ model: source.id, code }, "the decode thread exited");
      }
      model.fail(`the decode thread exited (code ${code})`);
    });
    this.#loaded.set(source.id, model);
    return model;
  }

  /** Frees a loaded model. */
  async unload(id: string): Promise<void> {
    const entry = this.#loaded.get(id);
    if (!entry) return;
    this.#loaded.delete(id);
    await entry.dispose();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#loading.values()]);
    for (const id of [...this.#loaded.keys()]) await this.unload(id);
  }
}
