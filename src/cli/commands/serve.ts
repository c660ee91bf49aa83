import { type Command, Option } from "commander";
import { type GroveConfig, loadConfig } from "../../config/config.js";
import { createLogger } from "../../logging/logger.js";
import { startGrove, type RunningGrove } from "../../services.js";

/**
 * The user message of the printed `curl` line, as JSON safe inside the line's single quotes:
 * the served model's card `example_prompt` (a model taught one task, as the shipped demo chat
 * model is, is asked that task), else "Hello".
 */
export async function examplePrompt(grove: Pick<RunningGrove, "store">, name: string): Promise<string> {
  let prompt = "Hello";
  try {
    const card = (await grove.store.show(name)).model.card;
    if (typeof card.example_prompt === "string" && card.example_prompt.length > 0 && card.example_prompt.length <= 200) prompt = card.example_prompt;
  } catch {
    // A --model FILE is not in the store: no card.
  }
  return JSON.stringify(prompt).replaceAll("'", "\\u0027");
}

/** One flag of `grove serve`: its spelling and help, and the configuration key it sets (a switch sets "on"). */
interface ServeFlag {
  key: keyof GroveConfig;
  option: string;
  help: string;
}

/** Every flag of `grove serve`, declared once: the command's options and the config it builds come from this list. */
export const SERVE_FLAGS: readonly ServeFlag[] = [
  { key: "model", option: "--model <file>", help: "GGUF file to serve alone, or a store name/digest to load first (env GROVE_MODEL); default: the embedded model, created once" },
  { key: "host", option: "--host <host>", help: "interface to bind (env GROVE_HOST)" },
  { key: "port", option: "--port <port>", help: "TCP port, 0 for any free one (env GROVE_PORT; default 11435)" },
  { key: "threads", option: "--threads <n>", help: "CPU threads (env GROVE_THREADS; default 0 = 1 for models under 1 GiB, else every core)" },
  { key: "parallel", option: "--parallel <n>", help: "parallel slots decoded together (env GROVE_PARALLEL; default 4)" },
  { key: "contextSize", option: "--ctx-size <n>", help: "context tokens per slot, or of the one shared cache with --kv-unified (env GROVE_CTX_SIZE; default 2048, or the model's training context when smaller)" },
  { key: "kvUnified", option: "--kv-unified", help: "one KV cache of --ctx-size tokens shared by all slots, each may use all of it, as llama-server's; when full, idle slots' caches are dropped, then running requests fail (env GROVE_KV_UNIFIED=on)" },
  { key: "modelSettings", option: "--model-settings <list>", help: "per-model ctx and slots, e.g. 'chat:f16=ctx:1024,slots:8;other:q4=ctx:8192,slots:2' (env GROVE_MODEL_SETTINGS)" },
  { key: "queueLimit", option: "--queue-limit <n>", help: "requests that may wait for a slot before 503 (env GROVE_QUEUE_LIMIT; default 64)" },
  { key: "maxModels", option: "--max-models <n>", help: "models kept loaded at once (env GROVE_MAX_MODELS; default 2)" },
  { key: "memoryBudget", option: "--memory-budget <size>", help: "memory for the process and its models, e.g. 2GiB: LRU idle models are evicted to fit, else 503 (env GROVE_MEMORY_BUDGET; default none)" },
  { key: "keepAlive", option: "--keep-alive <duration>", help: "how long a model stays loaded after a request that sets no keep_alive, as Ollama's: 5m, 1h30m, seconds; 0 unloads after each request, -1 keeps it (env GROVE_KEEP_ALIVE; default -1)" },
  { key: "idleUnload", option: "--idle-unload <duration>", help: "older spelling of --keep-alive (0 = never) (env GROVE_IDLE_UNLOAD)" },
  { key: "apiKey", option: "--api-key <key>", help: "require this bearer key on /v1 (env GROVE_API_KEY); needed off loopback" },
  { key: "home", option: "--home <dir>", help: "data directory (env GROVE_HOME; default ~/.grove)" },
  { key: "database", option: "--database <url>", help: "PostgreSQL URL for keys, budgets and usage shared by replicas (env GROVE_DATABASE_URL; default <home>/service.db)" },
  { key: "redis", option: "--redis <url>", help: "Redis URL for rate-limit counters shared by replicas (env GROVE_REDIS_URL; default in-process)" },
  { key: "shutdownGrace", option: "--shutdown-grace <duration>", help: "on SIGTERM/SIGINT, let in-flight requests finish this long, then cancel them, e.g. 30s (env GROVE_SHUTDOWN_GRACE; default 10s)" },
  { key: "upstreamHealthInterval", option: "--upstream-health-interval <duration>", help: "health-check upstreams (grove upstream add) this often (env GROVE_UPSTREAM_HEALTH_INTERVAL; default 10s)" },
  { key: "reservationTtl", option: "--reservation-ttl <duration>", help: "release budget reservations older than this (left by a crashed replica), e.g. 30m; 0 never (env GROVE_RESERVATION_TTL; default 15m)" },
  { key: "allowedHosts", option: "--allowed-hosts <names>", help: "Host names answered besides loopback ones, comma-separated: a reverse proxy's or tunnel's name (env GROVE_ALLOWED_HOSTS)" },
  { key: "corsOrigins", option: "--cors-origins <origins>", help: "browser origins allowed to call the API cross-site, comma-separated; localhost for any origin on this machine; * for any (env GROVE_CORS_ORIGINS; default none)" },
  { key: "dataDir", option: "--data-dir <dir>", help: "the one directory whose files HTTP requests may name (fine-tune data, task files) (env GROVE_DATA_DIR; default none: upload them)" },
  { key: "gpuLayers", option: "--gpu-layers <n>", help: "layers offloaded to a GPU when one is usable, -1 all, 0 none (env GROVE_GPU_LAYERS; default -1)" },
  { key: "cacheTypeK", option: "--cache-type-k <type>", help: "KV cache type of keys: f16, q8_0, q4_0 (env GROVE_CACHE_TYPE_K; default f16)" },
  { key: "cacheTypeV", option: "--cache-type-v <type>", help: "KV cache type of values: f16, q8_0, q4_0; quantized needs flash attention (env GROVE_CACHE_TYPE_V; default f16)" },
  { key: "flashAttn", option: "--flash-attn <mode>", help: "flash attention: auto, on, off (env GROVE_FLASH_ATTN; default auto)" },
  { key: "batchSize", option: "--batch-size <n>", help: "most tokens one decode step takes, at least --parallel (env GROVE_BATCH_SIZE; default 2048)" },
  { key: "ubatchSize", option: "--ubatch-size <n>", help: "tokens computed at once, and the prompt chunk taken per step while others generate (env GROVE_UBATCH_SIZE; default 512)" },
  { key: "chatTemplate", option: "--chat-template <name|jinja>", help: "a chat template used instead of the models' own: a llama.cpp built-in format (llama3, chatml, command-r…) or Jinja text (env GROVE_CHAT_TEMPLATE)" },
  { key: "chatTemplateFile", option: "--chat-template-file <file>", help: "a Jinja chat template used instead of the models' own (env GROVE_CHAT_TEMPLATE_FILE)" },
  { key: "reasoning", option: "--reasoning <mode>", help: "reasoning models think: auto, on, or off (templates get enable_thinking false; env GROVE_REASONING)" },
  { key: "acceptAnyModel", option: "--accept-any-model", help: "with one --model FILE, answer any model name with it, as llama-server does (env GROVE_ACCEPT_ANY_MODEL=on)" },
  { key: "slots", option: "--slots", help: "serve llama-server's GET /slots (env GROVE_SLOTS=on)" },
  { key: "backendSampling", option: "--backend-sampling", help: "accepted for llama-server's flag and changes nothing: Grove always samples on the CPU with llama.cpp's sampler chain (env GROVE_BACKEND_SAMPLING=on)" },
  { key: "pooling", option: "--pooling <type>", help: "embedding pooling: auto (the model's), mean, cls, last, none (per token, llama-server's /embeddings only) (env GROVE_POOLING; default auto)" },
  { key: "seed", option: "--seed <n>", help: "sampling seed of requests that set none, -1 a new one each (env GROVE_SEED; default -1)" },
  { key: "tags", option: "--tags <labels>", help: "labels /v1/models lists with a --model FILE, comma-separated; informational (env GROVE_TAGS)" },
  { key: "lora", option: "--lora <files>", help: "LoRA adapter files for a --model FILE, comma-separated, as llama-server's: applied at scale 1 to requests without their own lora, listed by GET /lora-adapters (env GROVE_LORA)" },
  { key: "loraScaled", option: "--lora-scaled <file:scale,...>", help: "as --lora, each at its scale (env GROVE_LORA_SCALED)" },
  { key: "loraInitWithoutApply", option: "--lora-init-without-apply", help: "start the --lora adapters at scale 0: requests apply them with lora: [{id, scale}] (env GROVE_LORA_INIT_WITHOUT_APPLY=on)" },
  { key: "alias", option: "--alias <names>", help: "names a --model FILE answers to instead of its file name, comma-separated (env GROVE_ALIAS)" },
  { key: "mmap", option: "--mmap <mode>", help: "map model files: auto (with a GPU), on, off (env GROVE_MMAP; default auto)" },
  { key: "poll", option: "--poll <level>", help: "busy-wait level of the decode thread pool, 0-100, as llama-server's --poll (env GROVE_POLL; default 0)" },
  { key: "libllamaDir", option: "--libllama-dir <dir>", help: "load llama.cpp's libraries from this build of the same version (benchmarks) (env GROVE_LIBLLAMA_DIR)" },
  { key: "webDir", option: "--web-dir <dir>", help: "serve this build of the web app instead of the bundled one, or 'none' for the APIs only (env GROVE_WEB_DIR)" },
  { key: "logLevel", option: "--log-level <level>", help: "fatal|error|warn|info|debug|trace|silent (env GROVE_LOG_LEVEL)" },
];

