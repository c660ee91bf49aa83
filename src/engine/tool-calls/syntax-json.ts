/**
 * Families whose calls are JSON: an array after a marker (Mistral Nemo, FireFunction, Command R7B,
 * Granite, Phi-4), a bare object at the start (Llama 3.x), or the whole output as one object
 * (the generic format).
 */
import { decodeStringPrefix, findMember, scanJson, skipWhitespace, type JsonScan } from "./json-scan.js";
import { contentUntil, expectMarker, mayBecome } from "./markers.js";
import { callFromObject, NAME_AND_ARGUMENTS, SnapshotBuilder, valueText, type CallKeys, type OutputSnapshot, type SnapshotCall } from "./snapshot.js";

export const MISTRAL_NEMO_KEYS: CallKeys = { name: "name", arguments: ["arguments", "parameters"], id: "id", idAfterArguments: true };
const COMMAND_R7B_KEYS: CallKeys = { name: "tool_name", arguments: ["parameters", "arguments"], id: "tool_call_id" };

/**
 * Reads a JSON array of call objects starting at `at` into `out`. Returns where the array ends, or
 * undefined when it has not ended (or is not JSON: the calls before the fault are kept).
 */
export function parseCallArray(text: string, at: number, final: boolean, out: SnapshotBuilder, keys: CallKeys): number | undefined {
  const scan = scanJson(text, at, final);
  if (text[scan.start] !== "[") return undefined;
  for (const item of scan.items) {
    const call = callFromObject(text, scanJson(text, item.start, final), keys);
    if (call === undefined) {
      if (item.end < 0) return undefined;
      continue;
    }
    out.calls.push(call);
    if (item.end < 0) return undefined;
  }
  return scan.status === "complete" ? scan.end : undefined;
}

/** An array family: content, then `opener` and a JSON array of calls (then `closer`). */
interface ArrayFamily {
  readonly opener: string;
  readonly closer?: string;
  /** Wrappers left out of the content. */
  readonly drops: readonly string[];
  readonly keys: CallKeys;
}

const ARRAY_FAMILIES = {
  "mistral-nemo": { opener: "[TOOL_CALLS]", drops: [], keys: MISTRAL_NEMO_KEYS },
  "firefunction-v2": { opener: "functools", drops: [], keys: NAME_AND_ARGUMENTS },
  "command-r7b": { opener: "<|START_ACTION|>", closer: "<|END_ACTION|>", drops: ["<|START_RESPONSE|>", "<|END_RESPONSE|>"], keys: COMMAND_R7B_KEYS },
  granite: { opener: "<|tool_call|>", drops: ["<response>", "</response>"], keys: NAME_AND_ARGUMENTS },
  phi4: { opener: "<|tool_call|>", closer: "<|/tool_call|>", drops: [], keys: NAME_AND_ARGUMENTS },
} satisfies Record<string, ArrayFamily>;

export type ArrayFamilyName = keyof typeof ARRAY_FAMILIES;

/** Content, then (each time `family`'s marker appears) a JSON array of calls; wrappers such as Granite's `<response>` left out. */
export function parseArrayFamily(family: ArrayFamilyName, text: string, final: boolean): OutputSnapshot {
  const spec: ArrayFamily = ARRAY_FAMILIES[family];
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const found = contentUntil(text, at, [spec.opener], spec.drops, final);
    out.content += found.text;
    if (found.match === undefined) return out.build();
    const start = skipWhitespace(text, found.match.end);
    if (start === text.length && !final) return out.build();
    if (text[start] !== "[") {
      out.content += found.match.marker;
      at = found.match.end;
      continue;
    }
    const end = parseCallArray(text, start, final, out, spec.keys);
    if (end === undefined) return out.build();
    at = end;
    if (spec.closer !== undefined) {
      const close = expectMarker(text, end, spec.closer, final);
      if (close === -2) return out.build();
      if (close >= 0) at = close;
    }
  }
}

const LLAMA3_KEYS = new Set(["type", "name", "parameters", "arguments"]);
const PYTHON_TAG = "<|python_tag|>";
const BUILTIN_CALL = /^\s*([A-Za-z_][\w-]*)\s*\.\s*call\s*\(([\s\S]*)\)\s*$/;
const BUILTIN_ARGUMENT = /\s*([A-Za-z_]\w*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]+)\s*(?:,|$)/gy;

