/** How a model was made from its base (the hub's `base_model_relation`). */
export type ModelRelation = "finetune" | "adapter" | "quantized" | "merge";

/** The relations a model card may declare. */
export const MODEL_RELATIONS: readonly ModelRelation[] = ["finetune", "adapter", "quantized", "merge"];

/** The lineage and licence fields of a model card's YAML front matter. */
export interface ModelCard {
  /** The card's `base_model`: none, one or (for a merge) several hub repositories. */
  readonly baseModels: readonly string[];
  /** The card's `base_model_relation`, when it names one Grove knows. */
  readonly relation: ModelRelation | undefined;
  /** The card's `license` (an SPDX-like id such as `apache-2.0`, or `other`). */
  readonly license: string | undefined;
}

/** A card that declares nothing: what a repository without README.md has. */
export const EMPTY_MODEL_CARD: ModelCard = Object.freeze({ baseModels: Object.freeze([]), relation: undefined, license: undefined });

const MAX_FRONT_MATTER_LINES = 4096;
const MAX_BASE_MODELS = 64;
const MAX_VALUE_LENGTH = 256;

/**
 * Reads `base_model`, `base_model_relation` and `license` from the YAML front matter of a
 * model card (README.md). This is a deliberately small reader for the flat keys the hub
 * writes — `key: value`, `key: [a, b]` and block lists `- a` — not a YAML parser; other keys
 * and anything it does not understand are ignored, never an error.
 *
 * @example
 * parseModelCard("---\nbase_model: acme/base\nbase_model_relation: quantized\n---\n# Card");
 * // { baseModels: ["acme/base"], relation: "quantized", license: undefined }
 */
export function parseModelCard(text: string): ModelCard {
  const fields = readFrontMatter(text);
  const baseModels = (fields.get("base_model") ?? [])
    .filter((value) => value !== "" && !/[\u0000-\u001f\u007f]/.test(value))
    .slice(0, MAX_BASE_MODELS);
  const relationValue = fields.get("base_model_relation")?.[0];
  const relation = MODEL_RELATIONS.find((candidate) => candidate === relationValue);
  const license = fields.get("license")?.[0];
  return Object.freeze({
    baseModels: Object.freeze([...new Set(baseModels)]),
    relation,
    license: license === undefined || license === "" ? undefined : license,
  });
}

/** The top-level keys of the front matter, each with its scalar or list values as strings. */
function readFrontMatter(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/, MAX_FRONT_MATTER_LINES);
  if (lines[0]?.trimEnd() !== "---") return fields;
  let key: string | undefined;
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index]!;
    if (line.trimEnd() === "---" || line.trimEnd() === "...") return fields;
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const item = /^\s*-\s+(.*)$/.exec(line) ?? /^\s*-$/.exec(line);
    if (item && key !== undefined) {
      fields.get(key)!.push(scalar(item[1] ?? ""));
      continue;
    }
    const entry = /^([A-Za-z_][\w-]*)\s*:(?:\s+(.*))?$/.exec(line);
    if (!entry) {
      // An indented line under a key we do not read (a nested map, a block scalar): skip it.
      if (!/^\s/.test(line)) key = undefined;
      continue;
    }
    key = entry[1]!;
    const value = stripComment(entry[2] ?? "").trim();
    if (value.startsWith("[") && value.endsWith("]")) {
      fields.set(key, splitFlowList(value.slice(1, -1)).map(scalar).filter((part) => part !== ""));
    } else if (value === "") {
      fields.set(key, []);
    } else if (value.startsWith("|") || value.startsWith(">") || value.startsWith("{")) {
      fields.set(key, []);
      key = undefined;
    } else {
      fields.set(key, [scalar(value)]);
    }
  }
  // No closing `---`: not front matter after all.
  return new Map();
}

/** Unquotes and trims one YAML scalar, capped in length. */
function scalar(raw: string): string {
  let value = stripComment(raw).trim();
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
    value = value.slice(1, -1);
  }
  return value.slice(0, MAX_VALUE_LENGTH);
}

/** Drops a ` # comment` that is outside quotes. */
function stripComment(raw: string): string {
  let quote: string | undefined;
  for (let index = 0; index < raw.length; index++) {
    const character = raw[index]!;
    if (quote !== undefined) {
      if (character === quote) quote = undefined;
    } else if (character === '"' || character === "'") {
      quote = character;
    } else if (character === "#" && (index === 0 || /\s/.test(raw[index - 1]!))) {
      return raw.slice(0, index);
    }
  }
  return raw;
}

/** Splits the inside of `[a, "b, c"]` on commas outside quotes. */
function splitFlowList(inner: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let index = 0; index < inner.length; index++) {
    const character = inner[index]!;
    if (quote !== undefined) {
      if (character === quote) quote = undefined;
    } else if (character === '"' || character === "'") {
      quote = character;
    } else if (character === ",") {
      parts.push(inner.slice(start, index));
      start = index + 1;
    }
  }
  parts.push(inner.slice(start));
  return parts;
}
