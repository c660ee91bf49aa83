import { createHash } from "node:crypto";
import { readdir, realpath, stat } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { parse as parseYaml, type Tags } from "yaml";
import { z } from "zod";
import type { Digest } from "../../../core/digest.js";
import { InvalidRequestError, PathNotAllowedError } from "../../../core/errors.js";
import { readBoundedFile } from "../../../store/bounded-file.js";
import type { Task, TaskDoc } from "../tasks.js";
import { SUPPORTED_FILTERS, type FilterEnsemble, type FilterStep } from "./lm-eval-filters.js";
import { DEFAULT_METRICS, LM_EVAL_METRICS, type LmEvalScoring } from "./lm-eval-scoring.js";
import { applyTemplate, DocFormatter, FewshotSampler, messagesToText, qaTurn, toSingleTurn, type Doc, type PromptMessage } from "./lm-eval-prompt.js";

/** The largest YAML config and the largest data file read. */
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_DATA_BYTES = 256 * 1024 * 1024;
const OUTPUT_TYPES = ["multiple_choice", "generate_until", "loglikelihood", "loglikelihood_rolling"] as const;

/** How an lm-eval task is rendered into prompts (lm-eval's `simple_evaluate` arguments). */
export interface LmEvalTaskOptions {
  /** Override the config's `num_fewshot` (lm-eval's `--num_fewshot`). */
  numFewshot?: number;
  /** lm-eval's `--fewshot_random_seed`. @default 1234 */
  fewshotSeed?: number;
  /**
   * lm-eval's `--apply_chat_template`: the prompt rendered by the model's chat template, with the
   * generation prompt added. `multiturn` is `--fewshot_as_multiturn` (each example a user and an
   * assistant turn; otherwise all in one user turn).
   */
  chat?: { render: (messages: { role: string; content: string }[]) => string; multiturn: boolean };
  /**
   * The one directory every file the config names (its `include:` chain, `dataset_path`,
   * `data_files`) must lie in, symbolic links resolved — the server's `--data-dir`, so a config a
   * request names cannot read the server's other files. Absent (the CLI): any local file.
   */
  root?: string;
}

/** `path` itself when it lies inside `root` (links resolved) or no root is set; otherwise a 403. */
async function confined(path: string, root: string | undefined, what: string): Promise<string> {
  if (root === undefined) return path;
  const inside = (base: string, target: string): boolean => {
    const rel = relative(base, target);
    return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
  };
  const realRoot = await realpath(root).catch(() => resolve(root));
  const real = await realpath(path).catch(() => resolve(path));
  if (!inside(realRoot, resolve(path)) || !inside(realRoot, real)) {
    throw new PathNotAllowedError(`The task config names ${what} outside the data directory; a config a request names reads files inside --data-dir only`, { param: "task" });
  }
  return real;
}

