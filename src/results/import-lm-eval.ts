import { createHash } from "node:crypto";
import type { Digest } from "../core/digest.js";
import { InvalidRequestError } from "../core/errors.js";
import { canonicalJson } from "../core/canonical-json.js";
import type { ResultRecord } from "./result-store.js";

/** The flag every imported result carries: never ranked beside Grove's own measurements. */
export const IMPORTED_FLAG = "imported";

/** Where an imported result came from, kept in `details.source`. */
export interface ResultSource {
  tool: "lm-evaluation-harness";
  version: string | null;
  /** When the other tool ran, ISO 8601 (lm-eval's `date`, a Unix time). */
  date: string | null;
  model: string | null;
  modelArgs: string | null;
  /** The imported file's name and sha256. */
  file: string;
  fileDigest: Digest;
}

/** The source of an imported result, or undefined for Grove's own measurement. */
export function sourceOf(result: ResultRecord): ResultSource | undefined {
  const source = result.details.source;
  return source !== null && typeof source === "object" && (source as { tool?: unknown }).tool !== undefined ? (source as ResultSource) : undefined;
}

/** lm-eval's metric names in Grove's spelling (`acc_norm` → `accNorm`). */
function groveName(metric: string): string {
  return metric.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/**
 * Reads an lm-evaluation-harness results JSON (`results`, `configs`, `versions`, `n-shot`,
 * `n-samples`, `config.model_args`, `date`, `lm_eval_version`) into one quality result per
 * task for `modelDigest`. Metrics `name,filter` become Grove's names (`acc,none` → `acc`; the
 * first filter of a metric plain, later ones `exactMatch,flexible-extract`); `…_stderr` go to
 * `details.stderr`. Each result is flagged `imported`, keyed by the other tool's version as its
 * engine version, and carries its provenance in `details.source`: it is listed, never ranked
 * with Grove's own measurements nor reused for them.
 *
 * @throws InvalidRequestError when the file is not JSON or not an lm-eval results file
 */
export function parseLmEvalResults(bytes: Buffer, file: string, modelDigest: Digest): ResultRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new InvalidRequestError(`${file} is not valid JSON`, { param: "file", cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new InvalidRequestError(`${file} is not an lm-evaluation-harness results file (expected an object)`, { param: "file" });
  const root = value as Record<string, unknown>;
  const results = root.results;
  if (results === null || typeof results !== "object" || Array.isArray(results) || Object.keys(results).length === 0) {
    throw new InvalidRequestError(`${file} has no 'results' object of tasks: not an lm-evaluation-harness results file`, { param: "file" });
  }
  const object = (key: string): Record<string, unknown> => {
    const item = root[key];
    return item !== null && typeof item === "object" && !Array.isArray(item) ? (item as Record<string, unknown>) : {};
  };
  const config = object("config");
  const version = typeof root.lm_eval_version === "string" ? root.lm_eval_version : null;
  const date = typeof root.date === "number" && Number.isFinite(root.date) ? new Date(root.date * 1000).toISOString() : null;
  const source: ResultSource = {
    tool: "lm-evaluation-harness",
    version,
    date,
    model: typeof config.model === "string" ? config.model : null,
    modelArgs: typeof config.model_args === "string" ? config.model_args : config.model_args == null ? null : JSON.stringify(config.model_args),
    file,
    fileDigest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
  };
  const createdAt = new Date().toISOString();
  return Object.entries(results as Record<string, unknown>).map(([task, scores]) => {
    if (scores === null || typeof scores !== "object" || Array.isArray(scores)) throw new InvalidRequestError(`${file}: results.${task} is not an object of metrics`, { param: "file" });
    const metrics: Record<string, number | null> = {};
    const stderr: Record<string, number | null> = {};
    // The first filter of each metric keeps the plain name; its later filters are `name,filter`.
    const names = new Map<string, string>();
    const entries = Object.entries(scores as Record<string, unknown>).filter(([key]) => key !== "alias");
    for (const [key] of entries) {
      const [metric, filter = "none"] = key.split(",", 2) as [string, string?];
      if (metric.endsWith("_stderr")) continue;
      const base = groveName(metric);
      names.set(`${base},${filter}`, [...names.values()].includes(base) ? `${base},${filter}` : base);
    }
    for (const [key, number] of entries) {
      const [metric, filter = "none"] = key.split(",", 2) as [string, string?];
      const isStderr = metric.endsWith("_stderr");
      const base = groveName(isStderr ? metric.slice(0, -"_stderr".length) : metric);
      const name = names.get(`${base},${filter}`) ?? `${base},${filter}`;
      const parsed = typeof number === "number" && Number.isFinite(number) ? number : null;
      if (isStderr) stderr[name] = parsed;
      else metrics[name] = parsed;
    }
    if (Object.keys(metrics).length === 0) throw new InvalidRequestError(`${file}: results.${task} holds no numbers`, { param: "file" });
    const taskConfig = object("configs")[task];
    const nShot = object("n-shot")[task];
    const samples = object("n-samples")[task];
    return {
      modelDigest,
      kind: "quality",
      task,
      // What was measured on is the task's config as lm-eval recorded it (its data are not here).
      taskDigest: `sha256:${createHash("sha256").update(canonicalJson(taskConfig ?? { task, version: object("versions")[task] ?? null })).digest("hex")}`,
      settings: { source: "lm-evaluation-harness", ...(typeof nShot === "number" ? { numFewshot: nShot } : {}) },
      engineVersion: `lm-evaluation-harness ${version ?? "unknown"}`,
      metrics,
      // lm-eval's own standard errors (its `…_stderr`, bootstrapped or analytic) are the result's.
      standardErrors: Object.fromEntries(Object.keys(metrics).map((name) => [name, typeof stderr[name] === "number" ? stderr[name] : null])),
      samples: null,
      machine: null,
      flags: [IMPORTED_FLAG],
      details: { source, stderr, version: object("versions")[task] ?? null, samples: samples ?? null },
      createdAt,
    } satisfies ResultRecord;
  });
}
