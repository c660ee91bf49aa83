import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import { createLogger } from "../../logging/logger.js";
import { startGrove } from "../../services.js";

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
    .option("--ctx-size <n>", "context tokens per slot (env GROVE_CTX_SIZE; default 2048)")
    .option("--queue-limit <n>", "requests that may wait for a slot before 503 (env GROVE_QUEUE_LIMIT; default 64)")
    .option("--max-models <n>", "models kept loaded at once (env GROVE_MAX_MODELS; default 2)")
    .option("--api-key <key>", "require this bearer key on /v1 (env GROVE_API_KEY); needed off loopback")
    .option("--home <dir>", "data directory (env GROVE_HOME; default ~/.grove)")
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
          maxModels: flags.maxModels,
          apiKey: flags.apiKey,
          home: flags.home,
          logLevel: flags.logLevel,
        },
      });
      const logger = createLogger(config.logLevel);
      const grove = await startGrove(config, logger);
      const model = grove.engine.models[0]!.info;
      const name = grove.defaultModel;
      process.stdout.write(
        `Grove is serving ${name} (${model.digest.slice(0, 19)}…, ${model.slots} slots × ${model.contextSize} tokens, ${model.threads} threads) at ${grove.url}\n` +
          `Try:\n  curl ${grove.url}/v1/chat/completions -H 'content-type: application/json'` +
          `${config.apiKey ? " -H 'authorization: Bearer $GROVE_API_KEY'" : ""} \\\n` +
          `    -d '{"model":"${name}","messages":[{"role":"user","content":"Hello"}],"max_tokens":32}'\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          logger.info("shutting down");
          grove.close().then(resolve, resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
}