/**
 * Adds every flag of {@link SERVE_FLAGS} to `command` and returns how its parsed options become
 * the config's flags: each under its configuration key, a switch as "on".
 */
export function declareServeFlags(command: Command): (flags: Record<string, string | boolean | undefined>) => Partial<Record<keyof GroveConfig, unknown>> {
  const declared = SERVE_FLAGS.map((flag) => ({ flag, option: new Option(flag.option, flag.help) }));
  for (const { option } of declared) command.addOption(option);
  return (flags) =>
    Object.fromEntries(
      declared.map(({ flag, option }) => {
        const value = flags[option.attributeName()];
        return [flag.key, value === true ? "on" : value];
      }),
    );
}

/** `grove serve`: the OpenAI-compatible API over one model (the embedded default if none is named). */
export function registerServeCommand(program: Command): void {
  const command = program
    .command("serve")
    .description("serve the store's models (or one GGUF file) over an OpenAI-compatible HTTP API");
  const configFlags = declareServeFlags(command);
  command.action(async (flags: Record<string, string | boolean | undefined>) => {
    const config = loadConfig({ flags: configFlags(flags) });
    const logger = createLogger(config.logLevel);
    const grove = await startGrove(config, logger);
    const model = grove.engine.models[0]!.info;
    const name = grove.defaultModel;
    const example = await examplePrompt(grove, name);
    process.stdout.write(
      `Grove is serving ${name} (${model.digest.slice(0, 19)}…, ${model.slots} slots × ${model.contextSize} tokens, ${model.threads} threads) at ${grove.url}\n` +
        (grove.webApp ? `Web app: ${grove.url}/\n` : "") +
        `Try:\n  curl ${grove.url}/v1/chat/completions -H 'content-type: application/json'` +
        `${config.apiKey ? " -H 'authorization: Bearer $GROVE_API_KEY'" : ""} \\\n` +
        `    -d '{"model":"${name}","messages":[{"role":"user","content":${example}}],"max_tokens":32}'\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        logger.info("shutting down");
        grove.shutdown().then(resolve, (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          resolve();
        });
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
  });
}
