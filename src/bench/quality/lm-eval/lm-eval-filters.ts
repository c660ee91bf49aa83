import { InvalidRequestError } from "../../../core/errors.js";

/** One step of an lm-eval filter pipeline (`filter_list[].filter[]`). */
export type FilterStep =
  | { function: "regex"; pattern: string; groupSelect: number; fallback: string }
  | { function: "take_first" }
  | { function: "lowercase" }
  | { function: "uppercase" }
  | { function: "remove_whitespace" }
  | { function: "map"; mapping: Record<string, unknown>; defaultValue: unknown };

/** A named pipeline (lm-eval's `FilterEnsemble`): its metrics are reported as `metric,name`. */
export interface FilterEnsemble {
  name: string;
  steps: FilterStep[];
}

/** The filters Grove runs; lm-eval's others (majority_vote, custom, …) are refused by name. */
export const SUPPORTED_FILTERS = ["regex", "take_first", "lowercase", "uppercase", "remove_whitespace", "map"] as const;

/**
 * A Python `re` pattern as a JavaScript one: named groups `(?P<name>…)` become `(?<name>…)`;
 * the rest of the syntax lm-eval's task files use (classes, groups, quantifiers, anchors) is
 * the same. A pattern JavaScript cannot compile is refused.
 */
export function pythonRegex(pattern: string, flags = ""): RegExp {
  const source = pattern.replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, "(?<$1>").replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, "\\k<$1>");
  try {
    return new RegExp(source, flags);
  } catch (error) {
    throw new InvalidRequestError(`The regex ${JSON.stringify(pattern)} does not compile: ${(error as Error).message}`, { param: "task", cause: error });
  }
}

/** Python's `re.findall`: whole matches without groups, the group with one, tuples with several. */
function findAll(regex: RegExp, text: string): (string | string[])[] {
  const global = new RegExp(regex.source, regex.flags.includes("g") ? regex.flags : `${regex.flags}g`);
  return [...text.matchAll(global)].map((match) => {
    if (match.length === 1) return match[0];
    if (match.length === 2) return match[1] ?? "";
    return match.slice(1).map((group) => group ?? "");
  });
}

/** lm-eval's `RegexFilter.apply` on one response. */
function applyRegex(step: Extract<FilterStep, { function: "regex" }>, response: string): string {
  const matches = findAll(pythonRegex(step.pattern), response);
  if (matches.length === 0) return step.fallback;
  // Python indexing: a negative group_select counts from the end (-1 = the last match).
  const index = step.groupSelect < 0 ? matches.length + step.groupSelect : step.groupSelect;
  let match = matches[index];
  if (match === undefined) throw new InvalidRequestError(`group_select ${step.groupSelect} is out of range of ${matches.length} matches`, { param: "task" });
  if (Array.isArray(match)) match = match.find((group) => group !== "") ?? step.fallback;
  return match.trim();
}

/**
 * Runs one pipeline on a document's responses (one per repeat; Grove makes one) and returns the
 * filtered answer. lm-eval applies each step to the list of responses; `take_first` keeps the
 * first, and a pipeline without it is ended by one here (with one response the result is the same).
 */
export function applyFilters(steps: readonly FilterStep[], responses: readonly string[]): unknown {
  let values: unknown[] = [...responses];
  for (const step of steps) {
    switch (step.function) {
      case "take_first":
        values = values.slice(0, 1);
        break;
      case "regex":
        values = values.map((value) => applyRegex(step, typeof value === "string" ? value : ""));
        break;
      case "lowercase":
        values = values.map((value) => String(value).toLowerCase());
        break;
      case "uppercase":
        values = values.map((value) => String(value).toUpperCase());
        break;
      case "remove_whitespace":
        values = values.map((value) => String(value).trim());
        break;
      case "map":
        values = values.map((value) => (Object.hasOwn(step.mapping, String(value)) ? step.mapping[String(value)] : step.defaultValue));
        break;
    }
  }
  return values[0];
}

/** `exact_match`'s options in a `metric_list` entry. */
export interface ExactMatchOptions {
  ignoreCase: boolean;
  ignorePunctuation: boolean;
  ignoreNumbers: boolean;
  regexesToIgnore: string[];
}

/** Python's `string.punctuation`. */
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

/**
 * lm-eval's `exact_match_hf_evaluate` on one prediction: each of `regexes_to_ignore` removed
 * from both strings (in order), then lower-cased, then ASCII punctuation and digits removed as
 * asked, then compared whole — no trimming beyond what the options say.
 */
export function exactMatch(prediction: string, reference: string, options: ExactMatchOptions): boolean {
  const normalize = (text: string): string => {
    let value = text;
    for (const pattern of options.regexesToIgnore) value = value.replace(pythonRegex(pattern, "g"), "");
    if (options.ignoreCase) value = value.toLowerCase();
    if (options.ignorePunctuation) value = [...value].filter((character) => !PUNCTUATION.has(character)).join("");
    if (options.ignoreNumbers) value = value.replace(/[0-9]/g, "");
    return value;
  };
  return normalize(prediction) === normalize(reference);
}
