import { InvalidRequestError } from "../../core/errors.js";
import type { ModelConfig, ModelConfigMessage, ModelParameterValue } from "../../core/model-config.js";
import { DEPRECATED_PARAMETERS, parseParameterValue } from "./modelfile-parameters.js";

/** One instruction of a Modelfile, as Ollama's parser reads it. */
export interface ModelfileCommand {
  /** Lower case: `from`, `parameter`, `system`… */
  readonly name: string;
  /** For `parameter`: its name; for `message`: its role. */
  readonly key?: string;
  /** The value, unquoted. */
  readonly value: string;
  /** The line the instruction starts on (1-based). */
  readonly line: number;
}

/** What a Modelfile asks for: the model it starts from, adapters to put on it, and the new defaults. */
export interface ModelfileSpec {
  /** FROM: a store name or digest, a GGUF file path, or an `hf:` reference. */
  readonly from: string;
  readonly fromLine: number;
  /** ADAPTER paths (LoRA GGUF files), with their lines. */
  readonly adapters: readonly { readonly path: string; readonly line: number }[];
  readonly config: ModelConfig;
  /** Things accepted without effect (deprecated parameters), one sentence each. */
  readonly warnings: readonly string[];
}

/** Ollama's instructions; DRAFT, RENDERER, PARSER and REQUIRES are Ollama's own and refused by name. */
const COMMANDS = ["from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires"];
const UNSUPPORTED: Readonly<Record<string, string>> = {
  draft: "DRAFT (a draft model for speculative decoding) is not supported by Grove",
  renderer: "RENDERER names one of Ollama's built-in prompt renderers; Grove renders the GGUF's chat template",
  parser: "PARSER names one of Ollama's built-in output parsers; Grove reads tool calls from the chat template's family",
  requires: "REQUIRES names a minimum Ollama version, which means nothing to Grove",
};
const ROLES = ["system", "user", "assistant"];

/** `Modelfile line N: …` */
const at = (line: number) => `Modelfile line ${line}: `;

function fail(line: number, message: string, param = "modelfile"): never {
  throw new InvalidRequestError(`${at(line)}${message}`, { param });
}

/** Ollama's `unquote`: `"""…"""` or `"…"`, else the text as it is; undefined while a quote is open. */
function unquote(text: string): string | undefined {
  if (text.startsWith('"""')) return text.length >= 6 && text.endsWith('"""') ? text.slice(3, -3) : undefined;
  if (text.startsWith('"')) return text.length >= 2 && text.endsWith('"') ? text.slice(1, -1) : undefined;
  return text;
}

/**
 * Reads a Modelfile into its instructions exactly as Ollama's `parser.ParseFile` does:
 * instruction names in any case, `#` comments on their own lines, a value running to the end of
 * its line unless it opens a `"…"` or `"""…"""` string, which runs (over lines) to its closing
 * quotes; `PARAMETER name value`, `MESSAGE role value`.
 * @throws InvalidRequestError naming the line: an unknown instruction (Ollama's words), a bad
 *   MESSAGE role, a string never closed, or no FROM line
 */
export function parseModelfileCommands(text: string): ModelfileCommand[] {
  const source = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const commands: ModelfileCommand[] = [];
  let index = 0;
  let line = 1;
  const isSpace = (char: string | undefined) => char === " " || char === "\t";
  const word = (pattern: RegExp) => {
    const start = index;
    while (index < source.length && pattern.test(source[index]!)) index++;
    return source.slice(start, index);
  };
  while (index < source.length) {
    const char = source[index]!;
    if (char === "\n") {
      line++;
      index++;
      continue;
    }
    if (isSpace(char)) {
      index++;
      continue;
    }
    if (char === "#") {
      while (index < source.length && source[index] !== "\n") index++;
      continue;
    }
    const start = line;
    const name = word(/[A-Za-z]/).toLowerCase();
    if (name === "" || !isSpace(source[index]) || !COMMANDS.includes(name)) {
      fail(start, `command must be one of ${COMMANDS.map((command) => `"${command}"`).join(", ")}`);
    }
    index++;
    let key: string | undefined;
    if (name === "parameter" || name === "message") {
      key = word(name === "parameter" ? /[A-Za-z0-9_]/ : /[A-Za-z]/);
      if (key === "" || !isSpace(source[index])) fail(start, name === "parameter" ? "PARAMETER takes a name and a value" : "MESSAGE takes a role and a message");
      if (name === "message" && !ROLES.includes(key)) fail(start, 'message role must be one of "system", "user", or "assistant"');
      index++;
    }
    // The value: to the end of the line, or on to the line where its quoted string closes.
    let value: string | undefined;
    let raw = "";
    for (;;) {
      const end = source.indexOf("\n", index);
      raw += source.slice(index, end < 0 ? source.length : end);
      index = end < 0 ? source.length : end;
      value = unquote(raw.trim());
      if (value !== undefined || end < 0) break;
      raw += "\n";
      index++;
      line++;
    }
    if (value === undefined) fail(start, "a quoted value is never closed (a string opened with \" or \"\"\" must end with the same quotes)");
    commands.push({ name, ...(key === undefined ? {} : { key }), value, line: start });
  }
  return commands;
}

