/**
 * Families whose calls sit between markers in free text: Hermes/Qwen `<tool_call>`, Qwen3-Coder's
 * XML, Functionary v3.1 `<function=…>`, DeepSeek's `<｜tool▁call▁begin｜>`, Mistral's `[TOOL_CALLS]`.
 * Content may come before, between and after calls.
 */
import { scanJson, skipWhitespace } from "./json-scan.js";
import { contentUntil, expectMarker, findMarker, skipOptional, textUntil } from "./markers.js";
import { callFromObject, NAME_AND_ARGUMENTS, SnapshotBuilder, valueText, type OutputSnapshot, type SyntaxContext } from "./snapshot.js";
import { MISTRAL_NEMO_KEYS, parseCallArray } from "./syntax-json.js";
import type { ToolDefinition } from "./tool-call-types.js";

/** `<tool_call>{"name": …, "arguments": …}</tool_call>`, repeated; a JSON list of calls inside the tags (Apriel) too. */
export function parseHermes(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const found = contentUntil(text, at, ["<tool_call>"], [], final);
    out.content += found.text;
    if (found.match === undefined) return out.build();
    const start = skipWhitespace(text, found.match.end);
    if (text[start] === "[") {
      const end = parseCallArray(text, start, final, out, NAME_AND_ARGUMENTS);
      if (end === undefined) return out.build();
      const close = expectMarker(text, end, "</tool_call>", final);
      if (close === -2) return out.build();
      at = close === -1 ? end : close;
      continue;
    }
    const scan = scanJson(text, start);
    const call = scan.status === "invalid" ? undefined : callFromObject(text, scan, NAME_AND_ARGUMENTS);
    if (call === undefined) {
      if (!final) return out.build();
      // Not a call after all: the text stays content.
      const close = findMarker(text, ["</tool_call>"], found.match.end);
      out.content += text.slice(found.match.index, close?.end ?? text.length);
      if (close === undefined) return out.build();
      at = close.end;
      continue;
    }
    out.calls.push(call);
    if (scan.status !== "complete") return out.build();
    const close = expectMarker(text, scan.end, "</tool_call>", final);
    if (close === -2) return out.build();
    at = close === -1 ? scan.end : close;
  }
}

/**
 * Qwen3-Coder's XML: `<tool_call>\n<function=name>\n<parameter=key>\nvalue\n</parameter>\n…</function>\n</tool_call>`.
 * Arguments are built as JSON, a parameter at a time; a value is a string where the tool's schema
 * says so (or it is not JSON), else the JSON it reads as.
 */
export function parseQwen3Coder(text: string, final: boolean, context: SyntaxContext): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const found = contentUntil(text, at, ["<tool_call>", "<function="], [], final);
    out.content += found.text;
    if (found.match === undefined) return out.build();
    let cursor = found.match.end;
    if (found.match.marker === "<tool_call>") {
      const open = expectMarker(text, cursor, "<function=", final);
      if (open === -2) return out.build();
      if (open === -1) {
        out.content += found.match.marker;
        at = cursor;
        continue;
      }
      cursor = open;
    }
    const nameEnd = text.indexOf(">", cursor);
    if (nameEnd < 0) return out.build();
    const name = text.slice(cursor, nameEnd).trim();
    const parameters: string[] = [];
    cursor = nameEnd + 1;
    let closed = false;
    for (;;) {
      const next = findMarker(text, ["<parameter=", "</function>"], cursor);
      if (next === undefined) break;
      if (next.marker === "</function>") {
        closed = true;
        cursor = next.end;
        break;
      }
      const keyEnd = text.indexOf(">", next.end);
      const valueEnd = keyEnd < 0 ? -1 : text.indexOf("</parameter>", keyEnd);
      if (valueEnd < 0) break;
      const key = text.slice(next.end, keyEnd).trim();
      const value = text.slice(keyEnd + 1, valueEnd).replace(/^\n/, "").replace(/\n$/, "");
      parameters.push(`${JSON.stringify(key)}: ${parameterJson(context.tools, name, key, value)}`);
      cursor = valueEnd + "</parameter>".length;
    }
    const complete = closed || final;
    out.calls.push({ name, arguments: `{${parameters.join(", ")}${complete ? "}" : ""}` });
    if (!closed) return out.build();
    const close = expectMarker(text, cursor, "</tool_call>", final);
    if (close === -2) return out.build();
    at = close === -1 ? cursor : close;
  }
}

