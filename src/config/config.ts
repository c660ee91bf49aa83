import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { ConfigError } from "../core/errors.js";
import { parseModelSettings, type ModelSetting } from "./model-settings.js";
import { parseHostSetting } from "./server-url.js";
import { parseByteSize, parseDuration } from "./units.js";
import { KEEP_FOREVER, parseKeepAlive } from "../core/keep-alive.js";

/**
 * Every setting Grove reads, with its default. Values come from, in rising precedence:
 * the defaults here ← `$GROVE_HOME/config.json` ← `GROVE_*` variables ← CLI flags.
 * Only this module reads `process.env`.
 */
export interface GroveConfig {
  /** Data directory. Env `GROVE_HOME`. @default "~/.grove" */
  readonly home: string;
  /**
   * Interface to bind. Env `GROVE_HOST`, flag `--host`; as Ollama's `OLLAMA_HOST` it may carry a
   * port and scheme (`0.0.0.0:11434`, `http://127.0.0.1:11434`), the port then used unless `--port`
   * names one. @default "127.0.0.1"
   */
  readonly host: string;
  /** TCP port; 0 picks a free one. Env `GROVE_PORT`, flag `--port`. @default 11435 */
  readonly port: number;
  /** GGUF file to serve; empty serves the embedded default model. Env `GROVE_MODEL`, flag `--model`. @default "" */
  readonly model: string;
  /** CPU threads for inference; 0 chooses from the model's size (see engine `defaultThreadCount`). Env `GROVE_THREADS`, flag `--threads`. @default 0 */
  readonly threads: number;
  /** Parallel slots (sequences) per loaded model. Env `GROVE_PARALLEL`, flag `--parallel`. @default 4 */
  readonly parallel: number;
  /**
   * Context tokens per slot. Env `GROVE_CTX_SIZE`, flag `--ctx-size`.
   * @default undefined: 2048, or the model's training context when smaller (`core/context-size.ts`)
   */
  readonly contextSize?: number;
  /**
   * Per-model context and slots, overriding `contextSize`/`parallel` for the named store models
   * (`demo-s-chat:f16=ctx:1024,slots:8;other:q4=ctx:8192,slots:2`; keys `ctx`, `slots`). Names are
   * checked against the store, and ctx against each model's training context, at startup.
   * Env `GROVE_MODEL_SETTINGS`, flag `--model-settings`. @default "" (none)
   */
  readonly modelSettings: readonly ModelSetting[];
  /** Models kept loaded at once; the least recently used idle one is unloaded past it. Env `GROVE_MAX_MODELS`, flag `--max-models`. @default 2 */
  readonly maxModels: number;
  /**
   * Memory the serving process may use for its models, in bytes (`2GiB`, `512MiB`, `1.5GB`):
   * before a model loads, its estimate (plan module: weights + KV cache + compute buffers) must
   * fit beside the loaded ones and the process baseline, evicting least recently used idle
   * models; else 503. 0 means no budget. Env `GROVE_MEMORY_BUDGET`, flag `--memory-budget`. @default 0
   */
  readonly memoryBudget: number;
  /**
   * The older spelling of `keepAlive`: unload a model idle this long, in milliseconds (`10m`, `30s`;
   * a bare number is seconds); 0 never. A value past 0 becomes `keepAlive` when that is not set;
   * setting both is refused. Env `GROVE_IDLE_UNLOAD`, flag `--idle-unload`. @default 0
   */
  readonly idleUnload: number;
  /**
   * How long a store model stays loaded after its last request when the request sets no
   * `keep_alive`, in milliseconds, read with Ollama's syntax (`5m`, `1h30m`, a number of seconds):
   * `0` unloads a model as soon as its requests end, a negative value (`-1`) keeps it until it is
   * evicted for room (`Infinity` here). Ollama's default is 5m; Grove's keeps models, since its pool
   * already evicts by memory budget and model count. Env `GROVE_KEEP_ALIVE`, flag `--keep-alive`.
   * @default Infinity (-1)
   */
  readonly keepAlive: number;
  /** Requests that may wait for a slot before new ones get 503. Env `GROVE_QUEUE_LIMIT`, flag `--queue-limit`. @default 64 */
  readonly queueLimit: number;
  /** Largest accepted request body, bytes. Env `GROVE_BODY_LIMIT`. @default 1048576 */
  readonly bodyLimit: number;
  /**
   * One bearer key, honoured as an admin key with no limits, beside the keys of `grove keys create`
   * (which need no setting: once one exists every /v1 and /api request needs a key). A non-loopback
   * host needs this or a created key. Env `GROVE_API_KEY`, flag `--api-key`. @default ""
   */
  readonly apiKey: string;
  /** Base URL of the Hugging Face-style hub `grove pull` uses. Env `HF_ENDPOINT`, flag `--endpoint`. @default "https://huggingface.co" */
  readonly hubEndpoint: string;
  /** Token sent to the hub (never to hosts it redirects to). Env `HF_TOKEN`, flag `--token`. @default "" */
  readonly hubToken: string;
  /**
   * PostgreSQL URL (`postgres://user:password@host:5432/grove`) for keys, budgets, usage and
   * prices, shared by every replica; empty keeps them in `<home>/service.db` (SQLite).
   * Env `GROVE_DATABASE_URL`, flag `--database`. @default ""
   */
  readonly database: string;
  /**
   * Redis URL (`redis://host:6379/0`) for rate-limit counters (rpm, tpm, concurrency) shared by
   * every replica; empty counts them in the process. Env `GROVE_REDIS_URL`, flag `--redis`. @default ""
   */
  readonly redis: string;
  /**
   * On SIGTERM/SIGINT, how long in-flight requests may run on after the server stops accepting,
   * in milliseconds (`10s`, `500ms`); the rest are then cancelled (their usage recorded as
   * cancelled). Env `GROVE_SHUTDOWN_GRACE`, flag `--shutdown-grace`. @default 10000
   */
  readonly shutdownGrace: number;
  /**
   * Budget reservations older than this, in milliseconds (`15m`, `1h`), are released at startup and
   * every min(TTL/2, 1 min): a replica that crashed mid-request leaves reservations holding budget.
   * Must exceed the longest request (one settling later is recorded but not charged); 0 never
   * releases. Env `GROVE_RESERVATION_TTL`, flag `--reservation-ttl`. @default 900000 (15m)
   */
  readonly reservationTtl: number;
  /** How often upstreams are health-checked (`GET /v1/models`) and re-read from the service store, in milliseconds; 0 never. Env `GROVE_UPSTREAM_HEALTH_INTERVAL`, flag `--upstream-health-interval`. @default 10000 */
  readonly upstreamHealthInterval: number;
  /**
   * The web app: `""` serves the one bundled by `npm run build` (dist/web) at `/`, a folder serves
   * that build instead (`vite build web --outDir DIR`), `none` serves the APIs only.
   * Env `GROVE_WEB_DIR`, flag `--web-dir`. @default ""
   */
  readonly webDir: string;
  /**
   * Extra `Host` names a loopback-bound server answers besides loopback names and addresses
   * (`localhost`, `*.localhost`, 127.0.0.0/8, ::1): the name a reverse proxy or an SSH tunnel
   * forwards. On other binds, when set, only these and loopback names are answered. `*` answers
   * any. Comma-separated. Env `GROVE_ALLOWED_HOSTS`, flag `--allowed-hosts`. @default [] (none)
   * @example ["grove.internal", "gpu-box.lan"]
   */
  readonly allowedHosts: readonly string[];
  /**
   * Browser origins (`https://app.example.com`) that may call the API cross-site, with CORS
   * preflight answers; every other cross-site browser request (an `Origin` not the server's own)
   * is refused with 403. `localhost` allows every origin on this machine (`http://localhost:5173`,
   * `http://127.0.0.1:3000`, `http://[::1]`, any port: llama-server's keyword); `*` allows any
   * origin. Comma-separated.
   * Env `GROVE_CORS_ORIGINS`, flag `--cors-origins`. @default [] (the web app, same-origin, needs none)
   */
  readonly corsOrigins: readonly string[];
  /**
   * The one directory whose files an HTTP request may name by path (fine-tune `data`, migration
   * `tasks`); empty means none: such files arrive as uploads (`POST /v1/files`). The CLI, which
   * runs as the user, takes any path. Env `GROVE_DATA_DIR`, flag `--data-dir`. @default ""
   */
  readonly dataDir: string;
  /**
   * Layers offloaded to the GPU when node-llama-cpp finds a usable one (CUDA, Vulkan, Metal);
   * `-1` all, `0` none (the CPU libraries are then used). Env `GROVE_GPU_LAYERS`, flag `--gpu-layers`. @default -1
   */
  readonly gpuLayers: number;
  /** KV cache type of keys: f16, q8_0, q4_0 (quantized halves or quarters the cache). Env `GROVE_CACHE_TYPE_K`, flag `--cache-type-k`. @default "f16" */
  readonly cacheTypeK: "f16" | "q8_0" | "q4_0";
  /** KV cache type of values (a quantized V cache needs flash attention). Env `GROVE_CACHE_TYPE_V`, flag `--cache-type-v`. @default "f16" */
  readonly cacheTypeV: "f16" | "q8_0" | "q4_0";
  /** Flash attention: auto (llama.cpp decides per model and device), on, off. Env `GROVE_FLASH_ATTN`, flag `--flash-attn`. @default "auto" */
  readonly flashAttn: "auto" | "on" | "off";
  /** Most tokens one decode step takes (logical batch). Env `GROVE_BATCH_SIZE`, flag `--batch-size`. @default 2048 */
  readonly batchSize: number;
  /** Tokens computed at once inside a step (physical batch); also the prompt chunk a step takes while other slots generate. Env `GROVE_UBATCH_SIZE`, flag `--ubatch-size`. @default 512 */
  readonly ubatchSize: number;
  /**
   * Map model files instead of reading them into memory: `auto` maps them when a GPU takes the
   * weights, and reads them on the CPU, where llama.cpp's CPU backends repack weights for their
   * fastest kernels and the mapped file would stay resident beside the repacked copy (a 1B Q8_0:
   * 2.56 GiB mapped against 1.59 read, same speed). Env `GROVE_MMAP`, flag `--mmap`. @default "auto"
   */
  readonly mmap: "auto" | "on" | "off";
  /**
   * A chat template used instead of the models' own (llama-server's `--chat-template`): the name of
   * one of llama.cpp's built-in formats (`llama3`, `chatml`, `command-r`…, rendered by llama.cpp
   * itself, roles and text only) or a Jinja template's text. Env `GROVE_CHAT_TEMPLATE`. @default ""
   */
  readonly chatTemplate: string;
  /** A Jinja chat template file used instead of the models' own (llama-server's `--chat-template-file`). Env `GROVE_CHAT_TEMPLATE_FILE`. @default "" */
  readonly chatTemplateFile: string;
  /** Reasoning models think (`auto`, `on`) or not (`off`: templates get `enable_thinking` false), as llama-server's `--reasoning`. Env `GROVE_REASONING`. @default "auto" */
  readonly reasoning: "auto" | "on" | "off";
  /**
   * With one `--model FILE`, answer requests naming any model with it, as llama-server does (its
   * clients and tests send names like "test"); off, an unknown name is a 404. Env
   * `GROVE_ACCEPT_ANY_MODEL`. @default "off"
   */
  readonly acceptAnyModel: "on" | "off";
  /** Serve llama-server's `GET /slots` (what each slot is doing). Env `GROVE_SLOTS`, flag `--slots`. @default "off" */
  readonly slots: "on" | "off";
  /**
   * One KV cache shared by a model's slots, as llama-server's `--kv-unified`: `contextSize` is then
   * the size of that one cache, and each slot may use all of it while the others leave room
   * (`off`: each slot holds `contextSize` of its own). When the shared cache is full, idle slots'
   * caches are dropped, then running generations fail ("Context size has been exceeded.").
   * Env `GROVE_KV_UNIFIED`, flag `--kv-unified`. @default "off"
   */
  readonly kvUnified: "on" | "off";
  /**
   * Accepted for llama-server's `--backend-sampling` (sampling on the accelerator): Grove samples
   * on the CPU with the same llama.cpp sampler chain either way, so it changes nothing — results
   * are the same with and without. Env `GROVE_BACKEND_SAMPLING`, flag `--backend-sampling`. @default "off"
   */
  readonly backendSampling: "on" | "off";
  /**
   * How embeddings are pooled from the token vectors, as llama-server's `--pooling`: `mean`,
   * `cls` (the first token's), `last`, or `none` (one vector per token: only llama-server's
   * `/embeddings` returns them; the OpenAI and Ollama routes answer 400). `auto` takes the model's
   * own (a GGUF's `<arch>.pooling_type`), and the last token's vector when the model has none.
   * `rank` (a reranker's score) is refused: Grove serves no `/rerank`.
   * Env `GROVE_POOLING`, flag `--pooling`. @default "auto"
   */
  readonly pooling: "auto" | "none" | "mean" | "cls" | "last";
  /**
   * The sampling seed of every generation whose request sets none, as llama-server's `--seed`:
   * the same request then gives the same text. -1 draws a new seed per request.
   * Env `GROVE_SEED`, flag `--seed`. @default -1
   */
  readonly seed: number;
  /**
   * The names a `--model FILE` answers to instead of the file's base name, as llama-server's
   * `--alias`: comma-separated; `/v1/models` lists the first in alphabetical order (llama-server's
   * rule) with the others as `aliases`. Store models have names and aliases of their own
   * (`grove tag`, `grove alias`). Env `GROVE_ALIAS`, flag `--alias`. @default [] (the file's name)
   * @example ["tinyllama-2", "code"]
   */
  readonly alias: readonly string[];
  /** `--tags`: labels `/v1/models` lists with a --model FILE (llama-server's; informational, not used to route), comma-separated. Env `GROVE_TAGS`. @default [] */
  readonly tags: readonly string[];
  /**
   * LoRA adapter files served with a `--model FILE`, as llama-server's `--lora`: applied at scale 1
   * to every request that gives no `lora` of its own, listed by `GET /lora-adapters`, and each
   * also served alone under its file's name. Comma-separated. Env `GROVE_LORA`. @default []
   */
  readonly lora: readonly string[];
  /** `--lora-scaled FILE:SCALE,…`: as {@link lora}, applied at SCALE (llama-server's). Env `GROVE_LORA_SCALED`. @default [] */
  readonly loraScaled: readonly { readonly path: string; readonly scale: number }[];
  /** `--lora-init-without-apply`: the adapters start at scale 0 (llama-server's); requests apply them with `lora`. Env `GROVE_LORA_INIT_WITHOUT_APPLY`. @default "off" */
  readonly loraInitWithoutApply: "on" | "off";
  /**
   * Busy-wait level of the decode thread pool, 0 (sleep between steps) to 100, as llama-server's
   * `--poll` (whose default is 50). Grove's is 0: its main thread (HTTP) needs a core now and then,
   * and spinning compute threads held it off (2 threads, 2 cores, a small model: time to first
   * token 13.3 ms at 50, 8.8 at 0). Env `GROVE_POLL`, flag `--poll`. @default 0
   */
  readonly poll: number;
  /** Load llama.cpp's libraries from this folder instead of node-llama-cpp's prebuilt ones (a build of the same llama.cpp version, for benchmarks). Env `GROVE_LIBLLAMA_DIR`, flag `--libllama-dir`. @default "" */
  readonly libllamaDir: string;
  /** Log level: fatal, error, warn, info, debug, trace, silent. Env `GROVE_LOG_LEVEL`, flag `--log-level`. @default "info" */
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const duration = z.preprocess((value) => (typeof value === "string" || typeof value === "number" ? (parseDuration(value) ?? value) : value), z.number({ message: "expected a duration such as 10s, 500ms or 0" }).int().min(0).max(86_400_000));

/** A comma-separated list (flag, variable) or a JSON array (config file), trimmed, empty entries dropped. */
const commaList = z.preprocess(
  (value) => (typeof value === "string" ? value.split(",") : value),
  z.array(z.string()).transform((items) => items.map((item) => item.trim()).filter((item) => item !== "")),
);

const POOLINGS = ["auto", "none", "mean", "cls", "last"] as const;

const schema = z.object({
  home: z.string().min(1),
  host: z.string().min(1),
  port: integer(0, 65535),
  model: z.string(),
  threads: integer(0, 512),
  parallel: integer(1, 64),
  contextSize: integer(64, 1_048_576).optional(),
  queueLimit: integer(0, 100_000),
  modelSettings: z.string().transform((value, context) => {
    try {
      return parseModelSettings(value);
    } catch (error) {
      context.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  }),
  maxModels: integer(1, 64),
  memoryBudget: z.preprocess((value) => (typeof value === "string" || typeof value === "number" ? (parseByteSize(value) ?? value) : value), z.number({ message: "expected a size such as 2GiB, 512MiB or a number of bytes" }).int().min(0)),
  idleUnload: z.preprocess((value) => (typeof value === "string" || typeof value === "number" ? (parseDuration(value) ?? value) : value), z.number({ message: "expected a duration such as 10m, 30s or 0" }).int().min(0)),
  // "" (the default) is "not set": --idle-unload may then give it.
  keepAlive: z.union([z.string(), z.number()]).transform((value, context) => {
    if (value === "") return undefined;
    const milliseconds = parseKeepAlive(value);
    if (milliseconds === undefined) {
      context.addIssue({ code: "custom", message: "expected a duration such as 5m, 1h30m, 30 (seconds), 0 (unload after each request) or -1 (keep loaded)" });
      return z.NEVER;
    }
    return milliseconds;
  }),
  bodyLimit: integer(1024, 1 << 30),
  shutdownGrace: duration,
  upstreamHealthInterval: duration,
  reservationTtl: duration,
  apiKey: z.string(),
  hubEndpoint: z.url({ protocol: /^https?$/ }),
  hubToken: z.string(),
  database: z.string().refine((value) => value === "" || /^postgres(ql)?:\/\/./.test(value), "expected a postgres:// or postgresql:// URL"),
  redis: z.string().refine((value) => value === "" || /^rediss?:\/\/./.test(value), "expected a redis:// or rediss:// URL"),
  webDir: z.string(),
  allowedHosts: commaList.pipe(z.array(z.string().regex(/^(\*|[a-z0-9.-]+|\[[0-9a-f:.]+\])$/i, "expected host names (grove.internal), IP addresses or *, comma-separated"))),
  corsOrigins: commaList.pipe(z.array(z.string().regex(/^(\*|localhost|https?:\/\/[a-z0-9.-]+(:\d{1,5})?|https?:\/\/\[[0-9a-f:.]+\](:\d{1,5})?)$/i, "expected origins such as https://app.example.com (scheme, host, optional port; no path), localhost, or *, comma-separated"))),
  dataDir: z.string(),
  gpuLayers: integer(-1, 100_000),
  cacheTypeK: z.enum(["f16", "q8_0", "q4_0"]),
  cacheTypeV: z.enum(["f16", "q8_0", "q4_0"]),
  flashAttn: z.enum(["auto", "on", "off"]),
  // llama.cpp takes any batch; Grove's decode loop puts one token of every generating slot in a
  // step, so a batch below the slots is refused when a model loads (the engine names both).
  batchSize: integer(1, 65_536),
  ubatchSize: integer(1, 65_536),
  libllamaDir: z.string(),
  poll: integer(0, 100),
  mmap: z.enum(["auto", "on", "off"]),
  slots: z.enum(["on", "off"]),
  kvUnified: z.enum(["on", "off"]),
  backendSampling: z.enum(["on", "off"]),
  acceptAnyModel: z.enum(["on", "off"]),
  reasoning: z.enum(["auto", "on", "off"]),
  pooling: z.string().superRefine((value, context) => {
    if (value === "rank") context.addIssue({ code: "custom", message: "rank pools a reranker's score, and Grove serves no /rerank: use mean, cls, last, none or auto" });
    else if (!POOLINGS.includes(value as (typeof POOLINGS)[number])) context.addIssue({ code: "custom", message: `expected one of ${POOLINGS.join(", ")}` });
  }),
  seed: integer(-1, 2 ** 32 - 1),
  alias: commaList.pipe(z.array(z.string().max(256).regex(/^[a-z0-9][a-z0-9._:/@+-]*$/i, "expected model names such as tinyllama-2 (letters, digits and . _ : / @ + -), comma-separated"))),
  tags: commaList.pipe(z.array(z.string().max(64).regex(/^[\w.:+-]+$/, "expected labels such as chat (letters, digits and _ . : + -), comma-separated")).max(64)),
  lora: commaList.pipe(z.array(z.string().min(1).max(4096)).max(64)),
  loraScaled: commaList.pipe(
    z
      .array(
        z.string().transform((entry, context) => {
          const at = entry.lastIndexOf(":");
          const scale = at < 0 ? Number.NaN : Number(entry.slice(at + 1));
          if (at < 1 || entry.slice(at + 1).trim() === "" || !Number.isFinite(scale) || Math.abs(scale) > 100) {
            context.addIssue({ code: "custom", message: `expected FILE:SCALE with a scale from -100 to 100, got '${entry}'` });
            return z.NEVER;
          }
          return { path: entry.slice(0, at), scale };
        }),
      )
      .max(64),
  ),
  loraInitWithoutApply: z.enum(["on", "off"]),
  chatTemplate: z.string().max(1_000_000),
  chatTemplateFile: z.string(),
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
  modelSettings: { env: "GROVE_MODEL_SETTINGS", flag: "--model-settings" },
  maxModels: { env: "GROVE_MAX_MODELS", flag: "--max-models" },
  memoryBudget: { env: "GROVE_MEMORY_BUDGET", flag: "--memory-budget" },
  idleUnload: { env: "GROVE_IDLE_UNLOAD", flag: "--idle-unload" },
  keepAlive: { env: "GROVE_KEEP_ALIVE", flag: "--keep-alive" },
  bodyLimit: { env: "GROVE_BODY_LIMIT", flag: "--body-limit" },
  shutdownGrace: { env: "GROVE_SHUTDOWN_GRACE", flag: "--shutdown-grace" },
  upstreamHealthInterval: { env: "GROVE_UPSTREAM_HEALTH_INTERVAL", flag: "--upstream-health-interval" },
  reservationTtl: { env: "GROVE_RESERVATION_TTL", flag: "--reservation-ttl" },
  apiKey: { env: "GROVE_API_KEY", flag: "--api-key" },
  hubEndpoint: { env: "HF_ENDPOINT", flag: "--endpoint" },
  hubToken: { env: "HF_TOKEN", flag: "--token" },
  database: { env: "GROVE_DATABASE_URL", flag: "--database" },
  redis: { env: "GROVE_REDIS_URL", flag: "--redis" },
  webDir: { env: "GROVE_WEB_DIR", flag: "--web-dir" },
  allowedHosts: { env: "GROVE_ALLOWED_HOSTS", flag: "--allowed-hosts" },
  corsOrigins: { env: "GROVE_CORS_ORIGINS", flag: "--cors-origins" },
  dataDir: { env: "GROVE_DATA_DIR", flag: "--data-dir" },
  gpuLayers: { env: "GROVE_GPU_LAYERS", flag: "--gpu-layers" },
  cacheTypeK: { env: "GROVE_CACHE_TYPE_K", flag: "--cache-type-k" },
  cacheTypeV: { env: "GROVE_CACHE_TYPE_V", flag: "--cache-type-v" },
  flashAttn: { env: "GROVE_FLASH_ATTN", flag: "--flash-attn" },
  batchSize: { env: "GROVE_BATCH_SIZE", flag: "--batch-size" },
  ubatchSize: { env: "GROVE_UBATCH_SIZE", flag: "--ubatch-size" },
  libllamaDir: { env: "GROVE_LIBLLAMA_DIR", flag: "--libllama-dir" },
  poll: { env: "GROVE_POLL", flag: "--poll" },
  mmap: { env: "GROVE_MMAP", flag: "--mmap" },
  slots: { env: "GROVE_SLOTS", flag: "--slots" },
  kvUnified: { env: "GROVE_KV_UNIFIED", flag: "--kv-unified" },
  backendSampling: { env: "GROVE_BACKEND_SAMPLING", flag: "--backend-sampling" },
  acceptAnyModel: { env: "GROVE_ACCEPT_ANY_MODEL", flag: "--accept-any-model" },
  reasoning: { env: "GROVE_REASONING", flag: "--reasoning" },
  pooling: { env: "GROVE_POOLING", flag: "--pooling" },
  seed: { env: "GROVE_SEED", flag: "--seed" },
  alias: { env: "GROVE_ALIAS", flag: "--alias" },
  tags: { env: "GROVE_TAGS", flag: "--tags" },
  lora: { env: "GROVE_LORA", flag: "--lora" },
  loraScaled: { env: "GROVE_LORA_SCALED", flag: "--lora-scaled" },
  loraInitWithoutApply: { env: "GROVE_LORA_INIT_WITHOUT_APPLY", flag: "--lora-init-without-apply" },
  chatTemplate: { env: "GROVE_CHAT_TEMPLATE", flag: "--chat-template" },
  chatTemplateFile: { env: "GROVE_CHAT_TEMPLATE_FILE", flag: "--chat-template-file" },
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
    contextSize: undefined,
    queueLimit: 64,
    modelSettings: "",
    maxModels: 2,
    memoryBudget: 0,
    idleUnload: 0,
    keepAlive: "",
    bodyLimit: 1 << 20,
    shutdownGrace: "10s",
    upstreamHealthInterval: "10s",
    reservationTtl: "15m",
    apiKey: "",
    hubEndpoint: "https://huggingface.co",
    hubToken: "",
    database: "",
    redis: "",
    webDir: "",
    allowedHosts: [],
    corsOrigins: [],
    dataDir: "",
    gpuLayers: -1,
    cacheTypeK: "f16",
    cacheTypeV: "f16",
    flashAttn: "auto",
    batchSize: 2048,
    ubatchSize: 512,
    libllamaDir: "",
    poll: 0,
    mmap: "auto",
    slots: "off",
    kvUnified: "off",
    backendSampling: "off",
    acceptAnyModel: "off",
    reasoning: "auto",
    pooling: "auto",
    seed: -1,
    alias: [],
    tags: [],
    lora: [],
    loraScaled: [],
    loraInitWithoutApply: "off",
    chatTemplate: "",
    chatTemplateFile: "",
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
  splitHostPort(merged, origin);
  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0]) as Key;
    const source = origin[key] ?? "default";
    const { env: variable, flag } = CONFIG_SOURCES[key];
    // URLs may carry a password: the message shows their scheme only.
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(String(merged[key]))?.[0];
    const shown = key === "database" || key === "redis" ? (scheme === undefined ? "(not a URL)" : JSON.stringify(`${scheme}…`)) : JSON.stringify(merged[key]);
    throw new ConfigError(
      `Invalid value ${shown} for ${key} (from ${source}; set with ${flag} or ${variable}): ${issue.message}`,
      { param: flag },
    );
  }
  if (origin.keepAlive !== undefined && origin.idleUnload !== undefined) {
    throw new ConfigError(
      `Both keepAlive (from ${origin.keepAlive}) and idleUnload (from ${origin.idleUnload}) are set: --idle-unload (GROVE_IDLE_UNLOAD) is the older spelling of --keep-alive (GROVE_KEEP_ALIVE); keep one`,
      { param: "--keep-alive" },
    );
  }
  const { idleUnload } = result.data;
  const keepAlive = result.data.keepAlive ?? (idleUnload > 0 ? idleUnload : KEEP_FOREVER);
  const config = { ...result.data, keepAlive, home: resolve(result.data.home), dataDir: result.data.dataDir === "" ? "" : resolve(result.data.dataDir) } as GroveConfig;
  return Object.freeze(config);
}

/**
 * `GROVE_HOST` as Ollama's `OLLAMA_HOST`: `0.0.0.0:11434` or `http://127.0.0.1:11434` binds that
 * host, on that port unless `--port` names another (so `grove serve` and `grove run` read one
 * variable the same way).
 */
function splitHostPort(merged: Record<string, unknown>, origin: Record<string, string>): void {
  if (typeof merged.host !== "string") return;
  const setting = parseHostSetting(merged.host);
  if (setting === undefined || (setting.port === undefined && setting.scheme === undefined)) return;
  merged.host = setting.host;
  if (setting.port !== undefined && origin.port !== `flag ${CONFIG_SOURCES.port.flag}`) {
    merged.port = setting.port;
    origin.port = origin.host ?? "default";
  }
}
