import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** One case of llama.cpp's `tests/test-chat-template.cpp`: a template and the text it must render. */
export interface LlamaTemplateCase {
  readonly name: string;
  readonly template: string;
  /** What llama.cpp's Jinja path renders (`expected_output_jinja`, else `expected_output`). */
  readonly expected: string;
  readonly bosToken: string;
  readonly eosToken: string;
  /** False where llama.cpp skips the case with Jinja (it needs variables it does not set). */
  readonly supportedWithJinja: boolean;
  /** Turns appended to the shared conversation, some with roles of the template's own. */
  readonly extraConversation: readonly (readonly [role: string, content: string])[];
}

/** The cases and the conversation they all render. */
export interface LlamaTemplateCases {
  readonly conversation: readonly (readonly [role: string, content: string])[];
  readonly cases: readonly LlamaTemplateCase[];
}

/**
 * Reads the expected renders out of llama.cpp's `tests/test-chat-template.cpp` as data: the C++
 * initializer lists of `conversation` and `test_cases` (string literals, `U8C(...)`, booleans,
 * nested braces), so the test follows whatever the bundled source states.
 */
export async function readLlamaTemplateCases(checkout: string): Promise<LlamaTemplateCases> {
  const source = await readFile(join(checkout, "tests", "test-chat-template.cpp"), "utf8");
  const conversation = initializer(source, "std::vector<llama_chat_message> conversation") as string[][];
  const cases = (initializer(source, "std::vector<TestCase> test_cases") as Value[][]).map((fields): LlamaTemplateCase => {
    const [name, template, expected, expectedJinja, bos = "", eos = "", supported = true, extra = []] = fields;
    return {
      name: name as string,
      template: template as string,
      expected: (expectedJinja as string) || (expected as string),
      bosToken: bos as string,
      eosToken: eos as string,
      supportedWithJinja: supported as boolean,
      extraConversation: (extra as string[][]).map(([role, content]) => [role!, content!] as const),
    };
  });
  return { conversation: conversation.map(([role, content]) => [role!, content!] as const), cases };
}

type Value = string | boolean | Value[];

function initializer(source: string, declaration: string): Value[] {
  const start = source.indexOf(declaration);
  if (start < 0) throw new Error(`test-chat-template.cpp no longer declares '${declaration}'`);
  const tokens = tokenize(source, source.indexOf("{", start));
  const value = parseValue(tokens);
  if (!Array.isArray(value)) throw new Error(`'${declaration}' is not an initializer list`);
  return value;
}

type Token = { kind: "string" | "word" | "punct"; text: string };

/** Tokens from `from` to the brace that closes the one there. */
function tokenize(source: string, from: number): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let at = from;
  while (at < source.length) {
    const char = source[at]!;
    if (/\s/.test(char)) at++;
    else if (source.startsWith("//", at)) at = source.indexOf("\n", at);
    else if (source.startsWith("/*", at)) at = source.indexOf("*/", at) + 2;
    else if (/[{}(),]/.test(char)) {
      tokens.push({ kind: "punct", text: char });
      at++;
      if (char === "{") depth++;
      if (char === "}" && --depth === 0) return tokens;
    } else if (char === '"' || (/^(u8|u|U|L)"/.test(source.slice(at, at + 3)))) {
      const quote = source.indexOf('"', at);
      const [text, end] = stringLiteral(source, quote);
      tokens.push({ kind: "string", text });
      at = end;
    } else {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(at))?.[0];
      if (!word) throw new Error(`Unexpected '${char}' in test-chat-template.cpp at offset ${at}`);
      tokens.push({ kind: "word", text: word });
      at += word.length;
    }
  }
  throw new Error("Unterminated initializer in test-chat-template.cpp");
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0" };

/** The text of the literal opening at `quote`, and the offset after it. */
function stringLiteral(source: string, quote: number): [string, number] {
  let text = "";
  for (let at = quote + 1; at < source.length; at++) {
    const char = source[at]!;
    if (char === '"') return [text, at + 1];
    if (char !== "\\") {
      text += char;
      continue;
    }
    const next = source[++at]!;
    if (!(next in ESCAPES)) throw new Error(`Unsupported escape '\\${next}' in test-chat-template.cpp`);
    text += ESCAPES[next];
  }
  throw new Error("Unterminated string in test-chat-template.cpp");
}

function parseValue(tokens: Token[]): Value {
  const token = tokens.shift();
  if (!token) throw new Error("test-chat-template.cpp: initializer ends early");
  if (token.kind === "string") {
    // Adjacent literals are one string in C++.
    let text = token.text;
    while (tokens[0]?.kind === "string") text += tokens.shift()!.text;
    return text;
  }
  if (token.kind === "word" && (token.text === "true" || token.text === "false")) return token.text === "true";
  if (token.kind === "word" && token.text === "U8C") {
    expect(tokens, "(");
    const value = parseValue(tokens);
    expect(tokens, ")");
    return value;
  }
  if (token.text === "{") {
    const list: Value[] = [];
    while (tokens[0]?.text !== "}") {
      list.push(parseValue(tokens));
      if (tokens[0]?.text === ",") tokens.shift();
    }
    tokens.shift();
    return list;
  }
  throw new Error(`test-chat-template.cpp: unexpected '${token.text}' in an initializer`);
}

function expect(tokens: Token[], text: string): void {
  const token = tokens.shift();
  if (token?.text !== text) throw new Error(`test-chat-template.cpp: expected '${text}', found '${token?.text}'`);
}
