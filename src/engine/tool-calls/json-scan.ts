/**
 * A scanner for one JSON value in text that may still be arriving. It finds where the value ends,
 * or says that everything so far is a valid beginning, and records the spans of the top-level
 * members (of an object) or items (of an array), so that a parser can read a tool call's name
 * while its arguments are still being written.
 */

/** `complete`: the value ended; `partial`: the text ran out inside it; `invalid`: not JSON. */
export type JsonScanStatus = "complete" | "partial" | "invalid";

/** A top-level member of an object. `valueStart`/`valueEnd` are -1 until known. */
export interface JsonMember {
  /** The decoded key; undefined while the key is unfinished. */
  readonly key: string | undefined;
  valueStart: number;
  valueEnd: number;
}

/** A top-level item of an array; `end` is -1 while the item is unfinished. */
export interface JsonItem {
  readonly start: number;
  end: number;
}

export interface JsonScan {
  readonly status: JsonScanStatus;
  /** Where the value starts (after leading whitespace). */
  readonly start: number;
  /** Just past the value when complete, else -1. */
  readonly end: number;
  readonly members: readonly JsonMember[];
  readonly items: readonly JsonItem[];
}

const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);
const LITERALS = ["true", "false", "null"];
const COMPLETE_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/;
const NUMBER_PREFIX = /^-?((0|[1-9][0-9]*)((\.[0-9]*)|(\.[0-9]+[eE][-+]?[0-9]*)|([eE][-+]?[0-9]*))?)?$/;

/** The first index at or after `index` that is not JSON whitespace. */
export function skipWhitespace(text: string, index: number): number {
  while (index < text.length && WHITESPACE.has(text[index]!)) index++;
  return index;
}

