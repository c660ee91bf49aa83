import type { ChatMessage } from "./chat-client.js";

/**
 * What the user typed in `grove run`, read as `ollama run` reads it (ollama `cmd/interactive.go`):
 * `"""` opens and closes a multi-line message, `/set`, `/show`, `/clear`, `/load`, `/bye`, `/?`.
 * No I/O here: {@link ChatInput.accept} turns a line into an action the terminal carries out,
 * so every command is tested without a terminal.
 */
export type ChatAction =
  /** Send the conversation ({@link ChatInput.conversation}); the user's message is in it. */
  | { kind: "send" }
  /** Print this text (help, confirmations, refusals). */
  | { kind: "print"; text: string }
  /** A multi-line message or system prompt continues: show the `... ` prompt. */
  | { kind: "more" }
  /** Show something the server knows about the model. */
  | { kind: "show"; what: ShowTopic }
  /** Switch to another model (the conversation starts over). */
  | { kind: "load"; model: string }
  | { kind: "exit" }
  /** Nothing to do (an empty line). */
  | { kind: "none" };

export const SHOW_TOPICS = ["info", "license", "modelfile", "parameters", "system", "template"] as const;
export type ShowTopic = (typeof SHOW_TOPICS)[number];

type ParameterType = "int" | "float" | "bool" | "strings";

/**
 * The parameters `/set parameter` takes (Ollama's `api.Options`) with their types. The server
 * bounds the values (a temperature of 9 is its 400, printed, and the chat goes on); runtime ones
 * such as `num_gpu` are accepted there and changed at load only, as Grove loads once.
 */
export const PARAMETER_TYPES: Readonly<Record<string, ParameterType>> = {
  seed: "int",
  num_predict: "int",
  top_k: "int",
  top_p: "float",
  min_p: "float",
  num_ctx: "int",
  temperature: "float",
  repeat_penalty: "float",
  repeat_last_n: "int",
  presence_penalty: "float",
  frequency_penalty: "float",
  typical_p: "float",
  num_keep: "int",
  num_batch: "int",
  num_gpu: "int",
  num_thread: "int",
  penalize_newline: "bool",
  use_mmap: "bool",
  stop: "strings",
};

export const HELP = [
  "Available Commands:",
  "  /set            Set session variables",
  "  /show           Show model information",
  "  /load <model>   Load a model (the conversation starts over)",
  "  /clear          Clear session context",
  "  /bye            Exit",
  "  /?, /help       Help for a command",
  "  /? shortcuts    Help for keyboard shortcuts",
  "",
  'Use """ to begin a multi-line message.',
  "",
].join("\n");

const HELP_SET = [
  "Available Commands:",
  "  /set parameter ...     Set a parameter",
  "  /set system <string>   Set system message",
  "  /set format json       Enable JSON mode",
  "  /set noformat          Disable formatting",
  "  /set verbose           Show timings after each answer",
  "  /set quiet             Disable timings",
  "",
].join("\n");

const HELP_SHOW = [
  "Available Commands:",
  "  /show info         Show details for this model",
  "  /show license      Show model license",
  "  /show modelfile    Show Modelfile for this model",
  "  /show parameters   Show parameters for this model",
  "  /show system       Show system message",
  "  /show template     Show prompt template",
  "",
].join("\n");

const HELP_PARAMETERS = [
  "Available Parameters:",
  "  /set parameter seed <int>             Random number seed",
  "  /set parameter num_predict <int>      Max number of tokens to predict",
  "  /set parameter top_k <int>            Pick from top k num of tokens",
  "  /set parameter top_p <float>          Pick token based on sum of probabilities",
  "  /set parameter min_p <float>          Pick token based on top token probability * min_p",
  "  /set parameter num_ctx <int>          Set the context size (up to the context the model was loaded with)",
  "  /set parameter temperature <float>    Set creativity level",
  "  /set parameter repeat_penalty <float> How strongly to penalize repetitions",
  "  /set parameter stop <string> <string> ...   Set the stop parameters",
  "",
].join("\n");

const HELP_SHORTCUTS = [
  "Available keyboard shortcuts:",
  "  Up, Down            Previous and next lines of the history",
  "  Ctrl + a            Move to the beginning of the line (Home)",
  "  Ctrl + e            Move to the end of the line (End)",
  "   Alt + b            Move back (left) one word",
  "   Alt + f            Move forward (right) one word",
  "  Ctrl + k            Delete the sentence after the cursor",
  "  Ctrl + u            Delete the sentence before the cursor",
  "  Ctrl + w            Delete the word before the cursor",
  "",
  "  Ctrl + l            Clear the screen",
  "  Ctrl + c            Stop the model from responding",
  "  Ctrl + d            Exit (/bye)",
  "",
].join("\n");

/** A typed parameter value, or why the text is not one. */
export function parseParameter(name: string, values: readonly string[]): { value: unknown } | { error: string } {
  const type = PARAMETER_TYPES[name];
  if (type === undefined) return { error: `unknown parameter '${name}'; /set parameter lists them` };
  if (type === "strings") return { value: [...values] };
  if (values.length !== 1) return { error: `${name} takes one value` };
  const text = values[0]!;
  if (type === "bool") {
    if (text !== "true" && text !== "false") return { error: `${name} takes true or false, not '${text}'` };
    return { value: text === "true" };
  }
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) return { error: `${name} takes a number, not '${text}'` };
  if (type === "int" && !Number.isInteger(value)) return { error: `${name} takes a whole number, not '${text}'` };
  return { value };
}

