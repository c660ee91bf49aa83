import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { digestOfBytes, type Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { CORPUS } from "../../forge/generate/corpus.js";
import { quantizerVersion } from "../../forge/quantize/quantize-model.js";
import { readBoundedFile } from "../../store/bounded-file.js";
import type { ModelStore } from "../../store/model-store.js";
import type { TaskEvaluator } from "../../results/migration/migrate-alias.js";
import type { ResultRecord, ResultStore } from "../../results/result-store.js";
import { standardErrorsFromSamples, type ResultSamples } from "../../results/uncertainty.js";
import { localBackend } from "./backends.js";
import type { KlDivergenceResult, PerplexityResult } from "./measure.js";
import { ChatTemplate } from "../../engine/chat-template.js";
import { isLmEvalConfig, readLmEvalTask } from "./lm-eval/read-lm-eval-task.js";
import { runEvalWorker } from "./run-eval-worker.js";
import { readTask, scoreTask, type Task } from "./tasks.js";

/** The built-in measurements; anything else is a task file. */
export const BUILT_IN_TASKS = ["perplexity", "kl-divergence"] as const;

/** What `grove eval` measures on one model. */
export interface EvaluateOptions {
  /** `perplexity`, `kl-divergence`, the path of a task file (JSONL) or of an lm-evaluation-harness task config (YAML). */
  task: string;
  /**
   * lm-eval configs named by a request: the directory every file the config names must lie in
   * (the server's `--data-dir`); absent from the CLI, which reads any local file.
   */
  taskRoot?: string;
  /** lm-eval configs: override `num_fewshot` (lm-eval's --num_fewshot). */
  numFewshot?: number;
  /** lm-eval configs: render prompts with the model's chat template (lm-eval's --apply_chat_template). */
  applyChatTemplate?: boolean;
  /** lm-eval configs with a chat template: few-shot examples as turns. @default true with applyChatTemplate, as lm-eval */
  fewshotAsMultiturn?: boolean;
  /** The text for perplexity and KL divergence. @default Grove's built-in corpus */
  text?: string;
  /** The model KL divergence is measured against. @default the model's parent */
  reference?: string;
  /** Tokens per chunk (perplexity, KL) or the context of task requests. @default 512, or the model's context if smaller */
  contextSize?: number;
  /** Logical batch; `batch / ctx` chunks are evaluated together (llama-perplexity's -b). @default 2048 */
  batchSize?: number;
  /** @default every core */
  threads?: number;
  /** The task's name, for a task file. @default its file name */
  taskName?: string;
  /** Measure even when a stored result has the same key. */
  force?: boolean;
  onProgress?: (done: number, total: number, perplexity?: number) => void;
  signal?: AbortSignal;
}

/**
 * {@link evaluateModel} as alias migration takes it (`TaskEvaluator`): one model, one task, these
 * settings, the stored result.
 */
export function taskEvaluator(store: ModelStore, results: ResultStore, settings: Omit<EvaluateOptions, "task"> = {}): TaskEvaluator {
  return async (model, task) => (await evaluateModel(store, results, model, { ...settings, task })).result;
}

/** A stored result and whether it was measured now. */
export interface EvaluateOutcome {
  result: ResultRecord;
  reused: boolean;
}

/**
 * Measures one model of the store and stores the result (or returns the stored one with the
 * same model, task, task digest, settings and engine version, unless `force`): perplexity and
 * bits per byte over a text (llama-perplexity's method), KL divergence and top-1 agreement
 * against a reference (the parent by default), or a task file's scores. A result not clearly
 * above chance is stored flagged, never as a score.
 *
 * @throws InvalidRequestError for an unknown task, a missing reference, a text too short;
 *   ModelNotFoundError for an unknown model
 */
export async function evaluateModel(store: ModelStore, results: ResultStore, ref: string, options: EvaluateOptions): Promise<EvaluateOutcome> {
  const target = await store.show(ref);
  if (target.parents.some((edge) => edge.relation === "adapter")) {
    throw new InvalidRequestError(`${ref} is a LoRA adapter fork; Grove's evaluator loads plain models — evaluate it through a server with --endpoint`, { param: "model" });
  }
  const contextSize = options.contextSize ?? Math.min(512, target.model.contextLength || 512);
  if (!Number.isInteger(contextSize) || contextSize < 8 || contextSize > 131_072) throw new InvalidRequestError(`ctx must be an integer from 8 to 131072, got ${contextSize}`, { param: "ctx" });
  const batchSize = options.batchSize ?? 2048;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidRequestError(`batch must be a positive integer, got ${batchSize}`, { param: "batch" });
  const threads = options.threads ?? availableParallelism();
  const engineVersion = quantizerVersion();
  const run = { ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }), ...(options.signal === undefined ? {} : { signal: options.signal }) };
  const modelDigest = target.model.digest;

  const reuse = async (task: string, taskDigest: string, settings: Record<string, unknown>): Promise<EvaluateOutcome | undefined> => {
    if (options.force) return undefined;
    const stored = await results.get({ modelDigest, task, taskDigest, settings, engineVersion, machine: null });
    return stored === undefined ? undefined : { result: stored, reused: true };
  };
  // Every score is stored with its standard error, from the per-chunk or per-item values kept beside it.
  const save = async (record: Omit<ResultRecord, "modelDigest" | "engineVersion" | "createdAt" | "kind" | "standardErrors" | "machine">): Promise<EvaluateOutcome> => {
    const standardErrors = record.samples == null ? {} : standardErrorsFromSamples(record.metrics, record.samples);
    const result: ResultRecord = { ...record, standardErrors, machine: null, kind: "quality", modelDigest, engineVersion, createdAt: new Date().toISOString() };
    await results.put(result);
    return { result, reused: false };
  };

  if (options.task === "perplexity" || options.task === "kl-divergence") {
    const text = await readText(options.text);
    const directory = await mkdtemp(join(tmpdir(), "grove-eval-text-"));
    try {
      const textFile = join(directory, "text.txt");
      await writeFile(textFile, text.bytes);
      if (options.task === "perplexity") {
        const settings = { ctx: contextSize, batch: batchSize };
        const stored = await reuse("perplexity", text.digest, settings);
        if (stored !== undefined) return stored;
        const measured = await runEvalWorker<PerplexityResult>({ op: "perplexity", model: target.path, textFile, contextSize, batchSize, threads }, run);
        return save({
          task: "perplexity",
          taskDigest: text.digest,
          settings,
          metrics: { perplexity: measured.perplexity, bitsPerByte: measured.bitsPerByte, perplexityError: measured.perplexityError },
          samples: { unit: "chunk", values: { nll: measured.chunkNll } },
          flags: [],
          details: { text: text.label, tokens: measured.tokens, scoredTokens: measured.scoredTokens, chunks: measured.chunks, tokensPerSecond: measured.tokensPerSecond, threads },
        });
      }
      const referenceDigest = await referenceOf(store, target.parents, options.reference, ref);
      const settings = { ctx: contextSize, batch: batchSize, reference: referenceDigest };
      const stored = await reuse("kl-divergence", text.digest, settings);
      if (stored !== undefined) return stored;
      const reference = await store.show(referenceDigest);
      const measured = await runEvalWorker<KlDivergenceResult>({ op: "kl-divergence", model: target.path, reference: reference.path, textFile, contextSize, batchSize, threads }, run);
      return save({
        task: "kl-divergence",
        taskDigest: text.digest,
        settings,
        metrics: { klDivergence: measured.klDivergence, top1Agreement: measured.top1Agreement, perplexity: measured.perplexity, referencePerplexity: measured.referencePerplexity },
        samples: { unit: "chunk", values: { klDivergence: measured.chunkKl, top1Agreement: measured.chunkTop1, nll: measured.chunkNll } },
        flags: [],
        details: { text: text.label, reference: { digest: referenceDigest, names: reference.names }, scoredTokens: measured.scoredTokens, chunks: measured.chunks },
      });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }

  const lmEval = isLmEvalConfig(options.task);
  if (!lmEval && !/\.jsonl?$/i.test(options.task)) {
    throw new InvalidRequestError(`Unknown task '${options.task}': use ${BUILT_IN_TASKS.join(" or ")}, the path of a task file (.jsonl) or of an lm-evaluation-harness task config (.yaml)`, { param: "task" });
  }
  const prompt = lmEvalPromptOptions(options, target.model.chatTemplate);
  let task: Task;
  if (lmEval) {
    task = await readLmEvalTask(options.task, { ...prompt.read, ...(options.taskRoot === undefined ? {} : { root: options.taskRoot }) });
    if (options.taskName !== undefined) task.name = options.taskName;
  } else {
    if (prompt.settings.applyChatTemplate || options.numFewshot !== undefined) throw new InvalidRequestError("--apply-chat-template, --fewshot-as-multiturn and --num-fewshot apply to lm-eval task configs (.yaml)", { param: "task" });
    task = await readTask(options.task, options.taskName);
  }
  const taskContext = options.contextSize ?? Math.min(2048, target.model.contextLength || 2048);
  const settings = { ctx: taskContext, ...(lmEval ? prompt.settings : {}) };
  const stored = await reuse(task.name, task.digest, settings);
  if (stored !== undefined) return stored;
  const score = await scoreTask(task, localBackend({ model: target.path, contextSize: taskContext, threads, ...run }));
  const samples: ResultSamples | null = score.items === undefined ? null : { unit: "item", values: score.items };
  return save({ task: task.name, taskDigest: task.digest, settings, metrics: score.metrics, samples, flags: score.flags, details: { ...score.details, file: basename(options.task) } });
}

