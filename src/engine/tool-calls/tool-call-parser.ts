import { randomBytes } from "node:crypto";
import { splitReasoning, type OutputSnapshot, type SyntaxContext, type SyntaxParser } from "./snapshot.js";
import { parseGptOss, parseFunctionaryV32 } from "./syntax-channels.js";
import { parseArrayFamily, parseGeneric, parseLlama3 } from "./syntax-json.js";
import { parseDeepSeek, parseFunctionaryV31, parseHermes, parseMistral, parseQwen3Coder } from "./syntax-tagged.js";
import type {
  ChatOutputDelta,
  ParsedChatOutput,
  ParsedToolCall,
  ToolCallDelta,
  ToolCallFormat,
  ToolCallParseOptions,
  ToolCallSyntax,
} from "./tool-call-types.js";

const PARSERS: Record<ToolCallSyntax, SyntaxParser> = {
  hermes: parseHermes,
  "qwen3-coder": parseQwen3Coder,
  llama3: parseLlama3,
  "mistral-nemo": parseMistral,
  mistral: parseMistral,
  "firefunction-v2": (text, final) => parseArrayFamily("firefunction-v2", text, final),
  "functionary-v3.1": parseFunctionaryV31,
  "functionary-v3.2": parseFunctionaryV32,
  "deepseek-r1": parseDeepSeek,
  "deepseek-v3.1": parseDeepSeek,
  "gpt-oss": parseGptOss,
  "command-r7b": (text, final) => parseArrayFamily("command-r7b", text, final),
  granite: (text, final) => parseArrayFamily("granite", text, final),
  phi4: (text, final) => parseArrayFamily("phi4", text, final),
  generic: parseGeneric,
};

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** An OpenAI-like call id: `call_` and 24 random letters and digits. */
export function newToolCallId(): string {
  return "call_" + [...randomBytes(24)].map((byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join("");
}

/** The output so far as `format` reads it; see {@link OutputSnapshot} for what "so far" promises. */
function snapshot(format: ToolCallFormat, text: string, final: boolean, options: ToolCallParseOptions): OutputSnapshot {
  const context: SyntaxContext = { format, tools: options.tools ?? [] };
  const parse = PARSERS[format.syntax];
  const tags = options.extractReasoning === false ? undefined : format.reasoning;
  let reasoning = "";
  let rest = text;
  if (tags !== undefined) {
    const split = splitReasoning(text, tags, options.startsInReasoning === true, final);
    reasoning = split.reasoning;
    rest = text.slice(split.rest);
  }
  const inner = parse(rest, final, context);
  // A call the generation cut off before its arguments closed is no call (a client would run it
  // with half its arguments): the output is text, as llama.cpp's final parse never yields a call
  // from output that does not finish its syntax.
  if (options.cutOff === true && inner.calls.some((call) => !isJson(call.arguments))) {
    // Channel families (gpt-oss) read their reasoning out of `rest`: there the raw text would repeat it.
    return { content: (inner.reasoning === "" ? rest : inner.content).trimEnd(), reasoning: (reasoning + inner.reasoning).trim(), calls: [] };
  }
  // Trailing whitespace waits for more text (a call may follow it) and is dropped at the end.
  return {
    content: inner.content.trimEnd(),
    reasoning: (reasoning + inner.reasoning).trim(),
    calls: inner.calls,
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Splits a whole output into content, reasoning and tool calls, as `format`'s family writes them.
 * Text that is not a well-formed call stays content; content loses its trailing whitespace and
 * reasoning its surrounding whitespace. A call's id is the one the model wrote (Mistral, Command
 * R7B), else a new one.
 * @example parseToolCallOutput(format, '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>')
 *   // { content: "", toolCalls: [{ id: "call_…", name: "f", arguments: '{"a": 1}' }] }
 */
export function parseToolCallOutput(format: ToolCallFormat, text: string, options: ToolCallParseOptions = {}): ParsedChatOutput {
  const whole = snapshot(format, text, true, options);
  const newId = options.newCallId ?? newToolCallId;
  return toOutput(whole, whole.calls.map((call) => call.id ?? newId()));
}

function toOutput(whole: OutputSnapshot, ids: readonly string[]): ParsedChatOutput {
  const toolCalls: ParsedToolCall[] = whole.calls.map((call, index) => ({ id: ids[index]!, name: call.name, arguments: call.arguments }));
  return { content: whole.content, ...(whole.reasoning === "" ? {} : { reasoningContent: whole.reasoning }), toolCalls };
}

/**
 * Reads a streamed output piece by piece and says what each piece adds: content, reasoning and
 * tool calls in OpenAI's streamed shape (a call's id and name first, then its argument text).
 * Text that may still turn out to be part of a marker or a call is held back until it is known;
 * what a stream sends, concatenated, equals {@link parseToolCallOutput} of the whole output.
 *
 * Each piece re-reads the output so far (outputs are a few kilobytes; llama.cpp's server does the
 * same, diffing whole parses), which keeps one parser per family for both uses.
 */
export class ToolCallStreamParser {
  readonly #format: ToolCallFormat;
  readonly #options: ToolCallParseOptions;
  readonly #newId: () => string;
  #text = "";
  #content = "";
  #reasoning = "";
  readonly #calls: { id: string; name: string; arguments: string }[] = [];
  #last: OutputSnapshot = { content: "", reasoning: "", calls: [] };

  constructor(format: ToolCallFormat, options: ToolCallParseOptions = {}) {
    this.#format = format;
    this.#options = options;
    this.#newId = options.newCallId ?? newToolCallId;
  }

  /** Adds generated text; returns what can be sent now (possibly nothing). */
  push(text: string): ChatOutputDelta {
    this.#text += text;
    return this.#advance(snapshot(this.#format, this.#text, false, this.#options));
  }

  /**
   * The output ended: releases everything held back. `cutOff`: it ended at the token limit, so a
   * call whose arguments are not whole JSON is text, not a call (see {@link ToolCallParseOptions.cutOff}).
   */
  finish(options: { readonly cutOff?: boolean } = {}): ChatOutputDelta {
    return this.#advance(snapshot(this.#format, this.#text, true, { ...this.#options, ...options }));
  }

  /** The output so far as a whole: after {@link finish}, the parse of the whole output. */
  result(): ParsedChatOutput {
    const ids = this.#last.calls.map((call, index) => this.#calls[index]?.id ?? call.id ?? "");
    return toOutput(this.#last, ids);
  }

  #advance(next: OutputSnapshot): ChatOutputDelta {
    this.#last = next;
    const content = extension(this.#content, next.content);
    const reasoningContent = extension(this.#reasoning, next.reasoning);
    this.#content += content;
    this.#reasoning += reasoningContent;
    const toolCalls: ToolCallDelta[] = [];
    next.calls.forEach((call, index) => {
      let sent = this.#calls[index];
      if (sent === undefined) {
        sent = { id: call.id ?? this.#newId(), name: call.name, arguments: "" };
        this.#calls.push(sent);
        const args = call.arguments;
        sent.arguments = args;
        toolCalls.push({ index, id: sent.id, type: "function", function: { name: call.name, arguments: args } });
        return;
      }
      const more = extension(sent.arguments, call.arguments);
      if (more === "") return;
      sent.arguments += more;
      toolCalls.push({ index, function: { arguments: more } });
    });
    return {
      ...(content === "" ? {} : { content }),
      ...(reasoningContent === "" ? {} : { reasoningContent }),
      ...(toolCalls.length === 0 ? {} : { toolCalls }),
    };
  }
}

/**
 * What `next` adds to `sent`. A family parser never takes back what it has said; if one ever
 * did (a bug), nothing more of that field goes out rather than a garbled stream.
 */
function extension(sent: string, next: string): string {
  return next.length > sent.length && next.startsWith(sent) ? next.slice(sent.length) : "";
}
