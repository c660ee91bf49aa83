import { existsSync } from "node:fs";
import { basename } from "node:path";
import type { FastifyInstance } from "fastify";
import type { GroveConfig } from "./config/config.js";
import { ConfigError, InvalidRequestError, ModelNotFoundError } from "./core/errors.js";
import type { Engine } from "./engine/engine.js";
import { LlamaEngine } from "./engine/llama-engine.js";
import { generateModel } from "./forge/generate/generate-model.js";
import { JobRunner } from "./forge/jobs/job-runner.js";
import { TrainingFiles } from "./forge/jobs/training-files.js";
import type { Logger } from "./logging/logger.js";
import { EngineCatalog, type ModelCatalog } from "./server/model-catalog.js";
import { checkBindSafety, createServer } from "./server/server.js";
import { StoreCatalog } from "./server/store-catalog.js";
import { digestOfFile } from "./store/file-digest.js";
import { ModelStore } from "./store/model-store.js";

/** The embedded default model `npm start` serves when none is configured. */
export const DEFAULT_MODEL = { name: "grove-small:latest", id: "grove-small", preset: "small", seed: 1, dtype: "f16" } as const;

/**
 * The composition root: the only place that builds the store, the engine and the server
 * from the configuration. The CLI and the integration tests both start Grove through it.
 */
export interface RunningGrove {
  readonly engine: Engine;
  readonly store: ModelStore;
  /** Runs forge jobs (quantize, merge, fine-tune) for the HTTP API; absent when serving a single file. */
  readonly jobs?: JobRunner;
  readonly app: FastifyInstance;
  /** `http://HOST:PORT`, with the port the OS picked when asked for 0. */
  readonly url: string;
  /** The name the first model is served under. */
  readonly defaultModel: string;
  close(): Promise<void>;
}

/** Puts the embedded default model into the store once (generated, then imported); returns its name. */
export async function ensureDefaultModel(store: ModelStore, logger?: Logger): Promise<string> {
  try {
    await store.resolve(DEFAULT_MODEL.name);
    return DEFAULT_MODEL.id;
  } catch (error) {
    if (!(error instanceof ModelNotFoundError)) throw error;
  }
  logger?.info({ name: DEFAULT_MODEL.name }, "creating the embedded default model (once)");
  const path = await store.blobs.createTempPath();
  await generateModel({ preset: DEFAULT_MODEL.preset, seed: DEFAULT_MODEL.seed, dtype: DEFAULT_MODEL.dtype, outPath: path });
  await store.importFile(path, { name: DEFAULT_MODEL.name, mode: "move" });
  return DEFAULT_MODEL.id;
}

interface Serving {
  readonly catalog: ModelCatalog;
  readonly defaultModel: string;
  /** True when the whole store is served (not a single `--model FILE`). */
  readonly fromStore: boolean;
}

/**
 * What to serve. `--model FILE` serves that file alone under its base name; `--model REF`
 * (or nothing: the embedded default) serves the whole store, with that model loaded first.
 */
async function chooseServing(config: GroveConfig, store: ModelStore, engine: Engine, logger?: Logger): Promise<Serving> {
  if (config.model && existsSync(config.model)) {
    const id = basename(config.model).replace(/\.gguf$/i, "");
    await engine.load({ id, path: config.model, digest: await digestOfFile(config.model) });
    return { catalog: new EngineCatalog(engine), defaultModel: id, fromStore: false };
  }
  const catalog = new StoreCatalog({ store, engine, maxLoaded: config.maxModels });
  let name: string;
  if (config.model) {
    name = config.model;
    if (/[/\\]|\.gguf$/i.test(name)) {
      throw new InvalidRequestError(`Model file ${name} does not exist`, { param: "--model" });
    }
    try {
      await store.resolve(name);
    } catch (error) {
      throw new InvalidRequestError(`--model ${name} is neither a file nor a model in the store (${error instanceof Error ? error.message : String(error)})`, {
        param: "--model",
        cause: error,
      });
    }
  } else {
    name = await ensureDefaultModel(store, logger);
  }
  await catalog.get(name);
  return { catalog, defaultModel: name, fromStore: true };
}

/** Opens the store, loads the model, starts the HTTP server and returns once it listens. */
export async function startGrove(config: GroveConfig, logger?: Logger): Promise<RunningGrove> {
  checkBindSafety(config.host, config.apiKey);
  const store = await ModelStore.open(config.home);
  let engine: Engine | undefined;
  let jobs: JobRunner | undefined;
  try {
    engine = await LlamaEngine.create({
      models: [],
      threads: config.threads,
      slots: config.parallel,
      contextSize: config.contextSize,
      queueLimit: config.queueLimit,
      logger,
    });
    const { catalog, defaultModel, fromStore } = await chooseServing(config, store, engine, logger);
    if (fromStore) jobs = await JobRunner.open(store, { ...(config.threads > 0 ? { threads: config.threads } : {}), ...(logger === undefined ? {} : { logger }) });
    const forge = jobs === undefined ? undefined : { runner: jobs, files: new TrainingFiles(store.home) };
    const app = createServer({ engine, catalog, store, forge, bodyLimit: config.bodyLimit, apiKey: config.apiKey || undefined, logger });
    try {
      await app.listen({ host: config.host, port: config.port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
        throw new ConfigError(
          `Cannot listen on ${config.host}:${config.port} (${code}): choose another --port (GROVE_PORT), or 0 for any free port`,
          { param: "--port", cause: error },
        );
      }
      throw error;
    }
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    const running = engine;
    const runner = jobs;
    return {
      engine: running,
      store,
      ...(runner === undefined ? {} : { jobs: runner }),
      app,
      url: `http://${host}:${port}`,
      defaultModel,
      async close() {
        // Jobs first: cancelling them ends their event streams, which app.close would wait for.
        await runner?.close();
        await app.close();
        await running.close();
        await store.close();
      },
    };
  } catch (error) {
    await jobs?.close();
    await engine?.close();
    await store.close();
    throw error;
  }
}