function parameterJson(tools: readonly ToolDefinition[], name: string, key: string, value: string): string {
  const tool = tools.find((candidate) => candidate.function.name === name);
  const properties = tool?.function.parameters?.properties as Record<string, { type?: unknown }> | undefined;
  const type = properties?.[key]?.type;
  if (type === "string" || (Array.isArray(type) && type.length > 0 && type.every((entry) => entry === "string" || entry === "null") && value !== "null")) {
    return JSON.stringify(value);
  }
  try {
    return JSON.stringify(JSON.parse(value));
  } catch {
    return JSON.stringify(value);
  }
}

/** Functionary v3.1: `<function=name>{…}</function>`, and raw code after `<|python_tag|>` for its python tool. */
export function parseFunctionaryV31(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const found = contentUntil(text, at, ["<function=", "<|python_tag|>"], [], final);
    out.content += found.text;
    if (found.match === undefined) return out.build();
    if (found.match.marker === "<|python_tag|>") {
      // The code runs to the end of the message: known only when the output is whole.
      if (final) out.calls.push({ name: "python", arguments: JSON.stringify({ code: text.slice(found.match.end) }) });
      return out.build();
    }
    const nameEnd = text.indexOf(">", found.match.end);
    if (nameEnd < 0) return final ? withContent(out, text.slice(found.match.index)) : out.build();
    const name = text.slice(found.match.end, nameEnd);
    const scan = scanJson(text, nameEnd + 1, final);
    if (scan.status === "invalid") {
      const body = textUntil(text, nameEnd + 1, ["</function>"], final);
      out.calls.push({ name, arguments: body.text.trim() });
      if (body.match === undefined) return out.build();
      at = body.match.end;
      continue;
    }
    out.calls.push({ name, arguments: argumentText(text, scan.start, scan.end) });
    if (scan.status !== "complete") return out.build();
    const close = expectMarker(text, scan.end, "</function>", final);
    if (close === -2) return out.build();
    at = close === -1 ? scan.end : close;
  }
}

function withContent(out: SnapshotBuilder, text: string): OutputSnapshot {
  out.content += text;
  return out.build();
}

/** JSON arguments from `start`, whole (to `end`) or so far. */
function argumentText(text: string, start: number, end: number): string {
  return valueText(text, { key: "", valueStart: start, valueEnd: end });
}

const DEEPSEEK_CALLS_BEGIN = ["<｜tool▁calls▁begin｜>", "<｜tool_calls_begin｜>", "<｜tool calls begin｜>", "<｜tool\\_calls\\_begin｜>"];
const DEEPSEEK_CALL_BEGIN = "<｜tool▁call▁begin｜>";
const DEEPSEEK_SEPARATOR = "<｜tool▁sep｜>";
const DEEPSEEK_CALL_END = "<｜tool▁call▁end｜>";
const DEEPSEEK_CALLS_END = "<｜tool▁calls▁end｜>";

/**
 * DeepSeek R1 (`<｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{…}```<｜tool▁call▁end｜>`)
 * and V3.1 (`<｜tool▁call▁begin｜>name<｜tool▁sep｜>{…}<｜tool▁call▁end｜>`), inside
 * `<｜tool▁calls▁begin｜>…<｜tool▁calls▁end｜>` (R1 distills misspell the outer marker; the variants are accepted).
 */
