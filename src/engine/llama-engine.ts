import { statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import {
  getLlama,
  LlamaLogLevel,
  resolveChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaModel,
} from "node-llama-cpp";
import { EngineError, GroveError, InvalidModelFileError, ModelNotFoundError } from "../core/errors.js";
import { validateGgufFile } from "../gguf/gguf-validator.js";
import type { Logger } from "../logging/logger.js";
import type { Engine, LoadedModel, ModelSource } from "./engine.js";
import { LlamaLoadedModel } from "./llama-model.js";

export interface LlamaEngineOptions {
  readonly models: readonly ModelSource[];
  /** CPU threads; 0 picks `defaultThreadCount` per model. More threads than cores is 40× slower. */
  readonly threads: number;
  /** Parallel slots per model. @default 4 */
  readonly slots?: number;
  /** Context tokens per slot. @default 2048 */
  readonly contextSize?: number;
  /** Requests that may wait for a slot. @default 64 */
  readonly queueLimit?: number;
  /** `false` forces the CPU; `"auto"` uses a GPU when node-llama-cpp finds one. @default "auto" */
  readonly gpu?: "auto" | false;
  readonly logger?: Logger;
}

const LOG_LEVELS: Record<LlamaLogLevel, "error" | "warn" | "info" | "debug" | "trace"> = {
  [LlamaLogLevel.disabled]: "trace",
  [LlamaLogLevel.fatal]: "error",
  [LlamaLogLevel.error]: "error",
  [LlamaLogLevel.warn]: "warn",
  [LlamaLogLevel.info]: "debug",
  [LlamaLogLevel.log]: "debug",
  [LlamaLogLevel.debug]: "trace",
};

/** Below this many bytes of weights, one thread decodes faster than several (see below). */
export const SINGLE_THREAD_BELOW_BYTES = 1 << 30;

/**
 * The thread count to use when none is configured. node-llama-cpp's prebuilt CPU backend is
 * built without OpenMP, so ggml starts a fresh worker pool for every decode step and its
 * threads spin in barriers until the new worker is scheduled: a fixed cost of several
 * milliseconds per step on a 2-core machine. Measured here (docs/benchmarks.md): a 5 M-parameter
 * model decodes at ~1,000 tok/s on 1 thread and ~60 tok/s on 2; a 1 B-parameter Q8_0 at 23
 * on 1 and 26 on 2. So small models get one thread, large ones every core.
 */
export function defaultThreadCount(modelBytes: number, cores = availableParallelism()): number {
  return modelBytes < SINGLE_THREAD_BELOW_BYTES ? 1 : Math.max(1, cores);
}

/**
 * The local engine: node-llama-cpp (llama.cpp) in this process. Models load at start or on
 * first use; every file is validated by Grove before llama.cpp opens it, because some
 * malformed GGUFs abort the whole process.
 */
export class LlamaEngine implements Engine {
  private readonly loaded = new Map<string, { instance: LlamaLoadedModel; model: LlamaModel; context: LlamaContext }>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();

  private constructor(
    private readonly llama: Llama,
    private readonly options: LlamaEngineOptions,
  ) {}

  get models(): readonly LoadedModel[] {
    return [...this.loaded.values()].map((entry) => entry.instance);
  }

  /** Starts llama.cpp and loads the given models; on failure frees whatever was loaded. */
  static async create(options: LlamaEngineOptions): Promise<LlamaEngine> {
    const logger = options.logger;
    let llama: Llama;
    try {
      llama = await getLlama({
        gpu: options.gpu ?? "auto",
        build: "never",
        maxThreads: options.threads > 0 ? options.threads : availableParallelism(),
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => logger?.[LOG_LEVELS[level]]({ source: "llama.cpp" }, message.trimEnd()),
      });
    } catch (error) {
      throw new EngineError("Could not start llama.cpp (node-llama-cpp found no usable binary)", { cause: error });
    }
    const engine = new LlamaEngine(llama, options);
    try {
      for (const source of options.models) await engine.load(source);
    } catch (error) {
      await engine.close();
      throw error;
    }
    return engine;
  }

  getModel(id: string): LoadedModel {
    const entry = this.loaded.get(id);
    if (!entry) throw new ModelNotFoundError(id);
    return entry.instance;
  }

  /** Loads a model under `source.id`, once: concurrent calls for the same id share the load. */
  load(source: ModelSource): Promise<LoadedModel> {
    const entry = this.loaded.get(source.id);
    if (entry) return Promise.resolve(entry.instance);
    let pending = this.loading.get(source.id);
    if (!pending) {
      pending = (async () => {
        const threads =
          this.options.threads > 0 ? this.options.threads : defaultThreadCount(statSync(source.path).size);
        this.options.logger?.info({ model: source.id, threads }, "loading model");
        const loadedOne = await loadOne(this.llama, source, { ...this.options, threads });
        this.loaded.set(source.id, { instance: loadedOne.instance, model: loadedOne.model, context: loadedOne.context });
        return loadedOne.instance;
      })().finally(() => this.loading.delete(source.id));
      this.loading.set(source.id, pending);
    }
    return pending;
  }

  /** Frees a loaded model. */
  async unload(id: string): Promise<void> {
    const entry = this.loaded.get(id);
    if (!entry) return;
    this.loaded.delete(id);
    await entry.instance.dispose();
    await entry.context.dispose();
    await entry.model.dispose();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    for (const id of [...this.loaded.keys()]) await this.unload(id);
    await this.llama.dispose();
  }
}

async function loadOne(
  llama: Llama,
  source: ModelSource,
  options: LlamaEngineOptions,
): Promise<{ model: LlamaModel; context: LlamaContext; instance: LlamaLoadedModel }> {
  if ((await validateGgufFile(source.path)).adapterType !== undefined) {
    throw new InvalidModelFileError(`${basename(source.path)} is an adapter, not a model: serve it as a fork of its base (grove import --base)`);
  }
  const adapters = source.adapters ?? [];
  for (const adapter of adapters) {
    // Malformed adapters can abort the process inside llama.cpp too.
    if ((await validateGgufFile(adapter.path)).adapterType === undefined) throw new InvalidModelFileError(`${basename(adapter.path)} is not an adapter`);
  }
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: source.path });
  } catch (error) {
    throw new EngineError(`llama.cpp could not load ${basename(source.path)}`, { cause: error });
  }
  const slots = source.slots ?? options.slots ?? 4;
  const contextSize = source.contextSize ?? options.contextSize ?? 2048;
  let context: LlamaContext;
  try {
    context = await model.createContext({
      sequences: slots,
      contextSize,
      threads: options.threads,
      failedCreationRemedy: false,
      ...(adapters.length === 0 ? {} : { lora: { adapters: adapters.map((adapter) => ({ filePath: adapter.path, scale: adapter.scale ?? 1 })) } }),
    });
  } catch (error) {
    await model.dispose();
    if (error instanceof GroveError) throw error;
    throw new EngineError(
      `Could not create a context of ${slots} slots × ${contextSize} tokens for ${basename(source.path)}${adapters.length === 0 ? "" : " with its adapter"}`,
      { cause: error },
    );
  }
  const instance = new LlamaLoadedModel({
    info: {
      id: source.id,
      digest: source.digest,
      path: source.path,
      ...(adapters.length === 0 ? {} : { adapters }),
      contextSize: context.contextSize,
      trainContextSize: model.trainContextSize,
      slots,
      threads: options.threads,
      vocabularySize: vocabularySizeOf(model),
      embeddingSize: model.embeddingVectorSize,
      loadedAt: Math.floor(Date.now() / 1000),
    },
    llama,
    model,
    context,
    chatWrapper: resolveChatWrapper(model),
    queueLimit: options.queueLimit ?? 64,
    threads: options.threads,
  });
  return { model, context, instance };
}

function vocabularySizeOf(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : 0;
}
