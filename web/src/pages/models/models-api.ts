import { apiHeaders, ensureOk, getJson, readEventStream, sendJson } from "../../api.js";

/**
 * The store, lineage, results and forge APIs the Models page reads, typed as the server answers
 * them (src/store/registry.ts, src/store/model-store.ts, src/forge/jobs/job-store.ts).
 */

/** How a fork derives from its parent. */
export type Relation = "finetune" | "adapter" | "quantized" | "merge";

/** One model of the store, as `GET /api/models` lists it. */
export interface ModelListing {
  digest: string;
  size: number;
  architecture: string;
  parameterCount: number;
  quantization: string;
  contextLength: number;
  vocabularySize: number;
  chatTemplate?: string;
  license?: string;
  card: Record<string, unknown>;
  createdAt: string;
  names: string[];
  local: boolean;
}

/** How a fork was made. */
export interface Recipe {
  tool: string;
  toolVersion: string;
  parameters: Record<string, unknown>;
  /** Digests of every input: parent models, training data. */
  inputs: string[];
}

/** One lineage edge: `child` derives from `parent`. */
export interface LineageEdge {
  child: string;
  parent: string;
  relation: Relation;
  recipe: Recipe | null;
}

/** `GET /api/models/:ref`. */
export interface ModelDetails {
  model: Omit<ModelListing, "names" | "local">;
  names: string[];
  parents: LineageEdge[];
  children: LineageEdge[];
}

/** One node of a fork tree; a merge appears under each of its parents. */
export interface TreeNode {
  digest: string;
  names: string[];
  relation: Relation | null;
  size: number;
  quantization: string;
  children: TreeNode[];
}

/** One evaluation or cost measurement of a model. */
export interface ResultRecord {
  modelDigest: string;
  kind: "quality" | "cost";
  task: string;
  taskDigest: string;
  settings: Record<string, unknown>;
  engineVersion: string;
  metrics: Record<string, number | null>;
  /** Standard error of each metric; null where unknown (results stored before errors were kept). */
  standardErrors?: Record<string, number | null>;
  /** The machine a speed or memory result was measured on; null for quality or unknown. */
  machine?: { cpu: string; cores: number; memoryGib: number; gpu: string | null; fingerprint: string } | null;
  flags: string[];
  createdAt: string;
}

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** A forge job, without its step curve. */
export interface JobRecord {
  id: string;
  kind: "finetune" | "quantize" | "merge";
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  source: { digest: string; ref: string };
  parameters: Record<string, unknown>;
  progress: { fraction: number; message: string };
  result?: { digest: string; name?: string };
  error?: string;
}

/** One message of a job's event stream. */
export interface JobUpdate {
  job: JobRecord;
  event: { level: "info" | "warn" | "error"; message: string } | null;
}

/** True once a job has stopped (succeeded, failed or cancelled). */
export const isFinished = (job: JobRecord): boolean => job.status === "succeeded" || job.status === "failed" || job.status === "cancelled";

/** The path segment of a model reference (names hold `:` and `/`). */
const segment = (ref: string): string => encodeURIComponent(ref);

/** The address of a model's card in the web app. */
export const cardHref = (ref: string): string => `/models/${segment(ref)}`;

export const listModels = async (): Promise<ModelListing[]> => (await getJson<{ models: ModelListing[] }>("/api/models")).models;
export const storeTree = async (): Promise<TreeNode[]> => (await getJson<{ tree: TreeNode[] }>("/api/tree")).tree;
export const modelTree = async (ref: string): Promise<TreeNode[]> => (await getJson<{ tree: TreeNode[] }>(`/api/models/${segment(ref)}/tree`)).tree;
export const showModel = (ref: string): Promise<ModelDetails> => getJson<ModelDetails>(`/api/models/${segment(ref)}`);
export const modelResults = async (ref: string): Promise<ResultRecord[]> => (await getJson<{ results: ResultRecord[] }>(`/api/models/${segment(ref)}/results`)).results;
export const listJobs = async (): Promise<JobRecord[]> => (await getJson<{ jobs: JobRecord[] }>("/api/forge/jobs")).jobs;
export const cancelJob = (id: string): Promise<JobRecord> => sendJson<JobRecord>("POST", `/api/forge/jobs/${segment(id)}/cancel`);

/** `POST /api/forge/quantize`. */
export interface QuantizeRequest {
  model: string;
  type: string;
  name?: string;
}

/** `POST /api/forge/finetune` with inline records. */
export interface FinetuneRequest {
  model: string;
  records: Record<string, unknown>[];
  epochs?: number;
  learning_rate?: number;
  /** Chat records: the loss on the assistant turns only, or on every token. */
  loss_on?: "answers" | "all";
  /** Train LoRA adapters: the server's defaults for what is left out. */
  lora?: { rank: number; alpha: number; dropout: number; targets: string[] };
  name?: string;
}

export const startQuantize = (request: QuantizeRequest): Promise<JobRecord> => sendJson<JobRecord>("POST", "/api/forge/quantize", request);
export const startFinetune = (request: FinetuneRequest): Promise<JobRecord> => sendJson<JobRecord>("POST", "/api/forge/finetune", request);

/**
 * Follows a job's server-sent events until it finishes (or `signal` aborts), calling `onUpdate`
 * with each. Uses fetch rather than EventSource so the API key header goes along.
 * @throws Error when the stream carries an error event
 */
export async function followJob(id: string, onUpdate: (update: JobUpdate) => void, signal: AbortSignal): Promise<void> {
  const response = await ensureOk(await fetch(`/api/forge/jobs/${segment(id)}/events`, { headers: apiHeaders(), signal }));
  await readEventStream(response, (data) => {
    const message = data as Partial<JobUpdate> & { error?: { message?: string } };
    if (message.error) throw new Error(message.error.message ?? "The job's event stream failed");
    if (message.job) onUpdate({ job: message.job, event: message.event ?? null });
  }, signal);
}
