import { Template } from "@huggingface/jinja";
import { InvalidRequestError } from "../../../core/errors.js";
import { PythonRandom } from "./python-random.js";

/** A document of an lm-eval dataset: one row of its JSONL or Parquet file. */
export type Doc = Record<string, unknown>;

/** `doc_to_text`/`doc_to_target`/`doc_to_choice`: a field name, a Jinja template, or (target, choice) a constant. */
export type DocField = string | number | unknown[] | Record<string, unknown>;

// @huggingface/jinja drops one final newline as Jinja does by default; lm-eval's environment
// keeps it (keep_trailing_newline=True). A private-use sentinel keeps the template's last line.
const SENTINEL = "\uE000";

/** lm-eval's `utils.apply_template`: the template rendered with the document's fields as variables. */
export function applyTemplate(source: string, doc: Doc): string {
  let template: Template;
  try {
    template = new Template(source + SENTINEL);
  } catch (error) {
    throw new InvalidRequestError(`The template ${JSON.stringify(source.slice(0, 80))} does not parse: ${(error as Error).message}`, { param: "task", cause: error });
  }
  const text = template.render(doc);
  return text.endsWith(SENTINEL) ? text.slice(0, -SENTINEL.length) : text;
}

/** Python's `str.isdigit()` for the ASCII digits templates render. */
const isDigits = (text: string): boolean => /^[0-9]+$/.test(text);

/**
 * `ast.literal_eval` of a rendered list (`['a', 'b']`, or `["a", "b"]` as @huggingface/jinja
 * prints lists): strings in either quote, numbers, separated by commas.
 */
export function literalList(text: string): unknown[] {
  const source = text.trim();
  const items: unknown[] = [];
  let at = 0;
  const fail = (): never => {
    throw new InvalidRequestError(`doc_to_choice rendered ${JSON.stringify(source.slice(0, 80))}, which is not a list literal`, { param: "task" });
  };
  const skip = (): void => {
    while (at < source.length && /\s/.test(source[at]!)) at++;
  };
  if (source[at] !== "[") fail();
  at++;
  skip();
  if (source[at] === "]") return items;
  for (;;) {
    skip();
    const quote = source[at];
    if (quote === "'" || quote === '"') {
      let value = "";
      at++;
      while (at < source.length && source[at] !== quote) {
        if (source[at] === "\\") {
          const next = source[++at];
          value += next === "n" ? "\n" : next === "t" ? "\t" : (next ?? "");
        } else value += source[at];
        at++;
      }
      if (at >= source.length) fail();
      at++;
      items.push(value);
    } else {
      const number = /^-?[0-9]+(\.[0-9]+)?/.exec(source.slice(at));
      if (number === null) fail();
      items.push(Number(number![0]));
      at += number![0].length;
    }
    skip();
    if (source[at] === ",") {
      at++;
      skip();
      if (source[at] === "]") break;
      continue;
    }
    if (source[at] === "]") break;
    fail();
  }
  if (source.slice(at + 1).trim() !== "") fail();
  return items;
}

/** How the fields of a task turn documents into text, as lm-eval's `ConfigurableTask` reads them. */
export class DocFormatter {
  /** The dataset's column names: a `doc_to_*` string that names one is a field, otherwise a template. */
  readonly #features: ReadonlySet<string>;
  readonly #hasChoices: boolean;

  constructor(features: Iterable<string>, hasChoices: boolean) {
    this.#features = new Set(features);
    this.#hasChoices = hasChoices;
  }

