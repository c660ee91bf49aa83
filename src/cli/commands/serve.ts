import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
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

/** `grove serve`: the OpenAI-compatible API over one model (the embedded default if none is named). */
export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("serve the store's models (or one GGUF file) over an OpenAI-compatible HTTP API")
    .option("--model <file>", "GGUF file to serve alone, or a store name/digest to load first (env GROVE_MODEL); default: the embedded model, created once")
    .option("--host <host>", "interface to bind (env GROVE_HOST)", undefined)
    .option("--port <port>", "TCP port, 0 for any free one (env GROVE_PORT; default 11435)")
    .option("--threads <n>", "CPU threads (env GROVE_THREADS; default 0 = 1 for models under 1 GiB, else every core)")
    .option("--parallel <n>", "parallel slots decoded together (env GROVE_PARALLEL; default 4)")
    .option("--ctx-size <n>", "context tokens per slot, or of the one shared cache with --kv-unified (env GROVE_CTX_SIZE; default 2048, or the model's training context when smaller)")
    .option("--kv-unified", "one KV cache of --ctx-size tokens shared by all slots, each may use all of it, as llama-server's; when full, idle slots' caches are dropped, then running requests fail (env GROVE_KV_UNIFIED=on)")
    .option("--model-settings <list>", "per-model ctx and slots, e.g. 'chat:f16=ctx:1024,slots:8;other:q4=ctx:8192,slots:2' (env GROVE_MODEL_SETTINGS)")
    .option("--queue-limit <n>", "requests that may wait for a slot before 503 (env GROVE_QUEUE_LIMIT; default 64)")
    .option("--max-models <n>", "models kept loaded at once (env GROVE_MAX_MODELS; default 2)")
    .option("--memory-budget <size>", "memory for the process and its models, e.g. 2GiB: LRU idle models are evicted to fit, else 503 (env GROVE_MEMORY_BUDGET; default none)")
    .option("--keep-alive <duration>", "how long a model stays loaded after a request that sets no keep_alive, as Ollama's: 5m, 1h30m, seconds; 0 unloads after each request, -1 keeps it (env GROVE_KEEP_ALIVE; default -1)")
    .option("--idle-unload <duration>", "older spelling of --keep-alive (0 = never) (env GROVE_IDLE_UNLOAD)")
    .option("--api-key <key>", "require this bearer key on /v1 (env GROVE_API_KEY); needed off loopback")
    .option("--home <dir>", "data directory (env GROVE_HOME; default ~/.grove)")
    .option("--database <url>", "PostgreSQL URL for keys, budgets and usage shared by replicas (env GROVE_DATABASE_URL; default <home>/service.db)")
    .option("--redis <url>", "Redis URL for rate-limit counters shared by replicas (env GROVE_REDIS_URL; default in-process)")
    .option("--shutdown-grace <duration>", "on SIGTERM/SIGINT, let in-flight requests finish this long, then cancel them, e.g. 30s (env GROVE_SHUTDOWN_GRACE; default 10s)")
    .option("--upstream-health-interval <duration>", "health-check upstreams (grove upstream add) this often (env GROVE_UPSTREAM_HEALTH_INTERVAL; default 10s)")
    .option("--reservation-ttl <duration>", "release budget reservations older than this (left by a crashed replica), e.g. 30m; 0 never (env GROVE_RESERVATION_TTL; default 15m)")
    .option("--allowed-hosts <names>", "Host names answered besides loopback ones, comma-separated: a reverse proxy's or tunnel's name (env GROVE_ALLOWED_HOSTS)")
    .option("--cors-origins <origins>", "browser origins allowed to call the API cross-site, comma-separated; localhost for any origin on this machine; * for any (env GROVE_CORS_ORIGINS; default none)")
    .option("--data-dir <dir>", "the one directory whose files HTTP requests may name (fine-tune data, task files) (env GROVE_DATA_DIR; default none: upload them)")
    .option("--gpu-layers <n>", "layers offloaded to a GPU when one is usable, -1 all, 0 none (env GROVE_GPU_LAYERS; default -1)")
    .option("--cache-type-k <type>", "KV cache type of keys: f16, q8_0, q4_0 (env GROVE_CACHE_TYPE_K; default f16)")
    .option("--cache-type-v <type>", "KV cache type of values: f16, q8_0, q4_0; quantized needs flash attention (env GROVE_CACHE_TYPE_V; default f16)")
    .option("--flash-attn <mode>", "flash attention: auto, on, off (env GROVE_FLASH_ATTN; default auto)")
    .option("--batch-size <n>", "most tokens one decode step takes, at least --parallel (env GROVE_BATCH_SIZE; default 2048)")
    .option("--ubatch-size <n>", "tokens computed at once, and the prompt chunk taken per step while others generate (env GROVE_UBATCH_SIZE; default 512)")
    .option("--chat-template <name|jinja>", "a chat template used instead of the models' own: a llama.cpp built-in format (llama3, chatml, command-r…) or Jinja text (env GROVE_CHAT_TEMPLATE)")
    .option("--chat-template-file <file>", "a Jinja chat template used instead of the models' own (env GROVE_CHAT_TEMPLATE_FILE)")
    .option("--reasoning <mode>", "reasoning models think: auto, on, or off (templates get enable_thinking false; env GROVE_REASONING)")
    .option("--accept-any-model", "with one --model FILE, answer any model name with it, as llama-server does (env GROVE_ACCEPT_ANY_MODEL=on)")
    .option("--slots", "serve llama-server's GET /slots (env GROVE_SLOTS=on)")
    .option("--backend-sampling", "accepted for llama-server's flag and changes nothing: Grove always samples on the CPU with llama.cpp's sampler chain (env GROVE_BACKEND_SAMPLING=on)")
    .option("--pooling <type>", "embedding pooling: auto (the model's), mean, cls, last, none (per token, llama-server's /embeddings only) (env GROVE_POOLING; default auto)")
    .option("--seed <n>", "sampling seed of requests that set none, -1 a new one each (env GROVE_SEED; default -1)")
    .option("--tags <labels>", "labels /v1/models lists with a --model FILE, comma-separated; informational (env GROVE_TAGS)")
    .option("--alias <names>", "names a --model FILE answers to instead of its file name, comma-separated (env GROVE_ALIAS)")
    .option("--mmap <mode>", "map model files: auto (with a GPU), on, off (env GROVE_MMAP; default auto)")
    .option("--poll <level>", "busy-wait level of the decode thread pool, 0-100, as llama-server's --poll (env GROVE_POLL; default 0)")
    .option("--libllama-dir <dir>", "load llama.cpp's libraries from this build of the same version (benchmarks) (env GROVE_LIBLLAMA_DIR)")
    .option("--web-dir <dir>", "serve this build of the web app instead of the bundled one, or 'none' for the APIs only (env GROVE_WEB_DIR)")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace|silent (env GROVE_LOG_LEVEL)")
    .action(async (flags: Record<string, string | undefined>) => {
      const config = loadConfig({
        flags: {
          model: flags.model,
          host: flags.host,
          port: flags.port,
          threads: flags.threads,
          parallel: flags.parallel,
          contextSize: flags.ctxSize,
          queueLimit: flags.queueLimit,
          modelSettings: flags.modelSettings,
          maxModels: flags.maxModels,
          memoryBudget: flags.memoryBudget,
          idleUnload: flags.idleUnload,
          keepAlive: flags.keepAlive,
          shutdownGrace: flags.shutdownGrace,
          upstreamHealthInterval: flags.upstreamHealthInterval,
          reservationTtl: flags.reservationTtl,
          apiKey: flags.apiKey,
          home: flags.home,
          database: flags.database,
          redis: flags.redis,
          logLevel: flags.logLevel,
          webDir: flags.webDir,
          allowedHosts: flags.allowedHosts,
          corsOrigins: flags.corsOrigins,
          dataDir: flags.dataDir,
          gpuLayers: flags.gpuLayers,
          cacheTypeK: flags.cacheTypeK,
          cacheTypeV: flags.cacheTypeV,
          flashAttn: flags.flashAttn,
          batchSize: flags.batchSize,
          ubatchSize: flags.ubatchSize,
          libllamaDir: flags.libllamaDir,
          poll: flags.poll,
          mmap: flags.mmap,
          slots: flags.slots ? "on" : undefined,
          kvUnified: flags.kvUnified ? "on" : undefined,
          backendSampling: flags.backendSampling ? "on" : undefined,
          acceptAnyModel: flags.acceptAnyModel ? "on" : undefined,
          reasoning: flags.reasoning,
          pooling: flags.pooling,
          seed: flags.seed,
          alias: flags.alias,
          tags: flags.tags,
          chatTemplate: flags.chatTemplate,
          chatTemplateFile: flags.chatTemplateFile,
        },
      });
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
