import { createJsonGrammar } from "../json-grammar.js";

/** llama.cpp's JSON-schema grammars' whitespace between tokens (a space, or a newline and indentation). */
export const SPACE_RULE = 'space ::= | " " | "\\n"{1,2} [ \\t]{0,20}';

/** A GBNF string literal matching `text` exactly. */
export function gbnfLiteral(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === "\\") out += "\\" + char;
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += char;
  }
  return out + '"';
}

/** A GBNF literal matching `value` written as JSON (`"name"` for a string). */
export function jsonLiteral(value: unknown): string {
  return gbnfLiteral(JSON.stringify(value));
}

/**
 * GBNF for any text that does not contain `marker`, character by character (llama.cpp's grammars
 * have no negative lookahead): a character that cannot start the marker, or a proper beginning of
 * the marker followed by a character that does not continue it.
 */
export function textWithout(marker: string): string {
  const chars = [...marker];
  const alternatives = chars.map((char, index) => {
    const prefix = chars.slice(0, index).join("");
    return (prefix === "" ? "" : gbnfLiteral(prefix) + " ") + `[^${classChar(char)}]`;
  });
  return `( ${alternatives.join(" | ")} )*`;
}

function classChar(char: string): string {
  if (char === "\n") return "\\n";
  if (char === "\r") return "\\r";
  if (char === "\t") return "\\t";
  if (char === "]" || char === "[" || char === "\\" || char === "^" || char === "-") return "\\" + char;
  return char;
}

const RULE_LINE = /^([A-Za-z0-9-]+)\s*::=\s*(.*)$/;
const WORD = /[A-Za-z0-9-]/;
/** node-llama-cpp's JSON grammars end their root in this terminator; an embedded value has none. */
const JSON_TERMINATOR = ' "\\n\\n\\n\\n" [\\n]*';

/**
 * A grammar under construction: named rules, with JSON values compiled by node-llama-cpp's
 * converter (through {@link createJsonGrammar}) and embedded under a prefix so their rules do not
 * collide.
 */
export class GbnfBuilder {
  readonly #rules = new Map<string, string>();
  #embedded = 0;

  constructor() {
    this.#rules.set("space", SPACE_RULE.slice("space ::= ".length));
  }

  /** Adds (or replaces) rule `name`; returns the name. Names are letters, digits and dashes. */
  rule(name: string, body: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(name)) throw new Error(`Invalid GBNF rule name ${name}`);
    this.#rules.set(name, body);
    return name;
  }

  /** A rule matching one JSON value valid under `schema` (already in the converter's dialect); returns its name. */
  async jsonValue(schema: object): Promise<string> {
    const grammar = await createJsonGrammar(schema);
    const lines = grammar.gbnf.split("\n");
    const rootIndex = lines.findIndex((line) => line.startsWith("root ::= "));
    if (rootIndex < 0 || !lines[rootIndex]!.endsWith(JSON_TERMINATOR)) {
      throw new Error("node-llama-cpp's JSON grammar no longer ends its root as expected");
    }
    lines[rootIndex] = lines[rootIndex]!.slice(0, -JSON_TERMINATOR.length);
    const prefix = `j${++this.#embedded}-`;
    const rules = parseRules(lines);
    const names = new Set(rules.map(([name]) => name));
    for (const [name, body] of rules) this.#rules.set(prefix + name, renameReferences(body, names, prefix));
    return prefix + "root";
  }

  /** The grammar text, `root` first. */
  build(): string {
    if (!this.#rules.has("root")) throw new Error("GBNF grammar without a root rule");
    const entries = [...this.#rules].sort(([a], [b]) => (a === "root" ? -1 : b === "root" ? 1 : 0));
    return entries.map(([name, body]) => `${name} ::= ${body}`).join("\n");
  }
}

/** Rules of a GBNF text: a line that does not start a rule continues the one before. */
function parseRules(lines: readonly string[]): [string, string][] {
  const rules: [string, string][] = [];
  for (const line of lines) {
    const match = RULE_LINE.exec(line);
    if (match !== null) rules.push([match[1]!, match[2]!]);
    else if (line.trim() !== "" && rules.length > 0) rules[rules.length - 1]![1] += " " + line.trim();
  }
  return rules;
}

/** Prefixes every reference to one of `names` in a rule body, leaving literals and classes alone. */
function renameReferences(body: string, names: ReadonlySet<string>, prefix: string): string {
  let out = "";
  let index = 0;
  while (index < body.length) {
    const char = body[index]!;
    if (char === '"' || char === "[") {
      const close = char === '"' ? '"' : "]";
      let end = index + 1;
      while (end < body.length && body[end] !== close) end += body[end] === "\\" ? 2 : 1;
      out += body.slice(index, end + 1);
      index = end + 1;
    } else if (WORD.test(char)) {
      let end = index;
      while (end < body.length && WORD.test(body[end]!)) end++;
      const word = body.slice(index, end);
      out += names.has(word) ? prefix + word : word;
      index = end;
    } else {
      out += char;
      index++;
    }
  }
  return out;
}