/**
 * Parses a Modelfile into what it asks for. Every PARAMETER is typed and bounded (Ollama's
 * names; an unknown one is Ollama's `unknown parameter 'x'`), `stop` repeats, LICENSE and
 * MESSAGE lines accumulate in order, a later SYSTEM or TEMPLATE replaces an earlier one.
 * @throws InvalidRequestError naming the line, or "no FROM line" (Ollama's words)
 */
export function parseModelfile(text: string): ModelfileSpec {
  let from: { ref: string; line: number } | undefined;
  const adapters: { path: string; line: number }[] = [];
  const parameters: Record<string, ModelParameterValue> = {};
  const messages: ModelConfigMessage[] = [];
  const license: string[] = [];
  const warnings: string[] = [];
  let system: string | undefined;
  let template: string | undefined;
  for (const command of parseModelfileCommands(text)) {
    const { line, value } = command;
    switch (command.name) {
      case "from":
        if (from !== undefined) fail(line, `a second FROM (the first is on line ${from.line}); a model starts from one model`);
        if (value.trim() === "") fail(line, "FROM needs a model: a store name, a GGUF file or an hf: reference");
        from = { ref: value.trim(), line };
        break;
      case "adapter":
        if (value.trim() === "") fail(line, "ADAPTER needs the path of a LoRA adapter GGUF file");
        adapters.push({ path: value.trim(), line });
        break;
      case "system":
        system = value;
        break;
      case "template":
        template = value;
        break;
      case "license":
        license.push(value);
        break;
      case "message":
        messages.push({ role: command.key as ModelConfigMessage["role"], content: value });
        break;
      case "parameter": {
        const name = command.key!;
        if (DEPRECATED_PARAMETERS.includes(name)) {
          warnings.push(`${at(line)}parameter ${name} is deprecated and ignored`);
          break;
        }
        const parsed = parseParameterValue(name, value, at(line));
        const earlier = parameters[name];
        parameters[name] = Array.isArray(parsed) && Array.isArray(earlier) ? [...earlier, ...parsed] : parsed;
        break;
      }
      default:
        fail(line, UNSUPPORTED[command.name] ?? `${command.name.toUpperCase()} is not supported`);
    }
  }
  if (from === undefined) throw new InvalidRequestError("no FROM line: a Modelfile starts from a model (FROM NAME, FROM ./file.gguf or FROM hf:OWNER/REPO)", { param: "modelfile" });
  const config: ModelConfig = {
    ...(system === undefined ? {} : { system }),
    ...(template === undefined ? {} : { template }),
    ...(license.length === 0 ? {} : { license }),
    ...(Object.keys(parameters).length === 0 ? {} : { parameters }),
    ...(messages.length === 0 ? {} : { messages }),
  };
  return { from: from.ref, fromLine: from.line, adapters, config, warnings };
}

/** Ollama's `quote`, made safe for every value: plain when it reads back the same, else quoted. */
export function quoteModelfileValue(value: string): string {
  const plain = value !== "" && !value.includes("\n") && value.trim() === value && !value.startsWith('"');
  if (plain) return value;
  return value.includes('"') || value.includes("\n") ? `"""${value}"""` : `"${value}"`;
}

/**
 * A Modelfile that builds `config` on `from`, in Ollama's order (FROM, TEMPLATE, SYSTEM,
 * PARAMETER, MESSAGE, LICENSE); `parseModelfile` reads it back to the same config.
 */
export function formatModelfile(from: string, config: ModelConfig, header: readonly string[] = []): string {
  const lines = [...header.map((text) => `# ${text}`), ...(header.length === 0 ? [] : [""]), `FROM ${from}`];
  if (config.template !== undefined) lines.push(`TEMPLATE ${quoteModelfileValue(config.template)}`);
  if (config.system !== undefined) lines.push(`SYSTEM ${quoteModelfileValue(config.system)}`);
  for (const [name, value] of Object.entries(config.parameters ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`PARAMETER ${name} ${quoteModelfileValue(String(item))}`);
  }
  for (const message of config.messages ?? []) lines.push(`MESSAGE ${message.role} ${quoteModelfileValue(message.content)}`);
  for (const text of config.license ?? []) lines.push(`LICENSE ${quoteModelfileValue(text)}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Ollama's `parameters` text of `/api/show`: one `name value` per line, names padded to 30
 * columns, strings in double quotes (`stop                           "<|im_end|>"`).
 */
export function formatParametersText(parameters: Readonly<Record<string, ModelParameterValue>>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`${name.padEnd(30)} ${typeof item === "string" ? JSON.stringify(item) : String(item)}`);
  }
  return lines.join("\n");
}

/**
 * The config of a fork of `parent` (a config fork's own, or none): Ollama's inheritance, where
 * the new model keeps its parent's system, template, license and messages unless it gives its own,
 * and its parameters key by key (a new `stop` list replaces the old one).
 */
export function mergeModelConfig(parent: ModelConfig | undefined, child: ModelConfig): ModelConfig {
  if (parent === undefined) return child;
  const parameters = { ...parent.parameters, ...child.parameters };
  const merged: ModelConfig = {
    ...parent,
    ...child,
    ...(Object.keys(parameters).length === 0 ? {} : { parameters }),
  };
  return merged;
}