export class ChatInput {
  /** The conversation so far, without the system message. */
  readonly turns: ChatMessage[] = [];
  /** `/set system`'s message, sent first with every request. */
  system: string | undefined;
  /** `/set parameter`'s values, as Ollama's `options`. */
  readonly options: Record<string, unknown> = {};
  /** `/set format json`. */
  format: string | undefined;
  /** `/set verbose`: timings after each answer. */
  verbose = false;
  #buffer = "";
  #multiline: "none" | "prompt" | "system" = "none";

  /** True while a multi-line message or system prompt is open. */
  get continuing(): boolean {
    return this.#multiline !== "none";
  }

  /** What the next request sends: the system message, then the turns. */
  conversation(): ChatMessage[] {
    return [...(this.system === undefined ? [] : [{ role: "system" as const, content: this.system }]), ...this.turns];
  }

  /** Ctrl-C at the prompt: whatever was being typed is dropped. */
  interrupt(): void {
    this.#buffer = "";
    this.#multiline = "none";
  }

  /** The answer to the last message arrived: it joins the conversation. */
  answered(content: string): void {
    this.turns.push({ role: "assistant", content });
  }

  /** The last message got no answer (cancelled, refused): it leaves the conversation. */
  unanswered(): void {
    if (this.turns.at(-1)?.role === "user") this.turns.pop();
  }

  /** Reads one line of input. */
  accept(line: string): ChatAction {
    if (this.#multiline !== "none") {
      const closed = line.endsWith('"""');
      this.#buffer += closed ? line.slice(0, -3) : `${line}\n`;
      if (!closed) return { kind: "more" };
      const kind = this.#multiline;
      this.#multiline = "none";
      return kind === "system" ? this.#setSystem(this.#take()) : this.#send(this.#take());
    }
    if (line.startsWith('"""')) {
      const rest = line.slice(3);
      if (rest.endsWith('"""') && rest.length >= 3) return this.#send(rest.slice(0, -3));
      this.#buffer = `${rest}\n`;
      this.#multiline = "prompt";
      return { kind: "more" };
    }
    if (line.startsWith("/")) return this.#command(line);
    return this.#send(line);
  }

  #take(): string {
    const text = this.#buffer;
    this.#buffer = "";
    return text;
  }

  #send(content: string): ChatAction {
    if (content.trim() === "") return { kind: "none" };
    this.turns.push({ role: "user", content });
    return { kind: "send" };
  }

  #setSystem(text: string): ChatAction {
    this.system = text;
    return { kind: "print", text: "Set system message.\n" };
  }

  #command(line: string): ChatAction {
    const args = line.trim().split(/\s+/);
    const name = args[0]!;
    const print = (text: string): ChatAction => ({ kind: "print", text });
    switch (name) {
      case "/bye":
      case "/exit":
        return { kind: "exit" };
      case "/clear":
        this.turns.length = 0;
        return print("Cleared session context\n");
      case "/?":
      case "/help": {
        const topic = args[1]?.replace(/^\//, "");
        if (topic === "set") return print(HELP_SET);
        if (topic === "show") return print(HELP_SHOW);
        if (topic === "shortcut" || topic === "shortcuts") return print(HELP_SHORTCUTS);
        return print(HELP);
      }
      case "/show": {
        const topic = args[1];
        if (topic === undefined) return print(HELP_SHOW);
        if (!(SHOW_TOPICS as readonly string[]).includes(topic)) return print(`Unknown command '/show ${topic}'. Type /? for help\n`);
        return { kind: "show", what: topic as ShowTopic };
      }
      case "/load":
        if (args.length !== 2) return print("Usage:\n  /load <modelname>\n");
        return { kind: "load", model: args[1]! };
      case "/set":
        return this.#set(line, args);
      default:
        return print(`Unknown command '${name}'. Type /? for help\n`);
    }
  }

  #set(line: string, args: string[]): ChatAction {
    const print = (text: string): ChatAction => ({ kind: "print", text });
    switch (args[1]) {
      case undefined:
        return print(HELP_SET);
      case "parameter": {
        if (args.length < 4) return print(HELP_PARAMETERS);
        const [, , name, ...values] = args as [string, string, string, ...string[]];
        const parsed = parseParameter(name, values);
        if ("error" in parsed) return print(`Couldn't set parameter: ${parsed.error}\n`);
        this.options[name] = parsed.value;
        return print(`Set parameter '${name}' to '${values.join(", ")}'\n`);
      }
      case "system": {
        // The text as typed after "/set system", spaces kept.
        const text = line.replace(/^\s*\/set\s+system\s*/, "");
        if (text === "") return print(HELP_SET);
        if (!text.startsWith('"""')) return this.#setSystem(text);
        const inner = text.slice(3);
        if (inner.endsWith('"""') && inner.length >= 3) return this.#setSystem(inner.slice(0, -3));
        this.#buffer = `${inner}\n`;
        this.#multiline = "system";
        return { kind: "more" };
      }
      case "format":
        if (args[2] !== "json") return print("Invalid or missing format. For 'json' mode use '/set format json'\n");
        this.format = "json";
        return print("Set format to 'json' mode.\n");
      case "noformat":
        this.format = undefined;
        return print("Disabled format.\n");
      case "verbose":
        this.verbose = true;
        return print("Set 'verbose' mode.\n");
      case "quiet":
        this.verbose = false;
        return print("Set 'quiet' mode.\n");
      default:
        return print(`Unknown command '/set ${args[1]}'. Type /? for help\n`);
    }
  }
}
