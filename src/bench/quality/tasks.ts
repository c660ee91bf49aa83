import { basename, extname } from "node:path";
import type { z } from "zod";
import { digestOfBytes } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { jsonLines } from "../../core/json-error.js";
import { readBoundedFile } from "../../store/bounded-file.js";
import { scoreLmEvalTask } from "./lm-eval/lm-eval-scoring.js";
import { DOC, type GENERATE_UNTIL, type LOGLIKELIHOOD, type MULTIPLE_CHOICE, type EvalBackend, type Task, type TaskDoc, type TaskScore } from "./task-format.js";

export type { EvalBackend, Task, TaskDoc, TaskScore, TaskType } from "./task-format.js";

/** The largest task file read. */
export const MAX_TASK_BYTES = 256 * 1024 * 1024;

/**
 * Reads a task: JSONL, one document per line, all of one type —
 * `{"type":"multiple_choice","context","choices":[…],"answer":i}` (acc and acc_norm from the
 * log-likelihood of each choice), `{"type":"loglikelihood","context","continuation"}` (the
 * continuation's log-likelihood, and whether greedy decoding produces it),
 * `{"type":"loglikelihood_rolling","text"}` (lm-eval's word and byte perplexity, the text scored
 * after BOS in one window) or `{"type":"generate_until","context","answer","until"?,"max_tokens"?}` (greedy generation, exact
 * match after {@link normalizeAnswer}).
 *
 * @throws InvalidRequestError naming the file and line of the first bad document
 */
export async function readTask(path: string, name?: string): Promise<Task> {
  const bytes = await readBoundedFile(path, { limit: MAX_TASK_BYTES, what: "the task file", param: "task" });
  return parseTask(bytes, path, name ?? basename(path, extname(path)));
}

/**
 * Parses a task's bytes (see {@link readTask}); `source` names the input in errors, which never
 * quote its text.
 * @throws InvalidRequestError naming the line of the first bad document
 */
export function parseTask(bytes: Buffer, source: string, name: string): Task {
  const docs: TaskDoc[] = [];
  for (const { value, where } of jsonLines(bytes.toString("utf8"), source, "task")) {
    const parsed = DOC.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidRequestError(`${where}: ${issue?.path.length ? `${issue.path.join(".")}: ` : ""}${issue?.message ?? "invalid document"}`, { param: "task" });
    }
    const doc = parsed.data;
    if (doc.type === "multiple_choice" && doc.answer >= doc.choices.length) {
      throw new InvalidRequestError(`${where}: answer ${doc.answer} is not an index of its ${doc.choices.length} choices`, { param: "task" });
    }
    if (docs.length > 0 && docs[0]!.type !== doc.type) throw new InvalidRequestError(`${where}: a ${doc.type} document in a ${docs[0]!.type} task; one type per file`, { param: "task" });
    docs.push(doc);
  }
  if (docs.length === 0) throw new InvalidRequestError(`The task file ${source} has no documents`, { param: "task" });
  return { name, type: docs[0]!.type, docs, digest: digestOfBytes(bytes) };
}

/** How a generated answer and the expected one are compared: trimmed, lower-cased, runs of whitespace as one space, a final period dropped. */
export function normalizeAnswer(text: string): string {
  return text.trim().toLowerCase().replace(/\s+/g, " ").replace(/\.$/, "");
}

/**
 * Scores a task as lm-evaluation-harness does: multiple choice by the highest log-likelihood
 * (acc) and by the highest log-likelihood per character of the choice (acc_norm);
 * loglikelihood by the share of continuations greedy decoding reproduces (and their
 * perplexity); generate_until by exact match. An accuracy not clearly above chance is flagged.
 */
export async function scoreTask(task: Task, backend: EvalBackend): Promise<TaskScore> {
  if (task.lmEval !== undefined) return scoreLmEvalTask(task, task.lmEval, backend);
  switch (task.type) {
    case "multiple_choice": {
      const docs = task.docs as z.infer<typeof MULTIPLE_CHOICE>[];
      const requests = docs.flatMap((doc) => doc.choices.map((choice) => ({ context: doc.context, continuation: (doc.delimiter ?? "") + choice })));
      const answers = await backend.loglikelihood(requests);
      let at = 0;
      let correct = 0;
      let correctNorm = 0;
      let chance = 0;
      const items = { acc: [] as number[], accNorm: [] as number[] };
      for (const doc of docs) {
        const scores = answers.slice(at, at + doc.choices.length);
        at += doc.choices.length;
        const best = argmaxOf(scores.map((answer) => answer.logLikelihood));
        // lm-eval divides by Python's len(choice): code points, not UTF-16 units.
        const bestNorm = argmaxOf(scores.map((answer, index) => answer.logLikelihood / [...doc.choices[index]!].length));
        if (best === doc.answer) correct++;
        if (bestNorm === doc.answer) correctNorm++;
        items.acc.push(best === doc.answer ? 1 : 0);
        items.accNorm.push(bestNorm === doc.answer ? 1 : 0);
        chance += 1 / doc.choices.length;
      }
      const n = docs.length;
      const acc = correct / n;
      const chanceLevel = chance / n;
      const margin = 2 * Math.sqrt((chanceLevel * (1 - chanceLevel)) / n);
      const flags = acc <= chanceLevel + margin ? ["not_above_chance"] : [];
      return { metrics: { acc, accNorm: correctNorm / n }, flags, details: { type: task.type, docs: n, chance: chanceLevel, accStderr: Math.sqrt((acc * (1 - acc)) / n) }, items };
    }
    case "loglikelihood": {
      const docs = task.docs as z.infer<typeof LOGLIKELIHOOD>[];
      const answers = await backend.loglikelihood(docs.map((doc) => ({ context: doc.context, continuation: doc.continuation })));
      const tokens = answers.reduce((sum, answer) => sum + answer.tokens, 0);
      const total = answers.reduce((sum, answer) => sum + answer.logLikelihood, 0);
      return {
        metrics: { accGreedy: answers.filter((answer) => answer.isGreedy).length / answers.length, logLikelihood: total / answers.length, perplexity: Math.exp(-total / tokens) },
        flags: [],
        details: { type: task.type, docs: answers.length, tokens },
        items: { accGreedy: answers.map((answer) => (answer.isGreedy ? 1 : 0)) },
      };
    }
    case "loglikelihood_rolling": {
      // Grove's own rule for these is lm-eval's: the same code scores both.
      return scoreLmEvalTask(task, { metrics: ["word_perplexity", "byte_perplexity", "bits_per_byte"], exactMatch: { ignoreCase: false, ignorePunctuation: false, ignoreNumbers: false, regexesToIgnore: [] }, filters: [] }, backend);
    }
    case "generate_until": {
      const docs = task.docs as z.infer<typeof GENERATE_UNTIL>[];
      const texts = await backend.generate(docs.map((doc) => ({ context: doc.context, until: doc.until ?? ["\n"], maxTokens: doc.max_tokens ?? 32 })));
      const exactMatch = texts.map((text, index) => (normalizeAnswer(text) === normalizeAnswer(docs[index]!.answer) ? 1 : 0));
      const matches = exactMatch.reduce((sum: number, match) => sum + match, 0);
      return { items: { exactMatch }, metrics: { exactMatch: matches / docs.length }, flags: [], details: { type: task.type, docs: docs.length, normalization: "trim, lower-case, collapse whitespace, drop a final period", samples: texts.slice(0, 3) } };
    }
  }
}

function argmaxOf(values: readonly number[]): number {
  let best = 0;
  for (let index = 1; index < values.length; index++) if (values[index]! > values[best]!) best = index;
  return best;
}
