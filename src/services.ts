import { existsSync, mkdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import type { GroveConfig } from "./config/config.js";
import { ConfigError, InvalidRequestError, ModelNotFoundError } from "./core/errors.js";
import { importShippedFamily, SHIPPED_FAMILY_DIR } from "./demo/embedded.js";
import { MANIFEST_FILE } from "./demo/ship.js";
import type { Engine, ModelSource } from "./engine/engine.js";
import { NativeEngine } from "./engine/native-engine.js";
import { generateModel } from "./forge/generate/generate-model.js";
import { Gateway } from "./gateway/gateway.js";
import { openRateLimiter, openServiceStore, type ClosableRateLimiter } from "./gateway/open-service-store.js";
import { ReservationSweeper } from "./gateway/reservation-sweeper.js";
import { JobRunner } from "./forge/jobs/job-runner.js";
import { TrainingFiles } from "./forge/jobs/training-files.js";
import type { Logger } from "./logging/logger.js";
import { EngineCatalog, type AdapterEntry, type FileAdapters, type ModelCatalog } from "./serving/model-catalog.js";
import { checkBindSafety, createServer } from "./server/server.js";
import { WEB_APP_DIR, webAppBuilt } from "./server/web-app.js";
import { StoreCatalog } from "./serving/store-catalog.js";
import { SqliteUpstreamStore } from "./gateway/sqlite-upstream-store.js";
import { shutdownOf } from "./server/graceful-shutdown.js";
import { UpstreamCatalog } from "./serving/upstream-catalog.js";
import { UpstreamRouter } from "./serving/upstream-router.js";
import { digestOfFile } from "./store/file-digest.js";
import { HubClient } from "./store/hub/hub-client.js";
import { openResults } from "./results/open-results.js";
import type { ResultStore } from "./results/result-store.js";
import { ModelStore } from "./store/model-store.js";
import { readBoundedFile } from "./store/bounded-file.js";

/** The generated default model `npm start` serves when no demo family is shipped. */
export const DEFAULT_MODEL = { name: "grove-small:latest", id: "grove-small", preset: "small", seed: 1, dtype: "f16" } as const;

/**
 * The composition root: the only place that builds the store, the engine and the server
 * from the configuration. The CLI and the integration tests both start Grove through it.
 */
export interface RunningGrove {
  readonly engine: Engine;
  readonly store: ModelStore;
  /** Measurements (`<home>/results.db`, or the shared PostgreSQL database with `--database`), opened once here. */
  readonly results: ResultStore;
  /** Runs forge jobs (quantize, merge, fine-tune) for the HTTP API; absent when serving a single file. */
  readonly jobs?: JobRunner;
  readonly app: FastifyInstance;
  /** Keys, limits, budgets and usage (`<home>/service.db`, or PostgreSQL + Redis with `--database`/`--redis`). */
  readonly gateway: Gateway;
  /** `http://HOST:PORT`, with the port the OS picked when asked for 0. */
  readonly url: string;
  /** The name the first model is served under. */
  readonly defaultModel: string;
  /** True when the web app is served at `/` (see {@link resolveWebRoot}). */
  readonly webApp: boolean;
  /** Names routed to external engines (`grove upstream add`), health-checked every `--upstream-health-interval`. */
  readonly upstreams: UpstreamRouter;
  /** Closes at once: requests still in flight are waited for without limit. */
  close(): Promise<void>;
  /**
   * Graceful stop (SIGTERM/SIGINT): stops accepting, lets in-flight requests finish for `graceMs`,
   * cancels the rest (their usage recorded as cancelled), then closes everything.
   * @default graceMs the configured `--shutdown-grace`
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** Options of {@link ensureDefaultModel}. */
export interface EnsureDefaultModelOptions {
  /** The shipped family's directory; without a `manifest.json` there, the generated model is used. @default SHIPPED_FAMILY_DIR */
  shippedDir?: string;
}

/**
 * Puts the embedded default model into the store once and returns its name: the shipped demo
 * family (imported with its lineage and results, see importShippedFamily) when `shippedDir` holds
 * a manifest, else {@link DEFAULT_MODEL} (generated, then imported).
 */
export async function ensureDefaultModel(store: ModelStore, results: ResultStore, logger?: Logger, options: EnsureDefaultModelOptions = {}): Promise<string> {
  const shippedDir = options.shippedDir ?? SHIPPED_FAMILY_DIR;
  if (existsSync(join(shippedDir, MANIFEST_FILE))) return (await importShippedFamily(store, results, shippedDir, logger)).defaultName;
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
 * llama-server's `--lora` / `--lora-scaled` adapters of a `--model FILE`: each is checked against the
 * base and attached to its one load as an adapter fork named after its file (served alone under
 * that name too), and listed in order for `GET /lora-adapters` and per-request `lora` at its
 * startup scale (0 under `--lora-init-without-apply`).
 */
async function loadFileAdapters(config: GroveConfig, engine: Engine, base: ModelSource, baseNames: readonly string[]): Promise<FileAdapters | undefined> {
  const files = [...config.lora.map((path) => ({ path, scale: 1 })), ...config.loraScaled];
  if (files.length === 0) return undefined;
  const entries: AdapterEntry[] = [];
  for (const [index, file] of files.entries()) {
    const flag = index < config.lora.length ? "--lora" : "--lora-scaled";
    if (!existsSync(file.path)) throw new ConfigError(`${flag}: no file ${file.path}`, { param: flag });
    const name = basename(file.path).replace(/\.gguf$/i, "");
    if (name === base.id || baseNames.includes(name) || entries.some((entry) => entry.name === name)) {
      throw new ConfigError(`${flag}: ${basename(file.path)} would be served as '${name}', a name already taken; rename the file`, { param: flag });
    }
    const digest = await digestOfFile(file.path);
    await engine.load({ id: name, path: base.path, digest, adapters: [{ path: file.path }], base });
    entries.push({ id: index, name, digest, scale: config.loraInitWithoutApply === "on" ? 0 : file.scale });
  }
  return { base: base.id, entries };
}

/**
 * What to serve. `--model FILE` serves that file alone under its base name; `--model REF`
 * (or nothing: the embedded default) serves the whole store, with that model loaded first.
 */
async function chooseServing(config: GroveConfig, store: ModelStore, results: ResultStore, engine: Engine, logger?: Logger): Promise<Serving> {
  if (config.model && existsSync(config.model)) {
    if (config.modelSettings.length > 0) {
      throw new ConfigError("--model-settings (GROVE_MODEL_SETTINGS) applies to models served from the store, not to --model FILE: use --ctx-size and --parallel", { param: "--model-settings" });
    }
    // llama-server's rule: the model is listed under its first alias in alphabetical order.
    const names = [...new Set(config.alias)].sort();
    const id = names[0] ?? basename(config.model).replace(/\.gguf$/i, "");
    const base = { id, path: config.model, digest: await digestOfFile(config.model) };
    await engine.load(base);
    const adapters = await loadFileAdapters(config, engine, base, names);
    return {
      catalog: new EngineCatalog(engine, names.length === 0 ? undefined : { [id]: names }, config.acceptAnyModel === "on", config.tags, adapters),
      defaultModel: id,
      fromStore: false,
    };
  }
  if (config.lora.length > 0 || config.loraScaled.length > 0) {
    throw new ConfigError("--lora and --lora-scaled go with a --model FILE; a store's adapters are its adapter forks (grove import ADAPTER.gguf --base BASE), which GET /lora-adapters lists", { param: "--lora" });
  }
  if (config.tags.length > 0) {
    throw new ConfigError("--tags (GROVE_TAGS) labels a --model FILE; models served from the store have labels of their own", { param: "--tags" });
  }
  if (config.alias.length > 0) {
    throw new ConfigError("--alias (GROVE_ALIAS) names a --model FILE; models served from the store answer to their names and to grove alias", { param: "--alias" });
  }
  const catalog = new StoreCatalog({
    store,
    engine,
    maxLoaded: config.maxModels,
    memoryBudget: config.memoryBudget,
    keepAliveMs: config.keepAlive,
    contextSize: config.contextSize,
    slots: config.parallel,
    ...(logger === undefined ? {} : { logger }),
  });
  await catalog.applySettings(config.modelSettings);
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
    name = await ensureDefaultModel(store, results, logger);
  }
  await catalog.get(name);
  return { catalog, defaultModel: name, fromStore: true };
}

/**
 * Where the web app comes from: `--web-dir none` → nowhere; a folder → that build (it must hold
 * index.html); unset → the bundled dist/web when `npm run build` made it (else the APIs alone,
 * with a warning saying how to build it).
 *
 * @throws ConfigError for a folder without index.html
 */
export function resolveWebRoot(webDir: string, logger?: Logger): string | undefined {
  if (webDir === "none") return undefined;
  if (webDir !== "") {
    const root = resolve(webDir);
    if (!webAppBuilt(root)) throw new ConfigError(`--web-dir ${webDir} holds no index.html: build the web app there (vite build web --outDir ${webDir}) or pass none`, { param: "--web-dir" });
    return root;
  }
  if (webAppBuilt()) return WEB_APP_DIR;
  logger?.warn(`the web app is not built (${WEB_APP_DIR} is missing): run npm run build; serving the APIs only`);
  return undefined;
}

/** Opens the store, loads the model, starts the HTTP server and returns once it listens. */
export async function startGrove(config: GroveConfig, logger?: Logger): Promise<RunningGrove> {
  mkdirSync(config.home, { recursive: true });
  const webRoot = resolveWebRoot(config.webDir, logger);
  const service = await openServiceStore(config, logger);
  let limiter: ClosableRateLimiter | undefined;
  try {
    checkBindSafety(config.host, config.apiKey, await service.hasKeys());
    limiter = await openRateLimiter(config, logger);
  } catch (error) {
    await service.close();
    throw error;
  }
  const gateway = new Gateway({
    store: service, apiKey: config.apiKey || undefined, ...(limiter === undefined ? {} : { limiter }), ...(logger === undefined ? {} : { logger }),
  });
  let store: ModelStore;
  try {
    store = await ModelStore.open(config.home, {
      database: config.database,
      onDatabaseError: (error) => logger?.warn({ err: error }, "a PostgreSQL registry connection failed; the pool opens another"),
    });
  } catch (error) {
    await service.close();
    await limiter?.close();
    throw error;
  }
  let results: ResultStore;
  try {
    results = await openResults(config, logger);
  } catch (error) {
    await store.close();
    await service.close();
    await limiter?.close();
    throw error;
  }
  // Temp files of a crashed import, pull or quantize (their writer is gone) go at every start.
  const swept = await store.blobs.cleanTemp().catch((error: unknown) => {
    logger?.warn({ err: error }, "could not clean the store's temp folder");
    return { files: 0, bytes: 0 };
  });
  if (swept.files > 0) logger?.info(swept, "removed temp files left by processes that are gone");
  let engine: Engine | undefined;
  let jobs: JobRunner | undefined;
  let upstreamStore: SqliteUpstreamStore | undefined;
  let upstreams: UpstreamRouter | undefined;
  let sweeper: ReservationSweeper | undefined;
  try {
    sweeper = await ReservationSweeper.start({ store: service, ttlMs: config.reservationTtl, ...(logger === undefined ? {} : { logger }) });
    engine = await NativeEngine.create({
      models: [],
      threads: config.threads,
      slots: config.parallel,
      contextSize: config.contextSize,
      unifiedKv: config.kvUnified === "on",
      queueLimit: config.queueLimit,
      gpu: config.gpuLayers === 0 ? false : "auto",
      gpuLayers: config.gpuLayers,
      cacheTypeK: config.cacheTypeK,
      cacheTypeV: config.cacheTypeV,
      flashAttention: config.flashAttn,
      batchSize: config.batchSize,
      ubatchSize: config.ubatchSize,
      prefillChunk: config.ubatchSize,
      threadpoolPoll: config.poll,
      mmap: config.mmap,
      ...(config.pooling === "auto" ? {} : { pooling: config.pooling }),
      ...(config.seed < 0 ? {} : { seed: config.seed }),
      ...(await chatTemplateOf(config)),
      reasoning: config.reasoning,
      ...(config.libllamaDir === "" ? {} : { libraryDirectory: config.libllamaDir }),
      logger,
    });
    const { catalog: localCatalog, defaultModel, fromStore } = await chooseServing(config, store, results, engine, logger);
    upstreamStore = SqliteUpstreamStore.open(config.home);
    upstreams = new UpstreamRouter({ store: upstreamStore, healthIntervalMs: config.upstreamHealthInterval, ...(logger === undefined ? {} : { logger }) });
    await upstreams.start();
    const catalog = new UpstreamCatalog(localCatalog, upstreams);
    if (fromStore) jobs = await JobRunner.open(store, { ...(config.threads > 0 ? { threads: config.threads } : {}), ...(logger === undefined ? {} : { logger }) });
    const forge = jobs === undefined ? undefined : { runner: jobs, files: new TrainingFiles(store.home), ...(config.dataDir === "" ? {} : { dataDirectory: config.dataDir }) };
    const hub = new HubClient({ endpoint: config.hubEndpoint, token: config.hubToken === "" ? undefined : config.hubToken });
    const pool = localCatalog instanceof StoreCatalog ? localCatalog.pool : undefined;
    const app = createServer({
      engine, catalog, store, results, forge, hub, bodyLimit: config.bodyLimit, apiKey: config.apiKey || undefined, gateway, logger, upstreams,
      host: config.host, allowedHosts: config.allowedHosts, corsOrigins: config.corsOrigins,
      ...(pool === undefined ? {} : { pool }),
      ...(webRoot === undefined ? {} : { webRoot }),
      ...(config.threads > 0 ? { threads: config.threads } : {}),
      defaultModel,
      slotsEndpoint: config.slots === "on",
      ...(config.seed < 0 ? {} : { seed: config.seed }),
    });
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
    const router = upstreams;
    const routes = upstreamStore;
    const sweeping = sweeper;
    const release = async () => {
      router.close();
      await sweeping.close();
      pool?.close();
      await running.close();
      await store.close();
      await results.close();
      await service.close();
      await routes.close();
      await limiter?.close();
    };
    return {
      engine: running,
      store,
      results,
      ...(runner === undefined ? {} : { jobs: runner }),
      app,
      gateway,
      url: `http://${host}:${port}`,
      defaultModel,
      webApp: webRoot !== undefined,
      upstreams: router,
      async close() {
        // Jobs first: cancelling them ends their event streams, which app.close would wait for.
        await runner?.close();
        await app.close();
        await release();
      },
      async shutdown(graceMs = config.shutdownGrace) {
        const result = await shutdownOf(app)!.run(graceMs, async () => {
          // Forge jobs are in flight too; once the grace period is over they are cancelled (their event streams end).
          await runner?.close();
        });
        logger?.info({ cancelled: result.cancelled }, "server closed");
        await runner?.close();
        await release();
      },
    };
  } catch (error) {
    await sweeper?.close();
    upstreams?.close();
    await upstreamStore?.close();
    await jobs?.close();
    await engine?.close();
    await store.close();
    await results.close();
    await service.close();
    await limiter?.close();
    throw error;
  }
}

/** `--chat-template-file`: a Jinja template of at most 1 MiB, refused with the reason when it cannot be read. */
/** `--chat-template` or `--chat-template-file` (not both), as the engine takes it. */
async function chatTemplateOf(config: GroveConfig): Promise<{ chatTemplate?: string }> {
  if (config.chatTemplate !== "" && config.chatTemplateFile !== "") {
    throw new ConfigError("Give --chat-template or --chat-template-file, not both", { param: "--chat-template" });
  }
  if (config.chatTemplateFile !== "") return { chatTemplate: await readChatTemplateFile(config.chatTemplateFile) };
  return config.chatTemplate === "" ? {} : { chatTemplate: config.chatTemplate };
}

async function readChatTemplateFile(path: string): Promise<string> {
  try {
    return (await readBoundedFile(path, { limit: 1 << 20, what: "the chat template file", param: "--chat-template-file" })).toString("utf8");
  } catch (error) {
    throw new ConfigError((error as Error).message, { param: "--chat-template-file", cause: error });
  }
}