// `!function utils.x` names Python code: kept as a marker so the error can say which field needs it.
const FUNCTION_TAG: Tags[number] = { tag: "!function", resolve: (value: string) => ({ pythonFunction: value }) };
const field = z.union([z.string(), z.number(), z.array(z.unknown()), z.record(z.string(), z.unknown())]);
const metricEntry = z.looseObject({
  metric: z.string().min(1),
  ignore_case: z.boolean().optional(),
  ignore_punctuation: z.boolean().optional(),
  ignore_numbers: z.boolean().optional(),
  regexes_to_ignore: z.array(z.string()).optional(),
});
const filterFunction = z.looseObject({ function: z.string().min(1) });
const CONFIG = z.looseObject({
  task: z.string().min(1, "needs a task name"),
  dataset_path: z.string().min(1, "needs dataset_path (a local file, directory, or json/parquet with data_files)"),
  dataset_name: z.string().nullable().optional(),
  dataset_kwargs: z.looseObject({ data_files: z.unknown().optional() }).nullable().optional(),
  data_files: z.unknown().optional(),
  training_split: z.string().nullable().optional(),
  validation_split: z.string().nullable().optional(),
  test_split: z.string().nullable().optional(),
  fewshot_split: z.string().nullable().optional(),
  output_type: z.enum(OUTPUT_TYPES, { message: `output_type must be one of ${OUTPUT_TYPES.join(", ")}` }).default("generate_until"),
  doc_to_text: field.optional(),
  doc_to_target: field.optional(),
  doc_to_choice: field.nullable().optional(),
  description: z.string().default(""),
  target_delimiter: z.string().default(" "),
  fewshot_delimiter: z.string().default("\n\n"),
  num_fewshot: z.number().int().min(0).max(64).nullable().optional(),
  fewshot_config: z
    .looseObject({
      sampler: z.enum(["default", "first_n"]).default("default"),
      split: z.string().nullable().optional(),
      samples: z.array(z.record(z.string(), z.unknown())).optional(),
      fewshot_indices: z.array(z.number().int().nonnegative()).optional(),
      doc_to_text: field.optional(),
      doc_to_target: field.optional(),
      doc_to_choice: field.optional(),
      fewshot_delimiter: z.string().optional(),
      target_delimiter: z.string().optional(),
    })
    .nullable()
    .optional(),
  metric_list: z.array(metricEntry).nullable().optional(),
  generation_kwargs: z
    .looseObject({
      until: z.union([z.string(), z.array(z.string())]).optional(),
      max_gen_toks: z.number().int().min(1).max(1024).optional(),
      temperature: z.number().min(0).optional(),
      do_sample: z.boolean().optional(),
    })
    .nullable()
    .optional(),
  filter_list: z.array(z.looseObject({ name: z.string().min(1), filter: z.array(filterFunction).min(1) })).nullable().optional(),
  repeats: z.number().int().optional(),
});
type Config = z.infer<typeof CONFIG>;

/** Keys whose value is Python code or a feature Grove does not run: refused by name, never ignored. */
const UNSUPPORTED_KEYS = ["process_docs", "process_results", "custom_dataset", "use_prompt", "doc_to_image", "doc_to_audio", "gen_prefix", "group", "task_list"];

