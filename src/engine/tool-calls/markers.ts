/**
 * Finding a family's markers (`<tool_call>`, `[TOOL_CALLS]`, `<|channel|>`) in output that may
 * still be arriving. While streaming, text that could be the beginning of a marker is held back,
 * as the stop matcher holds back the beginning of a stop string.
 */
import { skipWhitespace } from "./json-scan.js";

export interface MarkerMatch {
  readonly index: number;
  readonly marker: string;
  /** Just past the marker. */
  readonly end: number;
}

/** The earliest occurrence of any of `markers` at or after `from` (the longest marker at a tie). */
export function findMarker(text: string, markers: readonly string[], from: number): MarkerMatch | undefined {
  let best: MarkerMatch | undefined;
  for (const marker of markers) {
    const index = text.indexOf(marker, from);
    if (index < 0) continue;
    if (best === undefined || index < best.index || (index === best.index && marker.length > best.marker.length)) {
      best = { index, marker, end: index + marker.length };
    }
  }
  return best;
}

/** Length of the longest end of `text` (after `from`) that is a proper beginning of some marker. */
export function partialMarkerLength(text: string, markers: readonly string[], from = 0): number {
  const longest = markers.reduce((max, marker) => Math.max(max, marker.length), 0);
  for (let length = Math.min(longest - 1, text.length - from); length > 0; length--) {
    const tail = text.slice(text.length - length);
    if (markers.some((marker) => marker.length > length && marker.startsWith(tail))) return length;
  }
  return 0;
}

/**
 * Text from `from` up to the first of `markers`. When none is found the text runs to the end,
 * less (while not `final`) a held-back end that may yet become a marker.
 */
export function textUntil(
  text: string,
  from: number,
  markers: readonly string[],
  final: boolean,
): { readonly text: string; readonly match: MarkerMatch | undefined } {
  const match = findMarker(text, markers, from);
  if (match !== undefined) return { text: text.slice(from, match.index), match };
  const hold = final ? 0 : partialMarkerLength(text, markers, from);
  return { text: text.slice(from, text.length - hold), match: undefined };
}

/** Whether `text` from `from`, less leading whitespace, is a proper beginning of `marker` (possibly empty). */
export function mayBecome(text: string, from: number, marker: string): boolean {
  const rest = text.slice(from).trimStart();
  return rest.length < marker.length && marker.startsWith(rest);
}

/**
 * Content from `from` up to the first of `openers` (which start something else: a tool call, a
 * channel), with every one of `drops` (wrappers such as Granite's `<response>`) left out.
 */
export function contentUntil(
  text: string,
  from: number,
  openers: readonly string[],
  drops: readonly string[],
  final: boolean,
): { readonly text: string; readonly match: MarkerMatch | undefined } {
  let content = "";
  let at = from;
  for (;;) {
    const found = textUntil(text, at, [...openers, ...drops], final);
    content += found.text;
    if (found.match === undefined || openers.includes(found.match.marker)) return { text: content, match: found.match };
    at = found.match.end;
  }
}

/** Consumes `marker` at `at` (after whitespace): the index past it, -1 if absent, -2 if it may still come. */
export function expectMarker(text: string, at: number, marker: string, final: boolean): number {
  const start = skipWhitespace(text, at);
  if (text.startsWith(marker, start)) return start + marker.length;
  return !final && mayBecome(text, at, marker) ? -2 : -1;
}

/** Skips `marker` at `at` (after whitespace) if it is there: the index past it, `at` if absent, -2 if it may still come. */
export function skipOptional(text: string, at: number, marker: string, final: boolean): number {
  const found = expectMarker(text, at, marker, final);
  return found === -1 ? at : found;
}
