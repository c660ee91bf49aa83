import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { spinner } from "../progress.js";
import type { ChatClient, ChatStats, ShowResponse } from "./chat-client.js";
import { ChatInput, type ChatAction, type ShowTopic } from "./chat-input.js";

/** Options of {@link runInteractiveChat} and {@link answerOnce}. */
export interface ChatTerminalOptions {
  client: ChatClient;
  /** The name the server serves the model under. */
  model: string;
  /** Ollama's `keep_alive` sent with each request. */
  keepAlive?: string;
  /** `json` constrains answers to JSON. */
  format?: string;
  /** Where typed lines come from. @default process.stdin */
  input?: NodeJS.ReadableStream;
  /** Where answers go. @default process.stdout */
  output?: NodeJS.WriteStream;
  /** The history file (the last {@link HISTORY_SIZE} lines); none kept on disk without it. */
  historyFile?: string;
}

/** Lines of history kept, in memory and in the file. */
export const HISTORY_SIZE = 200;

/**
 * Answers one prompt on stdout (`grove run MODEL PROMPT`, or text piped in): the text alone, as
 * it streams, then a newline; a spinner on stderr until the first words, when it is a terminal.
 */
export async function answerOnce(options: ChatTerminalOptions, prompt: string): Promise<void> {
  const output = options.output ?? process.stdout;
  const input = new ChatInput();
  if (options.format !== undefined) input.format = options.format;
  if (input.accept(prompt).kind !== "send") return;
  const text = await streamAnswer(options, input, output, new AbortController().signal);
  if (!text.endsWith("\n")) output.write("\n");
}

/**
 * The interactive chat of `grove run MODEL` (as `ollama run`): `>>> ` prompts with line editing
 * and history (node's readline), answers streamed as they come, Ctrl-C stops an answer (or drops
 * the line being typed), Ctrl-D or `/bye` ends the chat.
 */
