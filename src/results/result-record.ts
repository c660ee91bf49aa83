import type { Digest } from "../core/digest.js";
import type { Machine } from "./machine.js";
import type { ResultSamples } from "./uncertainty.js";

/** What a result measures. */
export type ResultKind = "quality" | "cost";

/** One measurement of one model, as stored. */
export interface ResultRecord {
  /** The model measured. */
  modelDigest: Digest;
  kind: ResultKind;
  /**
   * What was measured: `perplexity`, `kl-divergence`, a task's name (`arith-mc`), `bench`.
   * With `taskDigest` it names the measurement.
   */
  task: string;
  /** Digest of what was measured on: the text file, the task file, or for cost the bench settings. */
  taskDigest: string;
  /** Settings that change the number (context, threads, slots, reference model, …), as JSON. */
  settings: Record<string, unknown>;
  /** `node-llama-cpp 3.21.1 / llama.cpp v0.4.0`: results of another engine are not reused. */
  engineVersion: string;
  /**
   * The numbers, by name: `perplexity`, `bitsPerByte`, `klDivergence`, `top1Agreement`, `acc`,
   * `accNorm`, `exactMatch`, `promptTokensPerSecond`, `decodeTokensPerSecond`, `ttftMs`,
   * `aggregateDecodeTokensPerSecond.4`, `peakRssBytes`, … `null` for a number that could not be
   * measured.
   */
  metrics: Record<string, number | null>;
  /** Why a number must not be read as a score: `below_chance`, `missing_logprobs`, … */
  flags: string[];
  /** Free-form details (sample counts, chance level, the reference model). */
  details: Record<string, unknown>;
  /** When it was measured, ISO 8601. */
  createdAt: string;
  /**
   * Standard error of each metric, by name (see `uncertainty.ts`): from per-chunk values for
   * perplexity and KL divergence, per-item results for accuracy, repeated runs for speed. A
   * missing or null entry is unknown (results stored before errors were kept).
   */
  standardErrors?: Record<string, number | null>;
  /** The per-chunk or per-item values the metrics are means of, for paired comparisons; null when not kept. */
  samples?: ResultSamples | null;
  /**
   * The machine a speed or memory (`cost`) result was measured on; null for quality results
   * (they do not depend on it) and for results stored before machines were recorded (an
   * unknown machine, comparable with none).
   */
  machine?: Machine | null;
}

/**
 * The key a result is unique under: rerunning the same measurement replaces it. A cost result's
 * machine is part of it, so that replicas on different machines sharing one database keep one
 * result each.
 */
export type ResultKey = Pick<ResultRecord, "modelDigest" | "task" | "taskDigest" | "settings" | "engineVersion" | "machine">;

/** Filters of {@link ResultStore.list}. */
export interface ResultQuery {
  modelDigests?: readonly Digest[];
  task?: string;
  kind?: ResultKind;
}

/** Where results are kept: `<home>/results.db` or the shared PostgreSQL database. */
export interface ResultBackend {
  put(result: ResultRecord): Promise<void>;
  get(key: ResultKey): Promise<ResultRecord | undefined>;
  list(query: ResultQuery): Promise<ResultRecord[]>;
  close(): Promise<void>;
}