/** Characters a string literal cannot simply contain: its end, an escape, a control character. */
const STRING_STOP = /["\\\u0000-\u001f]/g;

/**
 * A string literal from its opening quote: `end` past its closing quote (-1: the text ends inside
 * it, -2: not valid JSON), and `cut`, where its decodable text stops when the text ends inside it
 * (before an unfinished escape, and before a high surrogate whose pair has not come). Jumps from
 * escape to escape: streamed output is re-scanned on every piece, so a long string must not cost
 * a loop turn per character.
 */
function scanStringLiteral(text: string, quote: number): { readonly end: number; readonly cut: number } {
  let index = quote + 1;
  let highStart = -1;
  let highEnd = -1;
  const ranOut = (at: number) => ({ end: -1, cut: highEnd === at ? highStart : at });
  for (;;) {
    STRING_STOP.lastIndex = index;
    const stop = STRING_STOP.exec(text);
    if (stop === null) return ranOut(text.length);
    index = stop.index;
    if (stop[0] === '"') return { end: index + 1, cut: index };
    if (stop[0] !== "\\") return { end: -2, cut: index };
    const escape = text[index + 1];
    if (escape === undefined) return ranOut(index);
    if (escape === "u") {
      const hex = text.slice(index + 2, index + 6);
      if (!/^[0-9a-fA-F]*$/.test(hex)) return { end: -2, cut: index };
      if (hex.length < 4) return ranOut(index);
      const code = Number.parseInt(hex, 16);
      if (code >= 0xd800 && code <= 0xdbff) {
        highStart = index;
        highEnd = index + 6;
      }
      index += 6;
    } else if ('"\\/bfnrt'.includes(escape)) {
      index += 2;
    } else {
      return { end: -2, cut: index };
    }
  }
}

/**
 * End of the string literal whose opening quote is at `quote`: the index past its closing quote,
 * -1 when the text ends inside it, -2 when it is not valid JSON.
 */
export function scanString(text: string, quote: number): number {
  return scanStringLiteral(text, quote).end;
}

const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/**
 * The decoded text of a string literal so far (its opening quote at `quote`), without an escape
 * the text cuts in half: always a prefix of the whole string's decoded text.
 */
export function decodeStringPrefix(text: string, quote: number): string {
  const { end, cut } = scanStringLiteral(text, quote);
  if (end >= 0) return JSON.parse(text.slice(quote, end)) as string;
  if (end === -1) return JSON.parse(`"${text.slice(quote + 1, cut)}"`) as string;
  return decodeSlowly(text, quote);
}

/** Decodes what it can of a string that is not valid JSON (a raw control character), a character at a time. */
function decodeSlowly(text: string, quote: number): string {
  let decoded = "";
  let index = quote + 1;
  while (index < text.length) {
    const char = text[index]!;
    if (char === '"') break;
    if (char !== "\\") {
      decoded += char;
      index++;
      continue;
    }
    const escape = text[index + 1];
    if (escape === undefined) break;
    if (escape !== "u") {
      decoded += ESCAPES[escape] ?? escape;
      index += 2;
      continue;
    }
    const code = Number.parseInt(text.slice(index + 2, index + 6), 16);
    if (index + 6 > text.length || Number.isNaN(code)) break;
    // A high surrogate waits for its pair, so that half a character never goes out.
    if (code >= 0xd800 && code <= 0xdbff && index + 12 > text.length) break;
    decoded += String.fromCharCode(code);
    index += 6;
  }
  return decoded;
}

type Expect = "value" | "value-or-close" | "key" | "key-or-close" | "colon" | "comma-or-close";

/**
 * Scans the JSON value starting at `start` (leading whitespace skipped). `final`: the text will not
 * grow, so a number running to the end is complete.
 */
export function scanJson(text: string, start: number, final = false): JsonScan {
  const members: JsonMember[] = [];
  const items: JsonItem[] = [];
  const stack: ("{" | "[")[] = [];
  const begin = skipWhitespace(text, start);
  let index = begin;
  let expect = "value" as Expect;
  const result = (status: JsonScanStatus, end = -1): JsonScan => ({ status, start: begin, end, members, items });

  /** A value ended at `end` inside the current container (or at the top). */
  const valueEnded = (end: number): boolean => {
    if (stack.length === 0) return true;
    if (stack.length === 1) {
      if (stack[0] === "{") members[members.length - 1]!.valueEnd = end;
      else items[items.length - 1]!.end = end;
    }
    expect = "comma-or-close";
    return false;
  };
  const valueStarts = (at: number): void => {
    if (stack.length !== 1) return;
    if (stack[0] === "{") members[members.length - 1]!.valueStart = at;
    else items.push({ start: at, end: -1 });
  };

  while (index < text.length) {
    const char = text[index]!;
    if (WHITESPACE.has(char)) {
      index++;
      continue;
    }
    switch (expect) {
      case "value":
      case "value-or-close": {
        if (char === "]" && expect === "value-or-close") {
          stack.pop();
          index++;
          if (valueEnded(index)) return result("complete", index);
          break;
        }
        valueStarts(index);
        if (char === "{" || char === "[") {
          stack.push(char);
          expect = char === "{" ? "key-or-close" : "value-or-close";
          index++;
          break;
        }
        if (char === '"') {
          const end = scanString(text, index);
          if (end === -2) return result("invalid");
          if (end === -1) return result("partial");
          index = end;
          if (valueEnded(index)) return result("complete", index);
          break;
        }
        let end = index;
        while (end < text.length && /[A-Za-z0-9+\-.]/.test(text[end]!)) end++;
        const token = text.slice(index, end);
        if (token.length === 0) return result("invalid");
        if (end === text.length && !final) {
          const literal = LITERALS.find((word) => word.startsWith(token));
          if (literal === undefined && !NUMBER_PREFIX.test(token)) return result("invalid");
          // A finished literal cannot grow; a number can.
          if (literal !== token) return result("partial");
        } else if (!LITERALS.includes(token) && !COMPLETE_NUMBER.test(token)) {
          return result("invalid");
        }
        index = end;
        if (valueEnded(index)) return result("complete", index);
        break;
      }
      case "key":
      case "key-or-close": {
        if (char === "}" && expect === "key-or-close") {
          stack.pop();
          index++;
          if (valueEnded(index)) return result("complete", index);
          break;
        }
        if (char !== '"') return result("invalid");
        const end = scanString(text, index);
        if (end === -2) return result("invalid");
        if (stack.length === 1) {
          members.push({ key: end === -1 ? undefined : (JSON.parse(text.slice(index, end)) as string), valueStart: -1, valueEnd: -1 });
        }
        if (end === -1) return result("partial");
        index = end;
        expect = "colon";
        break;
      }
      case "colon":
        if (char !== ":") return result("invalid");
        index++;
        expect = "value";
        break;
      case "comma-or-close": {
        const open = stack[stack.length - 1]!;
        if (char === ",") {
          index++;
          expect = open === "{" ? "key" : "value";
          break;
        }
        if ((char === "}" && open === "{") || (char === "]" && open === "[")) {
          stack.pop();
          index++;
          if (valueEnded(index)) return result("complete", index);
          break;
        }
        return result("invalid");
      }
    }
  }
  return result("partial");
}

/** The member named `key` (the first, if repeated). */
export function findMember(scan: JsonScan, key: string): JsonMember | undefined {
  return scan.members.find((member) => member.key === key);
}

/** The decoded string value of a finished member, or undefined (absent, unfinished, not a string). */
export function memberString(text: string, member: JsonMember | undefined): string | undefined {
  if (member === undefined || member.valueEnd < 0 || text[member.valueStart] !== '"') return undefined;
  return JSON.parse(text.slice(member.valueStart, member.valueEnd)) as string;
}
