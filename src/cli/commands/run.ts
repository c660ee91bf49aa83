import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import { serverTarget } from "../../config/server-url.js";
import { ConfigError, GroveError, InvalidRequestError, ModelNotFoundError } from "../../core/errors.js";
import { createLogger } from "../../logging/logger.js";
import { startGrove, type RunningGrove } from "../../services.js";
import { ChatClient, unreachable } from "../chat/chat-client.js";
import { answerOnce, runInteractiveChat, type ChatTerminalOptions } from "../chat/chat-terminal.js";
import { spinner } from "../progress.js";

interface RunFlags {
  host?: string;
  local?: boolean;
  format?: string;
  keepalive?: string;
  home?: string;
}

/** The history of `grove run`'s prompts, under the Grove home (as Ollama's `~/.ollama/history`). */
export const HISTORY_FILE = "history";

/**
 * Registers `grove run MODEL [PROMPT]`, Ollama's `ollama run`: an interactive chat in the
 * terminal, or one answer when a prompt is given or text is piped in. It talks to the Grove at
 * `GROVE_HOST` (or `--host`; by default one on 127.0.0.1:11435 if it answers), else serves the
 * model in this process on a loopback port — through the same `/api/chat` either way.
 *
 * @example
 * grove run demo-s-chat:f16
 * grove run demo-s-chat:f16 "What part of speech is gladness?"
 * cat notes.txt | grove run demo-s-chat:f16 "Summarize:"
 * GROVE_HOST=http://gpu-box:11434 grove run qwen2.5:7b
 */
export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("chat with a model in the terminal, or answer one prompt (piped text is read as the prompt)")
    .argument("<model>", "name, digest or unique digest prefix of a store model (or a GGUF file, served in this process)")
    .argument("[prompt...]", "answer this and exit; piped stdin is read too, before it")
    .option("--host <url>", "the Grove to talk to: host, host:port or URL (env GROVE_HOST; default 127.0.0.1:11435 if a Grove answers there, else the model is served in this process)")
    .option("--local", "serve the model in this process even when a Grove server answers")
    .option("--format <format>", "json: answer in JSON")
    .option("--keepalive <duration>", "how long the server keeps the model loaded after the chat, e.g. 5m, 0, -1 (Ollama's keep_alive)")
    .option("--home <dir>", "data directory of the model store and the prompt history (env GROVE_HOME; default ~/.grove)")
    .action(async (model: string, words: string[], flags: RunFlags) => {
      if (flags.format !== undefined && flags.format !== "json") throw new ConfigError(`--format takes json, not '${flags.format}'`, { param: "--format" });
      // As ollama: piped text is the prompt, followed by the prompt words.
      const piped = process.stdin.isTTY ? undefined : await readAll(process.stdin);
      const prompt = [piped, ...words].filter((part) => part !== undefined && part !== "").join(" ");
      const interactive = piped === undefined && words.length === 0;
      const home = loadConfig({ flags: { home: flags.home } }).home;
      const served = await connect(model, flags);
      try {
        const options: ChatTerminalOptions = {
          client: served.client,
          model: served.model,
          ...(flags.format === undefined ? {} : { format: flags.format }),
          ...(flags.keepalive === undefined ? {} : { keepAlive: flags.keepalive }),
        };
        if (interactive) await runInteractiveChat({ ...options, historyFile: join(home, HISTORY_FILE) });
        else if (prompt !== "") await answerOnce(options, prompt);
      } finally {
        await served.grove?.close();
      }
    });
}

/** The server to chat through: a running Grove, or one started here over the store. */
interface Served {
  client: ChatClient;
  /** The name requests carry. */
  model: string;
  /** The Grove started in this process, closed when the chat ends. */
  grove?: RunningGrove;
}

async function connect(model: string, flags: RunFlags): Promise<Served> {
  const target = serverTarget(flags.host === undefined ? {} : { hostFlag: flags.host });
  if (target === undefined) {
    throw new ConfigError(`${flags.host === undefined ? "GROVE_HOST (or GROVE_PORT)" : `--host ${flags.host}`} is not a host, host:port or http(s) URL`, { param: "--host" });
  }
  // A GGUF file is this machine's: it is served here, as `grove serve --model FILE` would.
  const file = /\.gguf$/i.test(model) && existsSync(model);
  if (flags.local !== true && !file) {
    const client = new ChatClient({ url: target.url, apiKey: loadConfig({ flags: { home: flags.home } }).apiKey });
    const failure = await client.probe();
    if (failure === undefined) {
      await withSpinner(`loading ${model}`, () => client.load(model, flags.keepalive));
      return { client, model };
    }
    if (target.explicit) throw unreachable(target.url, failure);
  }
  return serveHere(model, flags);
}

/**
 * Starts Grove in this process on a loopback port with a key of its own (only this client knows
 * it, and it passes the store's keys, if any), the model loaded first, one slot.
 */
async function serveHere(model: string, flags: RunFlags): Promise<Served> {
  const apiKey = randomBytes(24).toString("base64url");
  const config = loadConfig({
    flags: { home: flags.home, model, host: "127.0.0.1", port: "0", parallel: "1", webDir: "none", logLevel: "error", apiKey },
  });
  let grove: RunningGrove;
  try {
    grove = await withSpinner(`loading ${model}`, () => startGrove(config, createLogger(config.logLevel)));
  } catch (error) {
    // startGrove names its --model flag; here the model is an argument.
    if (error instanceof GroveError && error.cause instanceof ModelNotFoundError) {
      throw new GroveError("model_not_found", `The model '${model}' is not in the store at ${config.home}: grove ls lists its models, grove pull fetches one`, { cause: error });
    }
    if (error instanceof InvalidRequestError && error.param === "--model" && error.cause instanceof GroveError) {
      throw new InvalidRequestError(error.cause.message, { param: "model", cause: error });
    }
    throw error;
  }
  return { client: new ChatClient({ url: grove.url, apiKey }), model: grove.defaultModel, grove };
}

async function withSpinner<T>(label: string, work: () => Promise<T>): Promise<T> {
  const shown = spinner(label, { delayMs: 300 });
  try {
    return await work();
  } finally {
    shown.stop();
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8").trim();
}