/** Is this path an lm-eval task config (`.yaml`/`.yml`)? */
export function isLmEvalConfig(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/**
 * Reads an lm-evaluation-harness task config over local data and renders it into Grove's task
 * representation: each document's context built as lm-eval builds it (description, few-shot
 * examples joined by `target_delimiter`/`fewshot_delimiter`, or chat turns through the model's
 * template), scored later by lm-eval's metric definitions ({@link LmEvalScoring}).
 *
 * Data: `dataset_path` a local JSONL/Parquet file or a directory holding `<split>.jsonl` /
 * `<split>.parquet` (or `<split>-*.parquet`, also under `dataset_name/` and `data/`), or
 * `dataset_path: json|parquet` with `dataset_kwargs.data_files` (`data_files` at the top level
 * too) — a file or list of files (split `train`, as Hugging Face datasets names it) or a mapping
 * split → files. Relative paths are resolved from the config's directory; `include:` merges a
 * base config from there first.
 *
 * @throws InvalidRequestError naming the file and the key for bad YAML, missing or wrong fields,
 *   an unknown output_type or metric, Python functions (`!function`), or unreadable data
 */
export async function readLmEvalTask(path: string, options: LmEvalTaskOptions = {}): Promise<Task> {
  const hash = createHash("sha256");
  const raw = await readConfig(path, hash, 0, options.root);
  for (const key of UNSUPPORTED_KEYS) {
    if (raw[key] !== undefined && raw[key] !== null) throw new InvalidRequestError(`${path}: '${key}' is not supported by Grove's lm-eval reader`, { param: "task" });
  }
  for (const [key, value] of Object.entries(raw)) {
    if (value !== null && typeof value === "object" && "pythonFunction" in (value as object)) {
      throw new InvalidRequestError(`${path}: ${key} is a Python function (!function ${(value as { pythonFunction: string }).pythonFunction}); Grove runs Jinja templates and field names only`, { param: "task" });
    }
  }
  const parsed = CONFIG.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidRequestError(`${path}: ${issue?.path.length ? `${issue.path.join(".")}: ` : ""}${issue?.message ?? "invalid config"}`, { param: "task" });
  }
  const config = parsed.data;
  if ((config.repeats ?? 1) !== 1) throw new InvalidRequestError(`${path}: repeats ${config.repeats}: Grove generates once per document`, { param: "task" });
  const base = dirname(resolve(path));
  const splits = await loadSplits(config, base, hash, options.root);
  const scoring = scoringOf(config, path);

  const evalSplit = config.test_split ?? config.validation_split;
  if (evalSplit == null) throw new InvalidRequestError(`${path}: needs test_split or validation_split`, { param: "task" });
  const docs = splitDocs(splits, evalSplit, path);
  const fewshot = config.fewshot_config ?? undefined;
  const fewshotSplit = fewshot?.split ?? config.fewshot_split ?? undefined;
  const numFewshot = options.numFewshot ?? config.num_fewshot ?? 0;
  const hasChoices = config.doc_to_choice != null;
  const features = new Set([...splits.values()].flatMap((rows) => rows.flatMap((row) => Object.keys(row))));
  const format = new DocFormatter(features, hasChoices);

  let sampler: FewshotSampler | undefined;
  if (numFewshot > 0) {
    let pool: Doc[];
    if (fewshotSplit !== undefined) pool = splitDocs(splits, fewshotSplit, path);
    else if (fewshot?.samples !== undefined) pool = fewshot.samples;
    // lm-eval's Task.fewshot_docs: training, else validation, else test docs.
    else pool = splitDocs(splits, config.training_split ?? config.validation_split ?? evalSplit, path);
    const sampling = fewshot?.sampler ?? "default";
    if (sampling === "default" && fewshot?.fewshot_indices !== undefined) pool = fewshot.fewshot_indices.map((index) => pool[index]!).filter((doc) => doc !== undefined);
    sampler = new FewshotSampler(pool, sampling, options.fewshotSeed ?? 1234);
  }
  // lm-eval compares fewshot_cfg.split with test_split (both unset counts as the same split).
  const excludeSelf = (fewshotSplit ?? null) === (config.test_split ?? null);
  const fewshotTarget = fewshot?.target_delimiter ?? config.target_delimiter;
  const fewshotDelimiter = fewshot?.fewshot_delimiter ?? config.fewshot_delimiter;
  const fewshotChoices = fewshot?.doc_to_choice ?? config.doc_to_choice ?? undefined;

  const built: TaskDoc[] = docs.map((doc, index) => {
    const where = `${path}: document ${index}`;
    // A rolling log-likelihood scores the target alone: lm-eval builds no prompt for it.
    if (config.output_type === "loglikelihood_rolling") return documentOf(config, format, doc, "", false, where);
    const messages: PromptMessage[] = [];
    // lm-eval's resolve_field: a field of the document, else a template.
    const description = config.description === "" ? "" : Object.hasOwn(doc, config.description) ? String(doc[config.description]) : applyTemplate(config.description, doc);
    if (description !== "") messages.push({ role: "system", content: String(description), delimiter: "" });
    for (const example of sampler?.sample(numFewshot, excludeSelf ? doc : undefined) ?? []) {
      const question = format.text(example, fewshot?.doc_to_text ?? config.doc_to_text);
      if (typeof question !== "string") throw new InvalidRequestError(`${where}: doc_to_text gives an index (lm-eval's multiple-input tasks), not supported`, { param: "task" });
      const choices = fewshotChoices == null ? undefined : format.choices(example, fewshotChoices);
      messages.push(...qaTurn(question, choices, format.target(example, fewshot?.doc_to_target ?? config.doc_to_target), fewshotTarget, fewshotDelimiter));
    }
    const question = format.text(doc, config.doc_to_text);
    if (typeof question !== "string") throw new InvalidRequestError(`${where}: doc_to_text gives an index (lm-eval's multiple-input tasks), not supported`, { param: "task" });
    messages.push(...qaTurn(question, undefined, undefined, config.target_delimiter, ""));
    const context = options.chat === undefined ? messagesToText(messages) : options.chat.render(options.chat.multiturn ? messages.map(({ role, content }) => ({ role, content })) : toSingleTurn(messages));
    return documentOf(config, format, doc, context, options.chat !== undefined, where);
  });
  return { name: config.task, type: config.output_type, docs: built, digest: `sha256:${hash.digest("hex")}` as Digest, lmEval: scoring };
}