  /** `doc_to_text`: a string (a rendered template that is all digits is an index, lm-eval's multiple-input case, refused by the caller). */
  text(doc: Doc, field: DocField | undefined): string | number {
    if (typeof field === "number") return field;
    if (typeof field !== "string") throw new InvalidRequestError("doc_to_text must be a field name or a Jinja template", { param: "task" });
    if (this.#features.has(field)) return doc[field] as string;
    const text = applyTemplate(field, doc);
    return isDigits(text) && this.#hasChoices ? Number(text) : text;
  }

  /** `doc_to_target`: an index into the choices, a string, or a list of targets. */
  target(doc: Doc, field: DocField | undefined): unknown {
    if (typeof field === "number" || Array.isArray(field)) return field;
    if (typeof field !== "string") throw new InvalidRequestError("doc_to_target must be a field name, a Jinja template or a constant", { param: "task" });
    if (this.#features.has(field)) return doc[field];
    const text = applyTemplate(field, doc);
    if (isDigits(text) && this.#hasChoices) return Number(text);
    if (text.length >= 2 && text.startsWith("[") && text.endsWith("]")) {
      try {
        return literalList(text);
      } catch {
        return text;
      }
    }
    return text;
  }

  /** `doc_to_choice`: the list of choices. */
  choices(doc: Doc, field: DocField | undefined): string[] {
    let value: unknown;
    if (typeof field === "string") value = this.#features.has(field) ? doc[field] : literalList(applyTemplate(field, doc));
    else if (Array.isArray(field)) value = field;
    else if (field !== null && typeof field === "object") value = Object.values(field);
    else throw new InvalidRequestError("doc_to_choice must be a field name, a Jinja template, a list or a mapping", { param: "task" });
    if (!Array.isArray(value)) throw new InvalidRequestError("doc_to_choice did not give a list", { param: "task" });
    return value.map((choice) => String(choice));
  }
}

/** One turn of a prompt: lm-eval's `Message`, with the delimiter it is followed by in plain text. */
export interface PromptMessage {
  role: "system" | "user" | "assistant";
  content: string;
  delimiter: string;
}

/** lm-eval's `maybe_delimit`: joined by `delimiter` unless one side already has whitespace at the seam. */
export function maybeDelimit(prefix: string | undefined, suffix: string | undefined, delimiter: string): string {
  if (!prefix) return suffix ?? "";
  if (!suffix) return prefix;
  return /\s$/.test(prefix) || /^\s/.test(suffix) ? prefix + suffix : prefix + delimiter + suffix;
}

/**
 * lm-eval's `build_qa_turn` (without gen_prefix): the question as a user turn followed by the
 * target delimiter when an answer follows; the answer (a choice by index, the first of a list,
 * or the text) as an assistant turn followed by the few-shot delimiter.
 */
export function qaTurn(question: string, choices: string[] | undefined, answer: unknown, targetDelimiter: string, fewshotDelimiter: string): PromptMessage[] {
  const hasAnswer = answer !== undefined && answer !== null && answer !== "";
  const turns: PromptMessage[] = [{ role: "user", content: question, delimiter: hasAnswer ? targetDelimiter : "" }];
  if (hasAnswer) {
    const text = choices !== undefined && typeof answer === "number" ? choices[answer] : Array.isArray(answer) ? answer[0] : answer;
    if (typeof text !== "string") throw new InvalidRequestError(`A few-shot example's answer is not a string (${JSON.stringify(answer)}): give doc_to_choice, or a doc_to_target that renders text`, { param: "task" });
    turns.push({ role: "assistant", content: text, delimiter: fewshotDelimiter });
  }
  return turns;
}

/** Plain text: every turn followed by its delimiter. */
export function messagesToText(messages: readonly PromptMessage[]): string {
  return messages.map((message) => message.content + message.delimiter).join("");
}

/**
 * lm-eval's `multiturn_to_singleturn`: the system turn kept, everything else joined (with the
 * plain-text delimiters, the last one dropped) into one user turn.
 */
export function toSingleTurn(messages: readonly PromptMessage[]): { role: string; content: string }[] {
  const [first, ...rest] = messages;
  const system = first?.role === "system" ? first : undefined;
  const turns = system === undefined ? [...messages] : rest;
  const last = turns.length - 1;
  const content = turns.map((turn, index) => turn.content + (index === last ? "" : turn.delimiter)).join("");
  const user = { role: "user", content };
  return system === undefined ? [user] : [{ role: "system", content: system.content }, user];
}

/** Which few-shot examples a document gets: lm-eval's `ContextSampler` (seeded) or `FirstNSampler`. */
export class FewshotSampler {
  readonly #random: PythonRandom;
  readonly #pool: readonly Doc[];
  readonly #firstN: boolean;

  /**
   * @param pool the few-shot split (with `fewshot_indices` applied by the caller for the default sampler)
   * @param seed lm-eval's `--fewshot_random_seed` @default 1234
   */
  constructor(pool: readonly Doc[], sampler: "default" | "first_n", seed = 1234) {
    this.#random = new PythonRandom(seed);
    this.#pool = pool;
    this.#firstN = sampler === "first_n";
  }

  /**
   * `n` examples for `evalDoc`. When the few-shot split is the evaluated one, lm-eval passes the
   * document so it is never its own example: n + 1 are drawn and equal documents removed.
   */
  sample(n: number, evalDoc: Doc | undefined): Doc[] {
    if (n === 0) return [];
    if (this.#firstN) {
      const pool = evalDoc === undefined ? this.#pool : this.#pool.filter((doc) => !sameDoc(doc, evalDoc));
      if (n > pool.length) throw new InvalidRequestError(`num_fewshot ${n} exceeds the ${pool.length} few-shot documents available`, { param: "task" });
      return pool.slice(0, n);
    }
    const draw = evalDoc === undefined || Object.keys(evalDoc).length === 0 ? n : n + 1;
    if (draw > this.#pool.length) throw new InvalidRequestError(`num_fewshot ${n} needs ${draw} few-shot documents; the split has ${this.#pool.length}`, { param: "task" });
    const drawn = this.#random.sample(this.#pool, draw);
    return draw === n ? drawn : drawn.filter((doc) => !sameDoc(doc, evalDoc!)).slice(0, n);
  }
}

/** Python's `dict == dict` on JSON-like rows. */
function sameDoc(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  return keysA.length === keysB.length && keysA.every((key) => Object.hasOwn(b, key) && sameDoc((a as Doc)[key], (b as Doc)[key]));
}
