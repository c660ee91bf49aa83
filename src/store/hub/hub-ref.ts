import { InvalidRequestError } from "../../core/errors.js";

/** The revision a reference without `@REVISION` means. */
export const DEFAULT_REVISION = "main";

/** The scheme every hub reference starts with. */
export const HUB_REF_PREFIX = "hf:";

/** A parsed `hf:OWNER/REPO[/FILE.gguf][@REVISION]`; every part already validated. */
export interface HubRef {
  /** `OWNER/REPO`, as the hub's URLs spell it. */
  readonly repo: string;
  /** The user or organisation that owns the repository. */
  readonly owner: string;
  /** The repository's own name. */
  readonly name: string;
  /** Path of the GGUF file inside the repository (may hold `/`), or `undefined` to let the pull choose. */
  readonly file: string | undefined;
  /** Branch, tag or commit. @default "main" */
  readonly revision: string;
}

const MAX_REF_LENGTH = 1024;
const MAX_NAME_LENGTH = 96;
const MAX_FILE_LENGTH = 512;
const MAX_REVISION_LENGTH = 255;
const NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;
const FILE_SEGMENT_PATTERN = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/;
const REVISION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

/**
 * Parses and validates a hub reference. Everything is checked before any part reaches a URL or
 * a path: printable ASCII only, no `..`, no absolute paths, no backslashes, no NUL.
 *
 * @example
 * parseHubRef("hf:acme/tiny-GGUF/tiny.Q8_0.gguf@v1");
 * // { repo: "acme/tiny-GGUF", owner: "acme", name: "tiny-GGUF", file: "tiny.Q8_0.gguf", revision: "v1" }
 * @throws InvalidRequestError (param `ref`) naming the part at fault.
 */
export function parseHubRef(text: string): HubRef {
  if (typeof text !== "string") throw refError("a hub reference must be a string");
  if (text.length > MAX_REF_LENGTH) throw refError(`the reference is longer than ${MAX_REF_LENGTH} characters`);
  assertPlainAscii(text, "the reference");
  if (!text.startsWith(HUB_REF_PREFIX)) {
    throw refError(`'${text}' is not a hub reference; expected ${HUB_REF_PREFIX}OWNER/REPO[/FILE.gguf][@REVISION]`);
  }
  const body = text.slice(HUB_REF_PREFIX.length);
  if (body.startsWith("/")) throw refError(`'${text}' holds an absolute path; expected ${HUB_REF_PREFIX}OWNER/REPO`);
  const at = body.indexOf("@");
  if (at !== -1 && body.indexOf("@", at + 1) !== -1) throw refError(`'${text}' holds more than one '@'`);
  const path = at === -1 ? body : body.slice(0, at);
  const revision = at === -1 ? DEFAULT_REVISION : body.slice(at + 1);
  const segments = path.split("/");
  if (segments.length < 2 || segments[0] === "" || segments[1] === "") {
    throw refError(`'${text}' names no repository; expected ${HUB_REF_PREFIX}OWNER/REPO[/FILE.gguf][@REVISION]`);
  }
  const [owner, name] = segments as [string, string];
  assertHubRepo(`${owner}/${name}`);
  const file = segments.length > 2 ? segments.slice(2).join("/") : undefined;
  if (file !== undefined) assertHubFilePath(file);
  assertHubRevision(revision);
  return Object.freeze({ repo: `${owner}/${name}`, owner, name, file, revision });
}

/** Writes a reference back in its canonical text form. */
export function formatHubRef(ref: HubRef): string {
  return `${HUB_REF_PREFIX}${ref.repo}${ref.file === undefined ? "" : `/${ref.file}`}@${ref.revision}`;
}

/**
 * Checks an `OWNER/REPO` name: two parts of letters, digits, `.`, `_`, `-`, starting with a
 * letter or digit, at most 96 characters each, without `..`.
 *
 * @throws InvalidRequestError (param `ref`).
 */