/** The config with its `include:` chain merged (the including file wins), every file's bytes hashed. */
async function readConfig(path: string, hash: ReturnType<typeof createHash>, depth: number, root: string | undefined): Promise<Record<string, unknown>> {
  if (depth > 8) throw new InvalidRequestError(`${path}: include nests deeper than 8 files`, { param: "task" });
  const bytes = await readBoundedFile(await confined(path, root, depth === 0 ? "itself" : "an include"), { limit: MAX_CONFIG_BYTES, what: "the task config", param: "task" });
  hash.update(bytes);
  let value: unknown;
  try {
    value = parseYaml(bytes.toString("utf8"), { customTags: [FUNCTION_TAG], uniqueKeys: true, maxAliasCount: 100 });
  } catch (error) {
    throw new InvalidRequestError(`${path} is not valid YAML: ${(error as Error).message.split("\n")[0]}`, { param: "task", cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new InvalidRequestError(`${path} is not a YAML mapping of task settings`, { param: "task" });
  const config = value as Record<string, unknown>;
  const include = config.include;
  if (include === undefined) return config;
  if (typeof include !== "string") throw new InvalidRequestError(`${path}: include must name one YAML file`, { param: "task" });
  const { include: _, ...own } = config;
  return { ...(await readConfig(resolve(dirname(path), include), hash, depth + 1, root)), ...own };
}

/** Split name → rows, read from the config's local files. */
async function loadSplits(config: Config, base: string, hash: ReturnType<typeof createHash>, root: string | undefined): Promise<Map<string, Doc[]>> {
  const files = new Map<string, string[]>();
  const dataFiles = config.dataset_kwargs?.data_files ?? config.data_files;
  const local = (name: string): string => (isAbsolute(name) ? name : join(base, name));
  if (dataFiles !== undefined) {
    if (typeof dataFiles === "string") files.set("train", [local(dataFiles)]);
    else if (Array.isArray(dataFiles) && dataFiles.every((file) => typeof file === "string")) files.set("train", dataFiles.map(local));
    else if (dataFiles !== null && typeof dataFiles === "object" && !Array.isArray(dataFiles)) {
      for (const [split, value] of Object.entries(dataFiles)) {
        const list = typeof value === "string" ? [value] : Array.isArray(value) && value.every((file) => typeof file === "string") ? (value as string[]) : undefined;
        if (list === undefined) throw new InvalidRequestError(`data_files.${split} must be a file or a list of files`, { param: "task" });
        files.set(split, list.map(local));
      }
    } else throw new InvalidRequestError("data_files must be a file, a list of files or a mapping split → files", { param: "task" });
  } else {
    const target = await confined(local(config.dataset_path), root, "its dataset_path");
    const info = await stat(target).catch(() => undefined);
    if (info === undefined) throw new InvalidRequestError(`dataset_path ${config.dataset_path} is not a local file or directory (Grove reads local JSONL and Parquet data only; nothing is downloaded)`, { param: "task" });
    if (info.isFile()) files.set("train", [target]);
    else {
      const directories = [join(target, config.dataset_name ?? ""), join(target, config.dataset_name ?? "", "data")];
      for (const directory of directories) {
        const names = await readdir(directory).catch(() => [] as string[]);
        for (const name of names.sort()) {
          const match = /^([A-Za-z0-9_]+)(?:[-.].*)?\.(jsonl|json|parquet)$/.exec(name);
          if (match === null) continue;
          files.set(match[1]!, [...(files.get(match[1]!) ?? []), join(directory, name)]);
        }
      }
    }
  }
  const splits = new Map<string, Doc[]>();
  for (const [split, list] of files) {
    const rows: Doc[] = [];
    for (const file of list) rows.push(...(await readRows(await confined(file, root, "a data file"), hash)));
    splits.set(split, rows);
  }
  return splits;
}

async function readRows(file: string, hash: ReturnType<typeof createHash>): Promise<Doc[]> {
  const bytes = await readBoundedFile(file, { limit: MAX_DATA_BYTES, what: "the task data", param: "task" });
  hash.update(bytes);
  if (extname(file).toLowerCase() === ".parquet") {
    try {
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const rows = (await parquetReadObjects({ file: buffer })) as Doc[];
      // INT64 columns arrive as BigInt: as numbers (like JSON's) where they are exact.
      return rows.map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key, typeof value === "bigint" && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value])));
    } catch (error) {
      throw new InvalidRequestError(`${basename(file)} is not a readable Parquet file: ${(error as Error).message}`, { param: "task", cause: error });
    }
  }
  const rows: Doc[] = [];
  for (const [index, raw] of bytes.toString("utf8").split("\n").entries()) {
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new InvalidRequestError(`${basename(file)} line ${index + 1} is not valid JSON`, { param: "task" });
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new InvalidRequestError(`${basename(file)} line ${index + 1} is not a JSON object`, { param: "task" });
    rows.push(value as Doc);
  }
  return rows;
}