export function parseDeepSeek(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const found = contentUntil(text, at, [...DEEPSEEK_CALLS_BEGIN, DEEPSEEK_CALL_BEGIN], [], final);
    out.content += found.text;
    if (found.match === undefined) return out.build();
    let cursor = found.match.marker === DEEPSEEK_CALL_BEGIN ? found.match.index : found.match.end;
    for (;;) {
      const begin = expectMarker(text, cursor, DEEPSEEK_CALL_BEGIN, final);
      if (begin === -2) return out.build();
      if (begin === -1) break;
      const separator = text.indexOf(DEEPSEEK_SEPARATOR, begin);
      if (separator < 0) return final ? withContent(out, text.slice(begin)) : out.build();
      let name = text.slice(begin, separator).trim();
      let argsAt = separator + DEEPSEEK_SEPARATOR.length;
      if (name === "function") {
        // R1: the type, the separator, then the name on its own line and the arguments in a JSON fence.
        const newline = text.indexOf("\n", argsAt);
        if (newline < 0) return final ? withContent(out, text.slice(found.match.index)) : out.build();
        name = text.slice(argsAt, newline).trim();
        argsAt = skipOptional(text, newline + 1, "```json", final);
        if (argsAt === newline + 1) argsAt = skipOptional(text, newline + 1, "```", final);
        if (argsAt === -2) return out.build();
      }
      const scan = scanJson(text, argsAt, final);
      if (scan.status === "invalid") {
        const body = textUntil(text, argsAt, ["```", DEEPSEEK_CALL_END], final);
        out.calls.push({ name, arguments: body.text.trim() });
        const end = findMarker(text, [DEEPSEEK_CALL_END], argsAt);
        if (end === undefined) return out.build();
        cursor = end.end;
        continue;
      }
      out.calls.push({ name, arguments: argumentText(text, scan.start, scan.end) });
      if (scan.status !== "complete") return out.build();
      cursor = skipOptional(text, scan.end, "```", final);
      if (cursor === -2) return out.build();
      const end = expectMarker(text, cursor, DEEPSEEK_CALL_END, final);
      if (end === -2) return out.build();
      if (end >= 0) cursor = end;
    }
    const end = expectMarker(text, cursor, DEEPSEEK_CALLS_END, final);
    if (end === -2) return out.build();
    at = end === -1 ? cursor : end;
  }
}

/**
 * Mistral's `[TOOL_CALLS]name[CALL_ID]id[ARGS]{…}` (the id only where the template writes one),
 * repeated; `[TOOL_CALLS][{…}]` (Nemo's array) is read too.
 */
export function parseMistral(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const found = contentUntil(text, at, ["[TOOL_CALLS]"], [], final);
    out.content += found.text;
    if (found.match === undefined) return out.build();
    const start = skipWhitespace(text, found.match.end);
    const rest = text.slice(start);
    if (!final && rest.length < "[CALL_ID]".length && ("[ARGS]".startsWith(rest) || "[CALL_ID]".startsWith(rest))) return out.build();
    if (rest.startsWith("[") && !rest.startsWith("[ARGS]") && !rest.startsWith("[CALL_ID]")) {
      const next = parseCallArray(text, start, final, out, MISTRAL_NEMO_KEYS);
      if (next === undefined) return out.build();
      at = next;
      continue;
    }
    const header = textUntil(text, start, ["[CALL_ID]", "[ARGS]"], final);
    if (header.match === undefined) return final ? withContent(out, text.slice(found.match.index)) : out.build();
    const name = header.text.trim();
    let argsAt = header.match.end;
    let id: string | undefined;
    if (header.match.marker === "[CALL_ID]") {
      const idEnd = text.indexOf("[ARGS]", argsAt);
      if (idEnd < 0) return final ? withContent(out, text.slice(found.match.index)) : out.build();
      id = text.slice(argsAt, idEnd).trim();
      argsAt = idEnd + "[ARGS]".length;
    }
    const withId = id === undefined ? {} : { id };
    const scan = scanJson(text, argsAt, final);
    if (scan.status === "invalid") {
      const body = textUntil(text, argsAt, ["[TOOL_CALLS]"], final);
      out.calls.push({ name, ...withId, arguments: body.text.trim() });
      if (body.match === undefined) return out.build();
      at = body.match.index;
      continue;
    }
    out.calls.push({ name, ...withId, arguments: argumentText(text, scan.start, scan.end) });
    if (scan.status !== "complete") return out.build();
    at = scan.end;
  }
}
