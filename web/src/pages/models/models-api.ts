import { apiHeaders, ensureOk, getJson, readEventStream, sendJson } from "../../api.js";

/** The store, lineage, results and forge APIs the Models page reads; their shapes are the server's own (src/core/wire.ts). */
import type { JobRecord, JobStatus, LineageEdge, ModelDetails, ModelListing, Recipe, Relation, ResultRecord, TreeNode } from "../../../../src/core/wire.js";

export type { JobRecord, JobStatus, LineageEdge, ModelDetails, ModelListing, Recipe, Relation, ResultRecord, TreeNode };

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