function splitDocs(splits: Map<string, Doc[]>, split: string, path: string): Doc[] {
  const rows = splits.get(split);
  if (rows === undefined) throw new InvalidRequestError(`${path}: no data for split '${split}' (found: ${[...splits.keys()].join(", ") || "none"})`, { param: "task" });
  if (rows.length === 0) throw new InvalidRequestError(`${path}: split '${split}' has no documents`, { param: "task" });
  return rows;
}

/** One evaluated document in Grove's representation, from its context and target. */
function documentOf(config: Config, format: DocFormatter, doc: Doc, context: string, chat: boolean, where: string): TaskDoc {
  const target = format.target(doc, config.doc_to_target);
  switch (config.output_type) {
    case "multiple_choice": {
      if (config.doc_to_choice == null) throw new InvalidRequestError(`${where}: multiple_choice needs doc_to_choice`, { param: "task" });
      const choices = format.choices(doc, config.doc_to_choice);
      const answer = typeof target === "number" ? target : typeof target === "string" ? choices.indexOf(target) : -1;
      if (!Number.isInteger(answer) || answer < 0 || answer >= choices.length) throw new InvalidRequestError(`${where}: the target ${JSON.stringify(target)} is not one of its ${choices.length} choices`, { param: "task" });
      if (choices.length < 2 || choices.some((choice) => choice === "")) throw new InvalidRequestError(`${where}: needs at least 2 non-empty choices`, { param: "task" });
      // With a chat template lm-eval drops the target delimiter (the answer starts the assistant turn).
      return { type: "multiple_choice", context, choices, answer, delimiter: chat ? "" : config.target_delimiter };
    }
    case "loglikelihood":
      if (typeof target !== "string" || target === "") throw new InvalidRequestError(`${where}: doc_to_target must give the continuation's text`, { param: "task" });
      return { type: "loglikelihood", context, continuation: target };
    case "loglikelihood_rolling":
      if (typeof target !== "string" || target === "") throw new InvalidRequestError(`${where}: doc_to_target must give the text to score`, { param: "task" });
      return { type: "loglikelihood_rolling", text: target };
    case "generate_until": {
      const answer = config.doc_to_choice != null && typeof target === "number" ? format.choices(doc, config.doc_to_choice)[target] : target;
      if (typeof answer !== "string" && typeof answer !== "number") throw new InvalidRequestError(`${where}: doc_to_target must give one answer (lists of targets are not supported)`, { param: "task" });
      if (context === "") throw new InvalidRequestError(`${where}: the prompt is empty`, { param: "task" });
      const kwargs = config.generation_kwargs ?? {};
      const until = kwargs.until === undefined ? [config.fewshot_delimiter] : typeof kwargs.until === "string" ? [kwargs.until] : kwargs.until;
      return { type: "generate_until", context, answer: String(answer), until: until.filter((stop) => stop !== "").slice(0, 16), max_tokens: kwargs.max_gen_toks ?? 256 };
    }
  }
}

