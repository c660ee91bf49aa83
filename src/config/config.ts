import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { ConfigError } from "../core/errors.js";

/**
 * Every setting Grove reads, with its default. Values come from, in rising precedence:
 * the defaults here ← `$GROVE_HOME/config.json` ← `GROVE_*` variables ← CLI flags.
 * Only this module reads `process.env`.
 */
export interface GroveConfig {
  /** Data directory. Env `GROVE_HOME`. @default "~/.grove" */
  readonly home: string;
  /** Interface to bind. Env `GROVE_HOST`, flag `--host`. @default "127.0.0.1" */
  readonly host: string;
  /** TCP port; 0 picks a free one. Env `GROVE_PORT`, flag `--port`. @default 11435 */
  readonly port: number;
  /** GGUF file to serve; empty serves the embedded default model. Env `GROVE_MODEL`, flag `--model`. @default "" */
  readonly model: string;
  /** CPU threads for inference; 0 chooses from the model's size (see engine `defaultThreadCount`). Env `GROVE_THREADS`, flag `--threads`. @default 0 */
  readonly threads: number;
  /** Parallel slots (sequences) per loaded model. Env `GROVE_PARALLEL`, flag `--parallel`. @default 4 */
  readonly parallel: number;
  /** Context tokens per slot. Env `GROVE_CTX_SIZE`, flag `--ctx-size`. @default 2048 */
  readonly contextSize: number;
  /** Models kept loaded at once; the least recently used idle one is unloaded past it. Env `GROVE_MAX_MODELS`, flag `--max-models`. @default 2 */
  readonly maxModels: number;
  /** Requests that may wait for a slot before new ones get 503. Env `GROVE_QUEUE_LIMIT`, flag `--queue-limit`. @default 64 */
  readonly queueLimit: number;
  /** Largest accepted request body, bytes. Env `GROVE_BODY_LIMIT`. @default 1048576 */
  readonly bodyLimit: number;
  /** Bearer key that every /v1 request must present; required to bind a non-loopback host. Env `GROVE_API_KEY`, flag `--api-key`. @default "" */
  readonly apiKey: string;
  /** Base URL of the Hugging Face-style hub `grove pull` uses. Env `HF_ENDPOINT`, flag `--endpoint`. @default "https://huggingface.co" */
  readonly hubEndpoint: string;
  /** Token sent to the hub (never to hosts it redirects to). Env `HF_TOKEN`, flag `--token`. @default "" */
  readonly hubToken: string;
  /** Log level: fatal, error, warn, info, debug, trace, silent. Env `GROVE_LOG_LEVEL`, flag `--log-level`. @default "info" */
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z.object({
  home: z.string().min(1),
  host: z.string().min(1),
  port: integer(0, 65535),
  model: z.string(),
  threads: integer(0, 512),
  parallel: integer(1, 64),
  contextSize: integer(64, 1_048_576),
  queueLimit: integer(0, 100_000),
  maxModels: integer(1, 64),
  bodyLimit: integer(1024, 1 << 30),
  apiKey: z.string(),
  hubEndpoint: z.url({ protocol: /^https?$/ }),
  hubToken: z.string(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
});

type Key = keyof GroveConfig;

/** The environment variable and CLI flag of each key, for error messages. */
export const CONFIG_SOURCES: Record<Key, { env: string; flag: string }> = {
  home: { env: "GROVE_HOME", flag: "--home" },
  host: { env: "GROVE_HOST", flag: "--host" },
  port: { env: "GROVE_PORT", flag: "--port" },
  model: { env: "GROVE_MODEL", flag: "--model" },
  threads: { env: "GROVE_THREADS", flag: "--threads" },
  parallel: { env: "GROVE_PARALLEL", flag: "--parallel" },
  contextSize: { env: "GROVE_CTX_SIZE", flag: "--ctx-size" },
  queueLimit: { env: "GROVE_QUEUE_LIMIT", flag: "--queue-limit" },
  maxModels: { env: "GROVE_MAX_MODELS", flag: "--max-models" },
  bodyLimit: { env: "GROVE_BODY_LIMIT", flag: "--body-limit" },
  apiKey: { env: "GROVE_API_KEY", flag: "--api-key" },
  hubEndpoint: { env: "HF_ENDPOINT", flag: "--endpoint" },
  hubToken: { env: "HF_TOKEN", flag: "--token" },
  logLevel: { env: "GROVE_LOG_LEVEL", flag: "--log-level" },
};

function defaults(env: NodeJS.ProcessEnv): Record<Key, unknown> {
  return {
    home: join(homedir(), ".grove"),
    host: "127.0.0.1",
    port: 11435,
    model: "",
    threads: 0,
    parallel: 4,
    contextSize: 2048,
    queueLimit: 64,
    maxModels: 2,
    bodyLimit: 1 << 20,
    apiKey: "",
    hubEndpoint: "https://huggingface.co",
    hubToken: "",
    logLevel: env.NODE_ENV === "test" ? "silent" : "info",
  };
}

export interface LoadConfigOptions {
  /** Values from CLI flags; `undefined` entries are ignored. */
  flags?: Partial<Record<Key, unknown>>;
  /** The environment to read. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Builds the frozen configuration; a bad value throws a ConfigError naming its flag and variable. */
export function loadConfig(options: LoadConfigOptions = {}): GroveConfig {
  const env = options.env ?? process.env;
  const merged: Record<string, unknown> = defaults(env);
  const origin: Record<string, string> = {};
  const home = options.flags?.home ?? env.GROVE_HOME ?? merged.home;
  const file = join(String(home), "config.json");
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      throw new ConfigError(`${file} is not valid JSON`, { cause: error });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${file} must hold a JSON object`);
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (!(key in CONFIG_SOURCES)) throw new ConfigError(`${file}: unknown key '${key}'`);
      merged[key] = value;
      origin[key] = `${file} key '${key}'`;
    }
  }
  for (const key of Object.keys(CONFIG_SOURCES) as Key[]) {
    const value = env[CONFIG_SOURCES[key].env];
    if (value !== undefined && value !== "") {
      merged[key] = value;
      origin[key] = `environment variable ${CONFIG_SOURCES[key].env}`;
    }
    const flag = options.flags?.[key];
    if (flag !== undefined) {
      merged[key] = flag;
      origin[key] = `flag ${CONFIG_SOURCES[key].flag}`;
    }
  }
  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0]) as Key;
    const source = origin[key] ?? "default";
    const { env: variable, flag } = CONFIG_SOURCES[key];
    throw new ConfigError(
      `Invalid value ${JSON.stringify(merged[key])} for ${key} (from ${source}; set with ${flag} or ${variable}): ${issue.message}`,
      { param: flag },
    );
  }
  const config = { ...result.data, home: resolve(result.data.home) } as GroveConfig;
  return Object.freeze(config);
}
