import { decodeStringPrefix, findMember, type JsonMember, type JsonScan } from "./json-scan.js";
import type { ToolCallFormat, ToolDefinition } from "./tool-call-types.js";

/**
 * What a family's parser reads from output so far. While the output is still arriving
 * (`final` false) a snapshot says only what later text cannot change: each field of the next
 * snapshot extends this one's, and calls are only added. A stream sends the differences.
 */
export interface OutputSnapshot {
  readonly content: string;
  readonly reasoning: string;
  readonly calls: readonly SnapshotCall[];
}

export interface SnapshotCall {
  readonly name: string;
  /** The id the model wrote, if the family writes ids. */
  readonly id?: string;
  readonly arguments: string;
}

export interface SyntaxContext {
  readonly format: ToolCallFormat;
  readonly tools: readonly ToolDefinition[];
}

/** Reads one family's output: its content, its calls and (for channel families) its reasoning. */
export type SyntaxParser = (text: string, final: boolean, context: SyntaxContext) => OutputSnapshot;

/** Builds a snapshot piece by piece, in the order the output writes it. */
export class SnapshotBuilder {
  content = "";
  reasoning = "";
  readonly calls: SnapshotCall[] = [];

  build(): OutputSnapshot {
    return { content: this.content, reasoning: this.reasoning, calls: this.calls };
  }
}

/** The keys a family's call objects use. */
export interface CallKeys {
  readonly name: string;
  /** Accepted keys for the arguments, the first found wins. */
  readonly arguments: readonly string[];
  readonly id?: string;
  /**
   * The family writes the id after the arguments (Mistral Nemo), so the call waits for its whole
   * object; otherwise an id counts only where it comes before the arguments.
   */
  readonly idAfterArguments?: boolean;
}

export const NAME_AND_ARGUMENTS: CallKeys = { name: "name", arguments: ["arguments", "parameters"] };

/**
 * The call in a scanned JSON object, or undefined while it cannot be told yet (its name is
 * unfinished, or its arguments have not started). Arguments are the JSON text as written; an
 * arguments value written as a JSON string is decoded.
 */
export function callFromObject(text: string, scan: JsonScan, keys: CallKeys): SnapshotCall | undefined {
  const complete = scan.status === "complete";
  const name = scalarText(text, findMember(scan, keys.name));
  if (name === undefined) return undefined;
  const args = keys.arguments.map((key) => findMember(scan, key)).find((member) => member !== undefined);
  const argsStarted = args !== undefined && args.valueStart >= 0;
  if (!complete && (!argsStarted || keys.idAfterArguments === true)) return undefined;
  let id: string | undefined;
  if (keys.id !== undefined) {
    const member = findMember(scan, keys.id);
    if (member !== undefined && (keys.idAfterArguments === true || !argsStarted || (member.valueEnd >= 0 && member.valueEnd <= args.valueStart))) {
      id = scalarText(text, member);
    }
  }
  return { name, ...(id === undefined ? {} : { id }), arguments: argsStarted ? valueText(text, args) : "{}" };
}

/** A finished string (decoded) or number (as written) member value. */
function scalarText(text: string, member: JsonMember | undefined): string | undefined {
  if (member === undefined || member.valueEnd < 0) return undefined;
  const raw = text.slice(member.valueStart, member.valueEnd);
  if (raw.startsWith('"')) return JSON.parse(raw) as string;
  return /^-?[0-9]/.test(raw) ? raw : undefined;
}

/** A member's value text so far; a string value is decoded (arguments written as a JSON string). */
export function valueText(text: string, member: JsonMember): string {
  if (text[member.valueStart] === '"') return decodeStringPrefix(text, member.valueStart);
  return text.slice(member.valueStart, member.valueEnd >= 0 ? member.valueEnd : text.length).trimEnd();
}

/**
 * Splits a thinking block off the start of the output: `<think>…</think>`, or (when the prompt
 * opened it) everything up to the end tag. The rest of the output starts at `rest` (past the
 * whitespace after the block; the end of the text while the block, or whether there is one, is
 * not known yet).
 */
export function splitReasoning(
  text: string,
  tags: { readonly start: string; readonly end: string },
  startsInReasoning: boolean,
  final: boolean,
): { readonly reasoning: string; readonly rest: number } {
  const leading = text.length - text.trimStart().length;
  let from: number;
  if (startsInReasoning) from = 0;
  else if (text.startsWith(tags.start, leading)) from = leading + tags.start.length;
  else if (!final && tags.start.startsWith(text.slice(leading))) return { reasoning: "", rest: text.length };
  else return { reasoning: "", rest: 0 };
  const end = text.indexOf(tags.end, from);
  if (end < 0) {
    let stop = text.length;
    if (!final) {
      for (let length = Math.min(tags.end.length - 1, text.length - from); length > 0; length--) {
        if (tags.end.startsWith(text.slice(text.length - length))) {
          stop = text.length - length;
          break;
        }
      }
    }
    return { reasoning: text.slice(from, stop).trim(), rest: text.length };
  }
  const after = end + tags.end.length;
  return { reasoning: text.slice(from, end).trim(), rest: text.length - text.slice(after).trimStart().length };
}