/** metric_list, exact_match's options and filter_list, checked against what Grove computes. */
function scoringOf(config: Config, path: string): LmEvalScoring {
  const entries: z.infer<typeof metricEntry>[] = config.metric_list ?? DEFAULT_METRICS[config.output_type]!.map((metric) => ({ metric }));
  const metrics: string[] = [];
  const exactMatch = { ignoreCase: false, ignorePunctuation: false, ignoreNumbers: false, regexesToIgnore: [] as string[] };
  for (const entry of entries) {
    const known = LM_EVAL_METRICS[entry.metric];
    if (known === undefined || !known.outputTypes.includes(config.output_type)) {
      const allowed = Object.entries(LM_EVAL_METRICS).filter(([, value]) => value.outputTypes.includes(config.output_type)).map(([name]) => name);
      throw new InvalidRequestError(`${path}: metric '${entry.metric}' is not one Grove computes for ${config.output_type} (${allowed.join(", ")})`, { param: "task" });
    }
    metrics.push(entry.metric);
    if (entry.ignore_case !== undefined) exactMatch.ignoreCase = entry.ignore_case;
    if (entry.ignore_punctuation !== undefined) exactMatch.ignorePunctuation = entry.ignore_punctuation;
    if (entry.ignore_numbers !== undefined) exactMatch.ignoreNumbers = entry.ignore_numbers;
    if (entry.regexes_to_ignore !== undefined) exactMatch.regexesToIgnore = entry.regexes_to_ignore;
  }
  const kwargs = config.generation_kwargs;
  if (kwargs != null && (kwargs.do_sample === true || (kwargs.temperature ?? 0) > 0)) {
    throw new InvalidRequestError(`${path}: generation_kwargs asks for sampling (do_sample/temperature > 0); Grove's evaluator decodes greedily`, { param: "task" });
  }
  const filters: FilterEnsemble[] = (config.filter_list ?? [{ name: "none", filter: [{ function: "take_first" }] }]).map((ensemble) => ({
    name: ensemble.name,
    steps: ensemble.filter.map((step) => filterStepOf(step, path)),
  }));
  return { metrics, exactMatch, filters };
}

function filterStepOf(step: Record<string, unknown> & { function: string }, path: string): FilterStep {
  switch (step.function) {
    case "regex": {
      const pattern = step.regex_pattern ?? "#### (\\-?[0-9\\.\\,]+)";
      const groupSelect = step.group_select ?? 0;
      const fallback = step.fallback ?? "[invalid]";
      if (typeof pattern !== "string" || !Number.isInteger(groupSelect) || typeof fallback !== "string") throw new InvalidRequestError(`${path}: the regex filter needs a string regex_pattern, an integer group_select and a string fallback`, { param: "task" });
      return { function: "regex", pattern, groupSelect: groupSelect as number, fallback };
    }
    case "map": {
      const mapping = step.mapping_dict ?? {};
      if (mapping === null || typeof mapping !== "object" || Array.isArray(mapping)) throw new InvalidRequestError(`${path}: the map filter needs a mapping_dict`, { param: "task" });
      return { function: "map", mapping: mapping as Record<string, unknown>, defaultValue: step.default_value ?? null };
    }
    case "take_first":
    case "lowercase":
    case "uppercase":
    case "remove_whitespace":
      return { function: step.function };
    default:
      throw new InvalidRequestError(`${path}: filter '${step.function}' is not supported (${SUPPORTED_FILTERS.join(", ")})`, { param: "task" });
  }
}