export function assertHubRepo(repo: string): void {
  assertPlainAscii(repo, "the repository");
  const parts = repo.split("/");
  if (parts.length !== 2) throw refError(`repository '${repo}' must be OWNER/REPO`);
  for (const [label, part] of [["owner", parts[0]!], ["repository name", parts[1]!]] as const) {
    if (part.includes("..")) throw refError(`the ${label} '${part}' contains '..'`);
    if (part.length > MAX_NAME_LENGTH) throw refError(`the ${label} '${part}' is longer than ${MAX_NAME_LENGTH} characters`);
    if (!NAME_PATTERN.test(part)) {
      throw refError(`the ${label} '${part}' may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit`);
    }
  }
}

/**
 * Checks a file path inside a repository: relative, `/`-separated segments of letters, digits,
 * `.`, `_`, `+`, `-`, no `..`, ending in `.gguf`.
 *
 * @throws InvalidRequestError (param `ref`).
 */
export function assertHubFilePath(file: string): void {
  assertPlainAscii(file, "the file path");
  if (file.length > MAX_FILE_LENGTH) throw refError(`the file path is longer than ${MAX_FILE_LENGTH} characters`);
  if (file.startsWith("/")) throw refError(`the file path '${file}' is absolute; give it relative to the repository`);
  if (file.includes("..")) throw refError(`the file path '${file}' contains '..'`);
  for (const segment of file.split("/")) {
    if (segment === "") throw refError(`the file path '${file}' has an empty segment`);
    if (!FILE_SEGMENT_PATTERN.test(segment)) {
      throw refError(`the file path '${file}' may hold only letters, digits, '.', '_', '+', '-' and '/' between names`);
    }
  }
  if (!file.toLowerCase().endsWith(".gguf")) throw refError(`the file '${file}' is not a .gguf file`);
}

/**
 * Checks a revision: a branch, tag or commit of letters, digits, `.`, `_`, `-` and `/` (as in
 * `refs/pr/1`), starting with a letter or digit, without `..`, `//`, a trailing `/` or `.lock`.
 *
 * @throws InvalidRequestError (param `ref`).
 */
export function assertHubRevision(revision: string): void {
  assertPlainAscii(revision, "the revision");
  if (revision === "") throw refError("the revision after '@' is empty");
  if (revision.length > MAX_REVISION_LENGTH) throw refError(`the revision is longer than ${MAX_REVISION_LENGTH} characters`);
  if (revision.includes("..")) throw refError(`the revision '${revision}' contains '..'`);
  if (!REVISION_PATTERN.test(revision)) {
    throw refError(`the revision '${revision}' may hold only letters, digits, '.', '_', '-' and '/', and must start with a letter or digit`);
  }
  if (revision.includes("//") || revision.endsWith("/") || revision.endsWith(".") || revision.endsWith(".lock")) {
    throw refError(`the revision '${revision}' is not a valid branch, tag or commit name`);
  }
}

/** Refuses control characters, NUL, backslashes, whitespace and anything outside printable ASCII. */
function assertPlainAscii(text: string, label: string): void {
  for (const character of text) {
    const point = character.codePointAt(0)!;
    if (point === 0) throw refError(`${label} contains a NUL character`);
    if (character === "\\") throw refError(`${label} contains a backslash`);
    if (point < 0x20 || point === 0x7f) throw refError(`${label} contains a control character (U+${hex(point)})`);
    if (point === 0x20) throw refError(`${label} contains a space`);
    if (point > 0x7e) throw refError(`${label} contains the non-ASCII character U+${hex(point)}`);
  }
}

function hex(point: number): string {
  return point.toString(16).toUpperCase().padStart(4, "0");
}

function refError(problem: string): InvalidRequestError {
  return new InvalidRequestError(`Invalid hub reference: ${problem}`, { param: "ref" });
}