/**
 * Llama 3.x: `{"name": …, "parameters": …}` at the start of the output (several, separated by
 * `;` or whitespace), optionally after `<|python_tag|>`, which also introduces built-in calls
 * (`brave_search.call(query="…")`). Output that does not open as a call is content.
 */
export function parseLlama3(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = skipWhitespace(text, 0);
  if (!final && mayBecome(text, at, PYTHON_TAG)) return out.build();
  const tagged = text.startsWith(PYTHON_TAG, at);
  if (tagged) at = skipWhitespace(text, at + PYTHON_TAG.length);
  if (tagged && at < text.length && text[at] !== "{") {
    if (!final) return out.build();
    const call = builtinCall(text.slice(at));
    if (call === undefined) out.content += text.slice(at);
    else out.calls.push(call);
    return out.build();
  }
  for (;;) {
    if (at >= text.length) return out.build();
    if (text[at] !== "{") {
      out.content += text.slice(at);
      return out.build();
    }
    const scan = scanJson(text, at, final);
    const verdict = llama3Verdict(text, scan, final);
    if (verdict === "pending") return out.build();
    if (verdict === "content") {
      out.content += text.slice(at);
      return out.build();
    }
    out.calls.push(verdict);
    if (scan.status !== "complete") return out.build();
    at = scan.end;
    while (at < text.length && /[\s;]/.test(text[at]!)) at++;
  }
}

function llama3Verdict(text: string, scan: JsonScan, final: boolean): SnapshotCall | "pending" | "content" {
  if (scan.status === "invalid") return "content";
  if (scan.members.some((member) => member.key !== undefined && !LLAMA3_KEYS.has(member.key))) return "content";
  const name = findMember(scan, "name");
  if (name !== undefined && name.valueStart >= 0 && text[name.valueStart] !== '"') return "content";
  const call = callFromObject(text, scan, NAME_AND_ARGUMENTS);
  if (call !== undefined) return call;
  return final || scan.status === "complete" ? "content" : "pending";
}

function builtinCall(text: string): { name: string; arguments: string } | undefined {
  const match = BUILTIN_CALL.exec(text);
  if (match === null) return undefined;
  const args: Record<string, unknown> = {};
  BUILTIN_ARGUMENT.lastIndex = 0;
  const list = match[2]!;
  while (BUILTIN_ARGUMENT.lastIndex < list.length) {
    const start = BUILTIN_ARGUMENT.lastIndex;
    const argument = BUILTIN_ARGUMENT.exec(list);
    if (argument === null || BUILTIN_ARGUMENT.lastIndex === start) {
      if (list.slice(start).trim() === "") break;
      return undefined;
    }
    const raw = argument[2]!.trim();
    try {
      args[argument[1]!] = JSON.parse(raw);
    } catch {
      args[argument[1]!] = raw;
    }
  }
  return { name: match[1]!, arguments: JSON.stringify(args) };
}

/**
 * The generic format: the whole output is `{"tool_calls": [{"name": …, "arguments": …}, …]}`,
 * `{"tool_call": {…}}` or `{"response": …}` (a string, streamed as it decodes, or any JSON).
 * Output that is not a JSON object is content.
 */
export function parseGeneric(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  const start = skipWhitespace(text, 0);
  if (start === text.length) return out.build();
  if (text[start] !== "{") {
    out.content = text;
    return out.build();
  }
  const scan = scanJson(text, start, final);
  if (scan.status === "invalid") {
    if (final) out.content = text;
    return out.build();
  }
  for (const member of scan.members) {
    if (member.valueStart < 0) break;
    if (member.key === "response") {
      out.content += text[member.valueStart] === '"' ? decodeStringPrefix(text, member.valueStart) : valueText(text, member);
    } else if (member.key === "tool_call") {
      const call = callFromObject(text, scanJson(text, member.valueStart, final), NAME_AND_ARGUMENTS);
      if (call !== undefined) out.calls.push(call);
    } else if (member.key === "tool_calls") {
      parseCallArray(text, member.valueStart, final, out, NAME_AND_ARGUMENTS);
    }
    if (member.valueEnd < 0) break;
  }
  return out.build();
}
