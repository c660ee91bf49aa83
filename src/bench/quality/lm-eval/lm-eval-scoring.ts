import type { EvalBackend, LmEvalScoring, Task, TaskDoc, TaskScore } from "../task-format.js";
import { applyFilters, exactMatch } from "./lm-eval-filters.js";

export type { LmEvalScoring } from "../task-format.js";


/** lm-eval's metrics by output type, and Grove's name for each (results store camelCase names). */
export const LM_EVAL_METRICS: Readonly<Record<string, { grove: string; outputTypes: readonly string[] }>> = {
  acc: { grove: "acc", outputTypes: ["multiple_choice", "loglikelihood"] },
  acc_norm: { grove: "accNorm", outputTypes: ["multiple_choice"] },
  acc_bytes: { grove: "accBytes", outputTypes: ["multiple_choice"] },
  exact_match: { grove: "exactMatch", outputTypes: ["multiple_choice", "generate_until"] },
  perplexity: { grove: "perplexity", outputTypes: ["loglikelihood"] },
  word_perplexity: { grove: "wordPerplexity", outputTypes: ["loglikelihood_rolling"] },
  byte_perplexity: { grove: "bytePerplexity", outputTypes: ["loglikelihood_rolling"] },
  bits_per_byte: { grove: "bitsPerByte", outputTypes: ["loglikelihood_rolling"] },
};

/** lm-eval's `DEFAULT_METRIC_REGISTRY`: the metrics of a task without `metric_list`. */
export const DEFAULT_METRICS: Readonly<Record<string, string[]>> = {
  multiple_choice: ["acc", "acc_norm"],
  loglikelihood: ["perplexity", "acc"],
  loglikelihood_rolling: ["word_perplexity", "byte_perplexity", "bits_per_byte"],
  generate_until: ["exact_match"],
};

/** numpy's argmax: the first index of the largest value. */
function argmax(values: readonly number[]): number {
  let best = 0;
  for (let index = 1; index < values.length; index++) if (values[index]! > values[best]!) best = index;
  return best;
}

/** Python's `len(str)`: code points, not UTF-16 units. */
export function codePointLength(text: string): number {
  return [...text].length;
}

/** lm-eval's `mean_stderr`: the sample standard deviation over √n. */
function meanStderr(values: readonly number[]): number | null {
  const n = values.length;
  if (n < 2) return null;
  const mean = values.reduce((sum, value) => sum + value, 0) / n;
  const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (n - 1);
  return Math.sqrt(variance / n);
}

/**
 * Scores a task read from an lm-eval YAML config by lm-eval's own definitions
 * (`ConfigurableTask.process_results` and the aggregations of `api/metrics.py`):
 * - multiple_choice: `acc` = the choice of highest log-likelihood is the gold one; `acc_norm` =
 *   the same with each log-likelihood divided by the choice's length in characters (the choice
 *   alone, without the target delimiter); `acc_bytes` = divided by its UTF-8 bytes;
 *   `exact_match` = greedy decoding reproduces the gold continuation. Each a mean over documents.
 * - loglikelihood: `acc` = share of greedy continuations; `perplexity` = exp(−mean log-likelihood
 *   per document).
 * - loglikelihood_rolling: `word_perplexity` = exp(−Σ ll / Σ words), `byte_perplexity` =
 *   exp(−Σ ll / Σ bytes), `bits_per_byte` = −Σ ll / Σ bytes / ln 2.
 * - generate_until: each filter pipeline on the greedy generation, then `exact_match` with its
 *   options; the first pipeline's score is `exactMatch`, later ones `exactMatch,<filter name>`.
 */
