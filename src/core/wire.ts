/**
 * The wire contract: the JSON shapes Grove's admin API (`/api/...`) answers with, declared once.
 * The store, results and forge modules re-export these types, and the web app imports them
 * type-only (`import type … from "../../../src/core/wire.js"`), so a field added on the server
 * is a field the page can read, and a field renamed breaks the web build instead of a page.
 *
 * Types only, and no imports: the web app's compiler (DOM, no Node types) reads this file too.
 * Digests are `sha256:` strings; times are ISO 8601 strings.
 */

/** A content digest, `sha256:` and 64 hex digits (core/digest.ts computes them). */
export type Digest = `sha256:${string}`;

// The store (src/store/registry.ts, model-store.ts): `GET /api/models`, `/api/models/:ref`, `/api/tree`.

/**
 * How a fork derives from its parent: the Hugging Face model-tree vocabulary, and `config` — the
 * parent's weights with new defaults (system prompt, parameters, conversation prefix: an Ollama
 * Modelfile), a fork without a file of its own.
 */
export type Relation = "finetune" | "adapter" | "quantized" | "merge" | "config";

/** How a fork was made: enough to make it again. */
export interface Recipe {
  /** The tool, e.g. `grove-forge` or `llama-quantize`. */
  tool: string;
  /** The tool's version. */
  toolVersion: string;
  /** The tool's parameters, as JSON. */
  parameters: Record<string, unknown>;
  /** Digests of every input: parent models, adapters, training data. */
  inputs: Digest[];
}

/** One model: a GGUF file in the store, with what Grove's validator read from it. */
export interface ModelRecord {
  digest: Digest;
  /** File size in bytes. */
  size: number;
  /** `general.architecture`, e.g. `llama`. */
  architecture: string;
  /** Total elements over all tensors. */
  parameterCount: number;
  /** The tensor type holding the most parameters, e.g. `F16` or `Q8_0`. */
  quantization: string;
  /** The training context, in tokens. */
  contextLength: number;
  /** Tokens in the vocabulary. */
  vocabularySize: number;
  /** `tokenizer.chat_template`, when the file has one. */
  chatTemplate?: string;
  /** The license identifier (`general.license` or the model card's). */
  license?: string;
  /** Model card fields (`general.*` strings, hub card metadata), as JSON. */
  card: Record<string, unknown>;
  /** When the model entered the registry, ISO 8601. */
  createdAt: string;
}

/** One lineage edge: `child` derives from `parent`. A merge has one edge per parent. */
export interface LineageEdge {
  child: Digest;
  parent: Digest;
  relation: Relation;
  /** How the child was made, when known. */
  recipe: Recipe | null;
}

/**
 * A model with its names, as `grove ls` shows it. `local` is false when the registry is shared
 * (`--database`) and the model's file is on another replica only: it is listed but not served here.
 */
export type ModelListing = ModelRecord & { names: string[]; local: boolean };

/** Everything about one model, as `grove show` shows it. */
export interface ModelDetails {
  model: ModelRecord;
  names: string[];
  /** The blob's path. */
  path: string;
  /** Edges to its parents, with relation and recipe. */
  parents: LineageEdge[];
  /** Edges to its direct forks. */
  children: LineageEdge[];
}

/** One node of a fork tree. A merge appears under each of its parents. */
export interface TreeNode {
  digest: Digest;
  names: string[];
  /** How it derives from the node above; `null` at a root. */
  relation: Relation | null;
  size: number;
  quantization: string;
  children: TreeNode[];
}

// Results (src/results/): `GET /api/results`, `/api/leaderboard`, `/api/front`.

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
   * Standard error of each metric, by name (see `results/uncertainty.ts`): from per-chunk values
   * for perplexity and KL divergence, per-item results for accuracy, repeated runs for speed. A
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
 * The machine a speed or memory result was measured on. Results on different machines are never
 * ranked together; a result without one is on an unknown machine, which matches no other.
 */
