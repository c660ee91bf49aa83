import type { Digest } from "../core/digest.js";
import { InvalidRequestError } from "../core/errors.js";

/** The tag a name without `:tag` means. */
export const DEFAULT_TAG = "latest";

/** A parsed model name `[namespace/]family[:tag]`; every part already validated. */
export interface ModelName {
  /** The family, with its namespace when it has one: `llama3.2` or `acme/llama3.2`. */
  readonly family: string;
  /** The tag. @default "latest" */
  readonly tag: string;
}

/**
 * A parsed model reference: a full digest, a digest prefix, or a name. A bare hex string that is
 * also a valid name (`cafe`, `1234`) is read as a prefix that carries the name too, so the store
 * can try the name first.
 */
export type ModelRef =
  | { readonly kind: "digest"; readonly digest: Digest }
  | { readonly kind: "prefix"; readonly prefix: string; readonly name?: ModelName }
  | { readonly kind: "name"; readonly family: string; readonly tag: string };

/** Shortest digest prefix accepted, in hex digits. */
export const MIN_PREFIX_LENGTH = 4;

const MAX_PART_LENGTH = 64;
const MAX_NAME_LENGTH = 3 * MAX_PART_LENGTH + 2;
const MAX_REF_LENGTH = 128;
const PART_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const HEX_PATTERN = /^[0-9a-f]+$/;
const DIGEST_PREFIX = "sha256:";

/**
 * Parses and validates a model name `[namespace/]family[:tag]`. Each part is 1–64 characters of
 * ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit. Letters fold to lower
 * case (names are case-insensitive, as Ollama's are), so one model is stored and found under one
 * spelling. Pure: no file system call, so hostile input is refused before any path could be built
 * from it.
 *
 * @example
 * parseModelName("acme/tiny:q8_0"); // { family: "acme/tiny", tag: "q8_0" }
 * parseModelName("tiny");           // { family: "tiny", tag: "latest" }
 * parseModelName("Team:Small-Q8_0"); // { family: "team", tag: "small-q8_0" }
 * @throws InvalidRequestError (param `name`) naming the problem.
 */
export function parseModelName(text: string): ModelName {
  return parseName(text, "name");
}

/** The canonical text of a name: `family:tag`. */
export function formatModelName(name: ModelName): string {
  return `${name.family}:${name.tag}`;
}

/**
 * Parses a model reference: `sha256:<64 hex>` or 64 hex digits (a digest), 4–63 hex digits
 * with or without `sha256:` (a digest prefix), or a model name (see {@link parseModelName}).
 * Hex is accepted in either case and lower-cased. Pure: no file system call.
 *
 * @example
 * parseModelRef("sha256:3f2a");  // { kind: "prefix", prefix: "3f2a" }
 * parseModelRef("tiny:f16");     // { kind: "name", family: "tiny", tag: "f16" }
 * @throws InvalidRequestError (param `model`) naming the problem.
 */
export function parseModelRef(text: string): ModelRef {
  assertSafeText(text, "model", "model reference", MAX_REF_LENGTH);
  const hasScheme = text.toLowerCase().startsWith(DIGEST_PREFIX);
  const hex = (hasScheme ? text.slice(DIGEST_PREFIX.length) : text).toLowerCase();
  if (HEX_PATTERN.test(hex)) {
    if (hex.length === 64) return { kind: "digest", digest: `${DIGEST_PREFIX}${hex}` };
    if (hex.length >= MIN_PREFIX_LENGTH && hex.length < 64) {
      const name = hasScheme ? undefined : tryParseName(text);
      return name === undefined ? { kind: "prefix", prefix: hex } : { kind: "prefix", prefix: hex, name };
    }
    if (hasScheme) {
      throw refError(`${quoteUntrusted(text)} is not a digest: expected ${DIGEST_PREFIX} and ${MIN_PREFIX_LENGTH}–64 hex digits`);
    }
  } else if (hasScheme) {
    throw refError(`${quoteUntrusted(text)} is not a digest: only hex digits may follow '${DIGEST_PREFIX}'`);
  }
  const name = parseName(text, "model");
  return { kind: "name", family: name.family, tag: name.tag };
}

function tryParseName(text: string): ModelName | undefined {
  try {
    return parseName(text, "name");
  } catch {
    return undefined;
  }
}

function parseName(original: string, param: string): ModelName {
  assertSafeText(original, param, "model name", MAX_NAME_LENGTH);
  // Names are case-insensitive, as Ollama's are: `Team:Small-Q8_0` is `team:small-q8_0`.
  const text = original.toLowerCase();
  const fail = (problem: string): never => {
    throw new InvalidRequestError(
      `Invalid model name ${quoteUntrusted(original)}: ${problem}; expected [namespace/]family[:tag] in letters, digits, '.', '_' and '-' (upper case reads as lower case)`,
      { param },
    );
  };
  if (text.startsWith("/")) fail("absolute paths are not names");
  if (text.includes("..")) fail("'..' is not allowed");
  const colon = text.indexOf(":");
  if (colon !== -1 && text.indexOf(":", colon + 1) !== -1) fail("more than one ':'");
  const family = colon === -1 ? text : text.slice(0, colon);
  const tag = colon === -1 ? DEFAULT_TAG : text.slice(colon + 1);
  const segments = family.split("/");
  if (segments.length > 2) fail("at most one '/' (namespace/family)");
  for (const [index, part] of [...segments, tag].entries()) {
    const what = index === segments.length ? "the tag" : index === 0 && segments.length === 2 ? "the namespace" : "the family";
    if (part.length === 0) fail(`${what} is empty`);
    if (part.length > MAX_PART_LENGTH) fail(`${what} is longer than ${MAX_PART_LENGTH} characters`);
    if (!PART_PATTERN.test(part)) fail(`${what} ${quoteUntrusted(part)} holds a character outside [a-z0-9._-] or does not start with a letter or digit`);
  }
  return { family, tag };
}

/** Refuses what must never reach a path or a log line unescaped: NUL, controls, non-ASCII, whitespace, backslashes. */
function assertSafeText(text: unknown, param: string, what: string, maxLength: number): asserts text is string {
  if (typeof text !== "string") throw new InvalidRequestError(`The ${what} must be a string`, { param });
  if (text.length === 0) throw new InvalidRequestError(`The ${what} must not be empty`, { param });
  if (text.length > maxLength) throw new InvalidRequestError(`The ${what} is longer than ${maxLength} characters`, { param });
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    const problem =
      code === 0 ? "a NUL character"
      : code < 0x20 || code === 0x7f ? "a control character"
      : code > 0x7e ? "a non-ASCII character"
      : code === 0x20 ? "whitespace"
      : code === 0x5c ? "a backslash"
      : undefined;
    if (problem !== undefined) throw new InvalidRequestError(`Invalid ${what} ${quoteUntrusted(text)}: it holds ${problem}`, { param });
  }
}

function refError(message: string): InvalidRequestError {
  return new InvalidRequestError(message, { param: "model" });
}

/**
 * Quotes untrusted text for an error message or a log line: cut to a readable length, everything
 * outside printable ASCII escaped (NUL, controls, bidirectional overrides, look-alike letters).
 */
export function quoteUntrusted(text: string): string {
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
  return shown.replace(/[^\x20-\x7e]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