export async function scoreLmEvalTask(task: Task, scoring: LmEvalScoring, backend: EvalBackend): Promise<TaskScore> {
  const wanted = new Set(scoring.metrics);
  const perDoc: Record<string, number[]> = {};
  const push = (name: string, value: number): void => void (perDoc[name] ??= []).push(value);
  const metrics: Record<string, number | null> = {};
  const flags: string[] = [];
  const details: Record<string, unknown> = { type: task.type, docs: task.docs.length, definitions: "lm-evaluation-harness" };
  switch (task.type) {
    case "multiple_choice": {
      const docs = task.docs as Extract<TaskDoc, { type: "multiple_choice" }>[];
      const answers = await backend.loglikelihood(docs.flatMap((doc) => doc.choices.map((choice) => ({ context: doc.context, continuation: (doc.delimiter ?? "") + choice }))));
      let at = 0;
      let chance = 0;
      for (const doc of docs) {
        const scored = answers.slice(at, at + doc.choices.length);
        at += doc.choices.length;
        const lls = scored.map((answer) => answer.logLikelihood);
        push("acc", argmax(lls) === doc.answer ? 1 : 0);
        push("acc_norm", argmax(lls.map((ll, index) => ll / codePointLength(doc.choices[index]!))) === doc.answer ? 1 : 0);
        push("acc_bytes", argmax(lls.map((ll, index) => ll / Buffer.byteLength(doc.choices[index]!, "utf8"))) === doc.answer ? 1 : 0);
        push("exact_match", scored[doc.answer]!.isGreedy ? 1 : 0);
        chance += 1 / doc.choices.length;
      }
      const n = docs.length;
      const acc = perDoc.acc!.reduce((sum, value) => sum + value, 0) / n;
      const chanceLevel = chance / n;
      if (acc <= chanceLevel + 2 * Math.sqrt((chanceLevel * (1 - chanceLevel)) / n)) flags.push("not_above_chance");
      details.chance = chanceLevel;
      break;
    }
    case "loglikelihood": {
      const docs = task.docs as Extract<TaskDoc, { type: "loglikelihood" }>[];
      const answers = await backend.loglikelihood(docs.map((doc) => ({ context: doc.context, continuation: doc.continuation })));
      for (const answer of answers) {
        push("acc", answer.isGreedy ? 1 : 0);
        push("perplexity", answer.logLikelihood);
      }
      break;
    }
    case "loglikelihood_rolling": {
      const docs = task.docs as Extract<TaskDoc, { type: "loglikelihood_rolling" }>[];
      const answers = await backend.loglikelihood(docs.map((doc) => ({ context: "", continuation: doc.text })));
      const total = answers.reduce((sum, answer) => sum + answer.logLikelihood, 0);
      // lm-eval's count_words is len(re.split(r"\s+", text)); count_bytes the UTF-8 length.
      const words = docs.reduce((sum, doc) => sum + doc.text.split(/\s+/).length, 0);
      const bytes = docs.reduce((sum, doc) => sum + Buffer.byteLength(doc.text, "utf8"), 0);
      if (wanted.has("word_perplexity")) metrics.wordPerplexity = Math.exp(-total / words);
      if (wanted.has("byte_perplexity")) metrics.bytePerplexity = Math.exp(-total / bytes);
      if (wanted.has("bits_per_byte")) metrics.bitsPerByte = -total / bytes / Math.LN2;
      Object.assign(details, { words, bytes, logLikelihood: total });
      return { metrics, flags, details };
    }
    case "generate_until": {
      const docs = task.docs as Extract<TaskDoc, { type: "generate_until" }>[];
      const texts = await backend.generate(docs.map((doc) => ({ context: doc.context, until: doc.until ?? [], maxTokens: doc.max_tokens ?? 256 })));
      const stderr: Record<string, number | null> = {};
      for (const [position, ensemble] of scoring.filters.entries()) {
        const scores = texts.map((text, index) => (exactMatch(String(applyFilters(ensemble.steps, [text])), docs[index]!.answer, scoring.exactMatch) ? 1 : 0));
        const name = position === 0 ? "exactMatch" : `exactMatch,${ensemble.name}`;
        metrics[name] = scores.reduce((sum: number, value) => sum + value, 0) / scores.length;
        stderr[name] = meanStderr(scores);
      }
      Object.assign(details, { filters: scoring.filters.map((ensemble) => ensemble.name), stderr, samples: texts.slice(0, 3) });
      return { metrics, flags, details };
    }
  }
  const stderr: Record<string, number | null> = {};
  for (const name of scoring.metrics) {
    const values = perDoc[name];
    if (values === undefined) continue;
    const grove = LM_EVAL_METRICS[name]!.grove;
    const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
    // lm-eval's `perplexity` aggregation: exp(−mean log-likelihood); the rest are means.
    metrics[grove] = name === "perplexity" ? Math.exp(-mean) : mean;
    if (name !== "perplexity") stderr[grove] = meanStderr(values);
  }
  details.stderr = stderr;
  return { metrics, flags, details };
}