export interface Machine {
  /** `os.cpus()[0].model`. */
  cpu: string;
  /** Cores the process may use. */
  cores: number;
  /** Total memory, GiB (one decimal). */
  memoryGib: number;
  /** The GPU's model, where the NVIDIA driver names one; null for none seen. */
  gpu: string | null;
  /** sha256 of cpu, cores, memory and GPU (first 16 hex digits): the key results are compared on. */
  fingerprint: string;
}

/** What a result was measured over, unit by unit: the values whose mean gives its metrics. */
export interface ResultSamples {
  /** `chunk` for perplexity and KL divergence (one value per chunk of the text), `item` for task documents. */
  unit: "chunk" | "item";
  /**
   * Per-unit values by name: `nll` (mean negative log-likelihood of each chunk's scored tokens,
   * nats), `klDivergence`, `top1Agreement`, and for tasks `acc`, `accNorm`, `exactMatch`,
   * `accGreedy` (1 or 0 per item).
   */
  values: Record<string, number[]>;
}

/** The comparison of one metric between two results (see `results/uncertainty.ts`). */
export interface Comparison {
  metric: string;
  /** b − a on the metric's scale. */
  difference: number;
  /** Standard error of the difference on the scale it was tested on (the mean NLL for perplexity, else the metric's own); null when unknown. */
  standardError: number | null;
  /** |difference| / standard error on the tested scale; null when unknown. */
  z: number | null;
  /** Per-chunk or per-item differences were used; else the two errors were combined. */
  paired: boolean;
  /** Units the paired test ran over; null when unpaired. */
  units: number | null;
  /** |z| > 1.96; null when the error is unknown. */
  significant: boolean | null;
}



/** A task that has results, for the leaderboard without `--task`. */
export interface TaskSummary {
  task: string;
  kind: ResultRecord["kind"];
  /** Models of the store (or tree) with a result on it. */
  models: number;
  results: number;
  /** Metric names its results hold. */
  metrics: string[];
}

/** One model's row. */
export interface LeaderboardRow {
  /** 1 for the best; equal values share a rank; null for a flagged or unmeasured result. */
  rank: number | null;
  digest: Digest;
  names: string[];
  quantization: string;
  /** File size in bytes. */
  size: number;
  /** The value of the ranked metric; null when flagged or not measured. */
  value: number | null;
  /** Standard error of `value`; null when unknown (results stored before errors were kept). */
  standardError: number | null;
  /**
   * The ranked models this one is not distinguishable from (every difference within noise, see
   * `uncertainty.ts`), by digest; empty for an unranked row.
   */
  withinNoiseOf: Digest[];
  /** This row against the one ranked just above it (b − a = this − above); null for the first or an unranked row. */
  againstAbove: Comparison | null;
  /** Why this result is not ranked with the others (another text, settings or machine); null when ranked or flagged. */
  apart: string | null;
  /** The machine of a cost result; null for quality or unknown. */
  machine: Machine | null;
  /** Every number of the result (primary and secondary). */
  metrics: Record<string, number | null>;
  /** Standard errors of those numbers (null where unknown). */
  standardErrors: Record<string, number | null>;
  /** Why it is not ranked: the result's flags (`below_chance`, …) or `metric_not_measured`. */
  flags: string[];
  /** The settings of the result shown: the newest of this model on this task. */
  settings: Record<string, unknown>;
  taskDigest: string;
  engineVersion: string;
  createdAt: string;
  /** Results of this model on this task with other settings (older; not shown). */
  olderResults: number;
  /** KL divergence to a parent, where measured (the newest against a parent). */
  klDivergence: { value: number | null; standardError: number | null; top1Agreement: number | null; reference: string | null; createdAt: string } | null;
  /** The newest `grove bench` result of the model, this machine's where one exists, with its machine. */
  cost: {
    decodeTokensPerSecond: number | null;
    decodeStandardError: number | null;
    peakRssBytes: number | null;
    settings: Record<string, unknown>;
    machine: Machine | null;
    createdAt: string;
  } | null;
}

