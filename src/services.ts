import { mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { GroveConfig } from "./config/config.js";
import { ConfigError, InvalidRequestError } from "./core/errors.js";
import type { Engine, ModelSource } from "./engine/engine.js";
import { LlamaEngine } from "./engine/llama-engine.js";
import { generateModel } from "./forge/generate/generate-model.js";
import type { Logger } from "./logging/logger.js";
import { checkBindSafety, createServer } from "./server/server.js";
import { digestOfFile } from "./store/file-digest.js";

/** The embedded default model `npm start` serves when none is configured. */
export const DEFAULT_MODEL = { id: "grove-small", preset: "small", seed: 1, dtype: "f16" } as const;

/**
 * The composition root: the only place that builds an engine and a server from the
 * configuration. The CLI and the integration tests both start Grove through it.
 */
export interface RunningGrove {
  readonly engine: Engine;
  readonly app: FastifyInstance;
  /** `http://HOST:PORT`, with the port the OS picked when asked for 0. */
  readonly url: string;
  close(): Promise<void>;
}

/** Creates the default model under GROVE_HOME once; later calls reuse the file. */
export async function ensureDefaultModel(home: string, logger?: Logger): Promise<string> {
  const directory = join(home, "default-model");
  const path = join(directory, `${DEFAULT_MODEL.preset}-seed${DEFAULT_MODEL.seed}-${DEFAULT_MODEL.dtype}.gguf`);
  if (existsSync(path)) return path;
  await mkdir(directory, { recursive: true });
  logger?.info({ path }, "creating the embedded default model (once)");
  await generateModel({ preset: DEFAULT_MODEL.preset, seed: DEFAULT_MODEL.seed, dtype: DEFAULT_MODEL.dtype, outPath: path });
  return path;
}

/** Resolves which model file to serve and the name it is served under. */
export async function resolveModelSource(config: GroveConfig, logger?: Logger): Promise<ModelSource> {
  if (config.model) {
    if (!existsSync(config.model)) {
      throw new InvalidRequestError(`Model file ${config.model} does not exist`, { param: "--model" });
    }
    return { id: basename(config.model).replace(/\.gguf$/i, ""), path: config.model, digest: await digestOfFile(config.model) };
  }
  const path = await ensureDefaultModel(config.home, logger);
  return { id: DEFAULT_MODEL.id, path, digest: await digestOfFile(path) };
}

/** Loads the model, starts the HTTP server and returns once it listens. */
export async function startGrove(config: GroveConfig, logger?: Logger): Promise<RunningGrove> {
  checkBindSafety(config.host, config.apiKey);
  const source = await resolveModelSource(config, logger);
  const engine = await LlamaEngine.create({
    models: [source],
    threads: config.threads,
    slots: config.parallel,
    contextSize: config.contextSize,
    queueLimit: config.queueLimit,
    logger,
  });
  const app = createServer({ engine, bodyLimit: config.bodyLimit, apiKey: config.apiKey || undefined, logger });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await engine.close();
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
  return {
    engine,
    app,
    url: `http://${host}:${port}`,
    async close() {
      await app.close();
      await engine.close();
    },
  };
}