export async function runInteractiveChat(options: ChatTerminalOptions): Promise<void> {
  const output = options.output ?? process.stdout;
  const history = options.historyFile === undefined ? [] : await readHistory(options.historyFile);
  const lines = createInterface({
    input: options.input ?? process.stdin,
    output,
    terminal: output.isTTY === true,
    history,
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
  });
  const session = { model: options.model, input: new ChatInput() };
  if (options.format !== undefined) session.input.format = options.format;
  if (options.historyFile !== undefined) {
    const file = options.historyFile;
    // readline keeps the newest line first; the file reads oldest first, as a shell's does.
    lines.on("history", (entries: string[]) => void writeHistory(file, entries));
  }
  const queue: string[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  let answering: AbortController | undefined;
  lines.on("line", (line) => {
    queue.push(line);
    wake?.();
  });
  lines.on("close", () => {
    closed = true;
    answering?.abort();
    wake?.();
  });
  lines.on("SIGINT", () => {
    if (answering !== undefined) return answering.abort();
    const typed = lines.line !== "" || session.input.continuing;
    session.input.interrupt();
    // Drop what was typed (Ctrl-E then Ctrl-U, as a user would), then a fresh prompt.
    lines.write(null, { ctrl: true, name: "e" });
    lines.write(null, { ctrl: true, name: "u" });
    output.write(typed ? "\n" : "\nUse Ctrl + d or /bye to exit.\n");
    prompt(lines, false);
  });

  prompt(lines, false);
  while (true) {
    if (queue.length === 0 && !closed) await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
    const line = queue.shift();
    if (line === undefined) {
      if (closed) break;
      continue;
    }
    const action = session.input.accept(line);
    if (action.kind === "exit") break;
    answering = action.kind === "send" || action.kind === "show" || action.kind === "load" ? new AbortController() : undefined;
    try {
      await carryOut(action, { ...options, model: session.model }, session, output, answering?.signal);
    } catch (error) {
      if (action.kind === "send") session.input.unanswered();
      if (!answering?.signal.aborted) output.write(`error: ${error instanceof Error ? error.message : String(error)}\n\n`);
    } finally {
      answering = undefined;
    }
    if (closed) break;
    prompt(lines, session.input.continuing);
  }
  if (!closed) lines.close();
  output.write("\n");
}

function prompt(lines: Interface, continuing: boolean): void {
  lines.setPrompt(continuing ? "... " : ">>> ");
  lines.prompt();
}

async function carryOut(action: ChatAction, options: ChatTerminalOptions, session: { model: string; input: ChatInput }, output: NodeJS.WriteStream, signal: AbortSignal | undefined): Promise<void> {
  switch (action.kind) {
    case "print":
      return void output.write(action.text);
    case "send": {
      const text = await streamAnswer(options, session.input, output, signal!);
      if (signal!.aborted) {
        session.input.unanswered();
        output.write("\n");
        return;
      }
      output.write(text.endsWith("\n") ? "\n" : "\n\n");
      return;
    }
    case "show":
      return void output.write(formatShow(action.what, await options.client.show(session.model), session.input));
    case "load": {
      output.write(`Loading model '${action.model}'\n`);
      const loading = spinner(`loading ${action.model}`);
      try {
        await options.client.load(action.model, options.keepAlive);
      } finally {
        loading.stop();
      }
      session.model = action.model;
      session.input.turns.length = 0;
      return;
    }
    default:
      return;
  }
}

/**
 * Sends the conversation and writes the answer as it streams; the answer joins the conversation
 * unless it was cancelled. Returns the text written.
 */
async function streamAnswer(options: ChatTerminalOptions, input: ChatInput, output: NodeJS.WriteStream, signal: AbortSignal): Promise<string> {
  const waiting = spinner("", { delayMs: 200 });
  let text = "";
  let stats: ChatStats | undefined;
  try {
    const chunks = options.client.chat(
      {
        model: options.model,
        messages: input.conversation(),
        options: input.options,
        ...(input.format === undefined ? {} : { format: input.format }),
        ...(options.keepAlive === undefined ? {} : { keepAlive: options.keepAlive }),
      },
      signal,
    );
    for await (const chunk of chunks) {
      waiting.stop();
      if (chunk.type === "content") {
        output.write(chunk.text);
        text += chunk.text;
      } else stats = chunk.stats;
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    waiting.stop();
  }
  if (!signal.aborted) input.answered(text);
  if (stats !== undefined && input.verbose) process.stderr.write(`${text.endsWith("\n") ? "" : "\n"}${formatStats(stats)}`);
  return text;
}

/** Ollama's `--verbose` figures: durations, counts and rates. */
export function formatStats(stats: ChatStats): string {
  const seconds = (ns: number) => `${(ns / 1e9).toFixed(3)}s`;
  const rate = (count: number, ns: number) => (ns > 0 ? `${((count * 1e9) / ns).toFixed(2)} tokens/s` : "-");
  return [
    `total duration:       ${seconds(stats.totalDuration)}`,
    `load duration:        ${seconds(stats.loadDuration)}`,
    `prompt eval count:    ${stats.promptEvalCount} token(s)`,
    `prompt eval duration: ${seconds(stats.promptEvalDuration)}`,
    `prompt eval rate:     ${rate(stats.promptEvalCount, stats.promptEvalDuration)}`,
    `eval count:           ${stats.evalCount} token(s)`,
    `eval duration:        ${seconds(stats.evalDuration)}`,
    `eval rate:            ${rate(stats.evalCount, stats.evalDuration)}`,
    "",
  ].join("\n");
}

/** What `/show TOPIC` prints, from `/api/show` and the session's own settings. */
export function formatShow(what: ShowTopic, show: ShowResponse, input: ChatInput): string {
  switch (what) {
    case "info":
      return formatInfo(show);
    case "license":
      return show.license ? `${show.license}\n` : "No license was specified for this model.\n";
    case "modelfile":
      return `${show.modelfile ?? ""}\n`;
    case "template":
      return show.template ? `${show.template}\n` : "No prompt template was specified for this model.\n";
    case "system": {
      const system = input.system ?? show.system;
      return system ? `${system}\n\n` : "No system message was specified for this model.\n";
    }
    case "parameters": {
      const lines = ["Model defined parameters:"];
      if (!show.parameters) lines.push("  No additional parameters were specified for this model.");
      else for (const line of show.parameters.split("\n")) lines.push(`  ${line}`);
      lines.push("");
      const own = Object.entries(input.options);
      if (own.length > 0) {
        lines.push("User defined parameters:");
        for (const [name, value] of own) lines.push(`  ${name.padEnd(30)} ${Array.isArray(value) ? value.map((item) => JSON.stringify(item)).join(" ") : String(value)}`);
        lines.push("");
      }
      return `${lines.join("\n")}\n`;
    }
  }
}

function formatInfo(show: ShowResponse): string {
  const info = show.model_info ?? {};
  const architecture = typeof info["general.architecture"] === "string" ? info["general.architecture"] : (show.details?.family ?? "");
  const rows: [string, unknown][] = [
    ["architecture", architecture],
    ["parameters", show.details?.parameter_size],
    ["context length", info[`${architecture}.context_length`]],
    ["embedding length", info[`${architecture}.embedding_length`]],
    ["quantization", show.details?.quantization_level],
  ];
  const lines = ["  Model"];
  for (const [label, value] of rows) if (value !== undefined && value !== null && value !== "") lines.push(`    ${label.padEnd(20)}${String(value)}`);
  if (show.capabilities && show.capabilities.length > 0) lines.push("", "  Capabilities", ...show.capabilities.map((capability) => `    ${capability}`));
  if (show.parameters) lines.push("", "  Parameters", ...show.parameters.split("\n").map((line) => `    ${line}`));
  if (show.system) lines.push("", "  System", `    ${show.system.split("\n")[0]}`);
  if (show.license) lines.push("", "  License", `    ${show.license.split("\n")[0]}`);
  return `${lines.join("\n")}\n\n`;
}

async function readHistory(file: string): Promise<string[]> {
  try {
    const lines = (await readFile(file, "utf8")).split("\n").filter((line) => line !== "");
    return lines.slice(-HISTORY_SIZE).reverse();
  } catch {
    return [];
  }
}

async function writeHistory(file: string, entries: readonly string[]): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${[...entries].reverse().join("\n")}\n`, { mode: 0o600 });
  } catch {
    // History is a convenience: a read-only home does not stop the chat.
  }
}