/** What `grove leaderboard --task` prints and `GET /api/leaderboard?task=` returns. */
export interface LeaderboardResult {
  task: string;
  /** `quality`, or `cost` for `bench`. */
  kind: ResultRecord["kind"];
  /** The metric ranked by, and which way is better. */
  metric: { name: string; higherIsBetter: boolean };
  tree: string | null;
  /** Ranked rows best first, then flagged, unmeasured or not comparable ones. */
  rows: LeaderboardRow[];
  /** What the ranked results were measured on: the task digest, settings and (cost) machine. */
  measuredOn: { taskDigest: string; settings: Record<string, unknown>; machine: Machine | null };
  /** The rule differences are judged by. */
  significance: string;
  notes: string[];
}

/** What a front weighs quality against. `size` (the file's bytes) needs no `grove bench`. */
export type FrontCost = "size" | "peakRssBytes" | "decodeTokensPerSecond";

/** A model placed on the chart. */
export interface FrontModel {
  digest: Digest;
  names: string[];
  quantization: string;
  quality: number;
  /** Standard error of the quality; null when unknown. */
  qualityError: number | null;
  cost: number;
  onFront: boolean;
  /**
   * The models that dominate it (as good or better on both axes, strictly on one); empty on the
   * front. `qualityWithinNoise`: the quality difference is within noise (true), significant
   * (false) or cannot be judged (null).
   */
  dominatedBy: { digest: Digest; names: string[]; qualityWithinNoise: boolean | null }[];
  /** Dominated only by models whose quality is within noise of its own: not clearly worse. */
  dominatedWithinNoise: boolean;
}

/** What `grove front` prints and `GET /api/front` returns. */
export interface FrontResult {
  task: string;
  quality: { metric: string; higherIsBetter: boolean };
  cost: { metric: FrontCost; higherIsBetter: boolean };
  /** On the front, best cost first. */
  front: FrontModel[];
  /** Dominated, best quality first. */
  dominated: FrontModel[];
  /** Models with a result on the task that cannot be placed, and why (flagged, not measured, another text or machine). */
  unplaced: { digest: Digest; names: string[]; reason: string }[];
  /** The machine the costs were measured on (speed and memory costs); null for size. */
  machine: Machine | null;
  /** The rule quality differences are judged by. */
  significance: string;
  notes: string[];
}

// Forge jobs (src/forge/jobs/): `GET /api/jobs`, `/api/jobs/:id`.

/** What a forge job makes. */
export type JobKind = "finetune" | "quantize" | "merge";

/** Where a job stands. `failed` and `cancelled` jobs that kept a checkpoint can be resumed. */
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** One point of a training curve. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  validationLoss: number | null;
  learningRate: number;
  tokensPerSecond: number;
  durationMs: number;
}

/** A forge job as stored in `<home>/jobs/<id>/job.json`. */
export interface JobRecord {
  /** `job-` and 12 hex digits. */
  id: string;
  kind: JobKind;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  /** The model the job starts from (digest), and its name as given. */
  source: { digest: string; ref: string };
  /** The job's parameters as given (type, epochs, learning rate, …). */
  parameters: Record<string, unknown>;
  /** Progress in [0, 1] and a one-line description. */
  progress: { fraction: number; message: string };
  /** Fine-tunes: one record per finished epoch, and the loss of every step (train and validation). */
  epochs?: EpochRecord[];
  steps?: { epoch: number; step: number; loss: number; validation: boolean }[];
  /** The epoch of the last checkpoint, for resume: finished, unless `checkpointStep` is set. */
  checkpointEpoch?: number;
  /**
   * Set when the checkpoint was taken mid-epoch: training windows of `checkpointEpoch` it holds
   * (a resume trains the rest of that epoch); absent when `checkpointEpoch` is complete.
   */
  checkpointStep?: number;
  /** What it made, when it succeeded. */
  result?: { digest: string; name?: string };
  /** Fine-tunes: tensors the trainer left exactly as the parent had them (see repackageTrainedModel). */
  untrainedTensors?: string[];
  error?: string;
  /** The process that last saved the job while it was queued or running (a CLI or a server). */
  pid?: number;
}