/**
 * lm-eval's prompt flags checked as its `EvaluatorConfig` checks them (few-shot as multi-turn
 * needs the chat template and is its default), and the settings a result is keyed by.
 */
function lmEvalPromptOptions(options: EvaluateOptions, chatTemplate: string | undefined): { read: Parameters<typeof readLmEvalTask>[1]; settings: Record<string, unknown> } {
  const apply = options.applyChatTemplate === true;
  if (options.fewshotAsMultiturn === true && !apply) throw new InvalidRequestError("--fewshot-as-multiturn needs --apply-chat-template", { param: "fewshot_as_multiturn" });
  const multiturn = apply && options.fewshotAsMultiturn !== false;
  const settings: Record<string, unknown> = { applyChatTemplate: apply, fewshotAsMultiturn: multiturn, ...(options.numFewshot === undefined ? {} : { numFewshot: options.numFewshot }) };
  if (!apply) return { read: options.numFewshot === undefined ? {} : { numFewshot: options.numFewshot }, settings };
  // Special tokens render empty: the evaluator's tokenization adds BOS itself, as for every prompt.
  const template = new ChatTemplate(chatTemplate, { bosToken: "", eosToken: "" });
  const render = (messages: { role: string; content: string }[]): string => template.render(messages as Parameters<ChatTemplate["render"]>[0], { addGenerationPrompt: true });
  return { read: { chat: { render, multiturn }, ...(options.numFewshot === undefined ? {} : { numFewshot: options.numFewshot }) }, settings };
}

/** The largest text perplexity and KL divergence are measured on. */
const MAX_TEXT_BYTES = 256 * 1024 * 1024;

async function readText(path: string | undefined): Promise<{ bytes: Buffer; digest: Digest; label: string }> {
  if (path === undefined) {
    const bytes = Buffer.from(CORPUS, "utf8");
    return { bytes, digest: digestOfBytes(bytes), label: "grove corpus (built in)" };
  }
  const bytes = await readBoundedFile(path, { limit: MAX_TEXT_BYTES, what: "the text", param: "text" });
  if (bytes.length === 0) throw new InvalidRequestError(`The text ${path} is empty`, { param: "text" });
  return { bytes, digest: digestOfBytes(bytes), label: basename(path) };
}

async function referenceOf(store: ModelStore, parents: readonly { parent: Digest; relation: string }[], reference: string | undefined, ref: string): Promise<Digest> {
  if (reference !== undefined) return (await store.resolve(reference)).digest;
  const parent = parents.find((edge) => edge.relation !== "adapter");
  if (parent === undefined) throw new InvalidRequestError(`${ref} has no parent to compare with; name one with --reference REF`, { param: "reference" });
  return parent.parent;
}
