import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AbortedError, ConflictError, InvalidRequestError, NotFoundError, OverloadedError } from "../../core/errors.js";
import type { Logger } from "../../logging/logger.js";
import { parseModelName } from "../../store/model-ref.js";
import type { ModelStore } from "../../store/model-store.js";
import { createFinetuneJob, runFinetuneJob, type FinetuneRequest } from "../finetune/finetune-job.js";
import type { TrainEvent } from "../finetune/libllama-train.js";
import { parseTrainingData } from "../finetune/training-data.js";
import { mergeFork } from "../merge/merge-fork.js";
import { MERGE_METHODS, type MergeMethod } from "../merge/merge-models.js";
import { quantizeFork } from "../quantize/quantize-fork.js";
import { parseQuantizeType, REQUIRES_IMATRIX } from "../quantize/quantize-types.js";
import { JobEventLog, type JobEvent, type JobEventInput } from "./job-event-log.js";
import { JobStore, ownedByAnotherLiveProcess, type JobRecord, type JobStatus } from "./job-store.js";
import { describeTrainEvent } from "./train-events.js";

/** A job's state (without its step curve) and the event that changed it. */
export interface JobUpdate {
  job: JobRecord;
  event: JobEvent;
}

/** Receives a job's updates; the last one has a finished status. */
export type JobListener = (update: JobUpdate) => void;

/** Options of {@link JobRunner.open}. */
export interface JobRunnerOptions {
  /** Threads for quantizing and training. @default the number of CPU cores */
  threads?: number;
  /** Jobs that may wait behind the running one; more are refused with 503. @default 16 */
  queueLimit?: number;
  logger?: Logger;
}

/** A quantize job's request. */
export interface QuantizeJobRequest {
  /** Name, digest or digest prefix of the model to quantize. */
  model: string;
  /** Quantization type, e.g. `Q4_K_M`. */
  type: string;
  /** Name to point at the fork. */
  name?: string;
}

/** A merge job's request (see mergeModels for the methods). */
export interface MergeJobRequest {
  models: readonly string[];
  method: MergeMethod;
  weights?: readonly number[];
  base?: string;
  name?: string;
}

/** A fine-tune job's request: a data file on the server, or inline records; not both. */
export interface FinetuneJobRequest extends Omit<FinetuneRequest, "data" | "threads"> {
  /** A JSONL file on the server. */
  data?: string;
  /** Inline `{"text"}` / `{"messages"}` records, written to `data.jsonl` in the job's directory. */
  records?: readonly unknown[];
}

interface Task {
  readonly id: string;
  run(signal: AbortSignal): Promise<void>;
}

const FINISHED: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

/** True once a job has stopped for good (or until resumed). */
export const isFinished = (job: JobRecord): boolean => FINISHED.has(job.status);

/** A job record without its step curve, for events and listings. */
export function withoutSteps(job: JobRecord): JobRecord {
  const { steps: _steps, ...rest } = job;
  return structuredClone(rest);
}

/**
 * Runs the server's forge jobs (quantize, merge, fine-tune) in the background, one at a time in
 * a FIFO queue across all kinds (each is CPU-bound and competes with serving), with a
 * `JobStore` record and an event log per job. It keeps the running job's AbortController for
 * cancel, tells subscribers of every event, and on close cancels what is queued or running.
 */
export class JobRunner {
  readonly jobs: JobStore;
  readonly events: JobEventLog;
  readonly #queue: Task[] = [];
  #active: { id: string; controller: AbortController; done: Promise<void> } | undefined;
  readonly #listeners = new Map<string, Set<JobListener>>();
  readonly #saves = new Map<string, Promise<void>>();
  #closed = false;

  private constructor(
    readonly store: ModelStore,
    private readonly options: JobRunnerOptions,
  ) {
    this.jobs = new JobStore(store.home);
    this.events = new JobEventLog(this.jobs);
  }

  /**
   * A runner over the store's jobs. Jobs left `running` or `queued` by a server that stopped
   * without closing (a crash, a kill) are marked failed with the reason; fine-tunes among them
   * can be resumed from their last checkpoint. A job whose owning process is still alive (a
   * `grove finetune` in a terminal) is left alone.
   */
  static async open(store: ModelStore, options: JobRunnerOptions = {}): Promise<JobRunner> {
    const runner = new JobRunner(store, options);
    for (const job of await runner.jobs.list()) {
      if (isFinished(job)) continue;
      if (ownedByAnotherLiveProcess(job)) continue; // e.g. a `grove finetune` running in a terminal
      const was = job.status;
      job.status = "failed";
      job.error = `The server stopped while this job was ${was} (it crashed or was killed)${job.kind === "finetune" ? "; resume it to continue from its last checkpoint" : ""}`;
      job.progress = { ...job.progress, message: `failed: ${job.error}` };
      await runner.jobs.save(job);
      await runner.events.append(job.id, { level: "error", type: "message", message: job.error });
    }
    return runner;
  }

  /** @throws NotFoundError for an unknown or malformed id */
  async get(id: string): Promise<JobRecord> {
    try {
      this.jobs.directoryOf(id);
    } catch (error) {
      throw new NotFoundError(`No job '${id}'`, { param: "job", cause: error });
    }
    return this.jobs.get(id);
  }

  /** Every job, newest first. */
  list(): Promise<JobRecord[]> {
    return this.jobs.list();
  }

  /** True while a job is queued or running in this runner. */
  isActive(id: string): boolean {
    return this.#active?.id === id || this.#queue.some((task) => task.id === id);
  }

  /** Calls `listener` with each update of the job until it finishes; returns the unsubscribe. */
  subscribe(id: string, listener: JobListener): () => void {
    let set = this.#listeners.get(id);
    if (set === undefined) this.#listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  /**
   * Queues a quantization of a store model; the fork is imported with its recipe.
   * @throws InvalidRequestError (type, name), ModelNotFoundError, OverloadedError when the queue is full
   */
  async startQuantize(request: QuantizeJobRequest): Promise<JobRecord> {
    this.#checkOpen();
    const type = parseQuantizeType(request.type);
    if (REQUIRES_IMATRIX.has(type)) throw new InvalidRequestError(`${type} needs an importance matrix, which forge jobs do not take; use grove quantize --imatrix`, { param: "type" });
    if (request.name !== undefined) parseModelName(request.name);
    const source = await this.store.show(request.model);
    const job = await this.jobs.create("quantize", { digest: source.model.digest, ref: request.model }, { type, ...(request.name === undefined ? {} : { name: request.name }) });
    return this.#enqueueOwned(job, `Quantizing ${request.model} to ${type}`, async (signal, progress) => {
      const result = await quantizeFork(this.store, {
        model: source.model.digest,
        type,
        ...(request.name === undefined ? {} : { name: request.name }),
        ...(this.options.threads === undefined ? {} : { threads: this.options.threads }),
        signal,
        onProgress: (done, total) => progress(done / total, `tensor ${done}/${total}`),
      });
      return { digest: result.import.model.digest, name: result.import.name, message: `${result.bitsPerWeight.toFixed(2)} bits/weight` };
    });
  }

  /**
   * Queues a merge of store models; the fork is imported with its recipe.
   * @throws InvalidRequestError (method, weights, name), ModelNotFoundError, OverloadedError
   */
  async startMerge(request: MergeJobRequest): Promise<JobRecord> {
    this.#checkOpen();
    if (!MERGE_METHODS.includes(request.method)) throw new InvalidRequestError(`Unknown merge method '${request.method}'; valid: ${MERGE_METHODS.join(", ")}`, { param: "method" });
    if (request.weights !== undefined && request.weights.length !== request.models.length) {
      throw new InvalidRequestError(`weights has ${request.weights.length} entries for ${request.models.length} models`, { param: "weights" });
    }
    if (request.name !== undefined) parseModelName(request.name);
    const inputs = await Promise.all(request.models.map((ref) => this.store.show(ref)));
    const base = request.base === undefined ? undefined : await this.store.show(request.base);
    if (inputs.length === 0) throw new InvalidRequestError("models is empty", { param: "models" });
    const digests = inputs.map((input) => input.model.digest);
    const parameters = {
      models: digests,
      method: request.method,
      ...(request.weights === undefined ? {} : { weights: [...request.weights] }),
      ...(base === undefined ? {} : { base: base.model.digest }),
      ...(request.name === undefined ? {} : { name: request.name }),
    };
    const job = await this.jobs.create("merge", { digest: digests[0]!, ref: request.models[0]! }, parameters);
    return this.#enqueueOwned(job, `Merging ${request.models.join(", ")} (${request.method})`, async (signal, progress) => {
      const result = await mergeFork(this.store, {
        ...parameters,
        signal,
        onProgress: (written, total) => progress(written / total, `${Math.round((100 * written) / total)}% written`),
      });
      return { digest: result.model.digest, name: result.name };
    });
  }

  /**
   * Prepares a fine-tune (parameters and data checked, data tokenized; see createFinetuneJob) and
   * queues it. `prepare` may add to the record before it is queued (the OpenAI route names the fork).
   * @throws InvalidRequestError naming the field, ModelNotFoundError, OverloadedError
   */
  async startFinetune(request: FinetuneJobRequest, prepare?: (job: JobRecord) => void | Promise<void>): Promise<JobRecord> {
    this.#checkOpen();
    if ((request.data === undefined) === (request.records === undefined)) {
      throw new InvalidRequestError("Give the training data as either data (a JSONL file on the server) or records (an inline array), not both", { param: "data" });
    }
    if (request.name !== undefined) parseModelName(request.name);
    const { records, ...rest } = request;
    let incoming: string | undefined;
    if (records !== undefined) {
      const text = `${records.map((record) => JSON.stringify(record)).join("\n")}\n`;
      try {
        parseTrainingData(text, "records: record");
      } catch (error) {
        throw new InvalidRequestError((error as Error).message, { param: "records", cause: error });
      }
      await mkdir(this.jobs.directory, { recursive: true });
      incoming = join(this.jobs.directory, `.incoming-${randomBytes(6).toString("hex")}.jsonl`);
      await writeFile(incoming, text);
    }
    let job: JobRecord;
    try {
      job = await createFinetuneJob(this.store, this.jobs, {
        ...rest,
        data: incoming ?? request.data!,
        ...(this.options.threads === undefined ? {} : { threads: this.options.threads }),
      });
      if (incoming !== undefined) {
        const data = join(this.jobs.directoryOf(job.id), "data.jsonl");
        await rename(incoming, data);
        job.parameters.data = data;
      }
      try {
        await prepare?.(job);
        await this.#save(job);
      } catch (error) {
        await this.jobs.remove(job.id);
        throw error;
      }
    } finally {
      if (incoming !== undefined) await rm(incoming, { force: true });
    }
    await this.#emit(job, { level: "info", type: "message", message: `Created fine-tuning job: ${job.parameters.records} records, ${job.parameters.tokens} tokens` });
    return this.#enqueue({ id: job.id, run: (signal) => this.#runFinetune(job.id, signal) }, job);
  }

  /**
   * Queues a cancelled or failed fine-tune again; it continues from its last checkpoint.
   * @throws NotFoundError, ConflictError when the job is not a fine-tune or not stopped
   */
  async resume(id: string): Promise<JobRecord> {
    this.#checkOpen();
    const job = await this.get(id);
    if (job.kind !== "finetune") throw new ConflictError(`${id} is a ${job.kind} job; only fine-tunes resume (start a new job instead)`, { param: "job" });
    if (this.isActive(id) || (job.status !== "failed" && job.status !== "cancelled")) {
      throw new ConflictError(`${id} is ${job.status}; only a cancelled or failed fine-tune resumes`, { param: "job" });
    }
    job.status = "queued";
    delete job.error;
    job.progress = { ...job.progress, message: "queued to resume" };
    await this.#save(job);
    await this.#emit(job, { level: "info", type: "message", message: "Fine-tuning job queued to resume" });
    return this.#enqueue({ id, run: (signal) => this.#runFinetune(id, signal) }, job);
  }

  /**
   * Cancels a queued or running job and resolves with its record once it has stopped (status
   * `cancelled`; a fine-tune keeps its last checkpoint for resume).
   * @throws NotFoundError, ConflictError for a job that is not queued or running here
   */
  async cancel(id: string): Promise<JobRecord> {
    const job = await this.get(id);
    const queued = this.#queue.findIndex((task) => task.id === id);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      await this.#finish(job, "cancelled", "Cancelled before it started");
      return job;
    }
    if (this.#active?.id === id) {
      this.#active.controller.abort();
      await this.#active.done;
      return this.get(id);
    }
    throw new ConflictError(`${id} is ${job.status}, not queued or running: there is nothing to cancel`, { param: "job" });
  }

  /** Cancels queued and running jobs (status `cancelled`) and waits for them to stop. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const task of this.#queue.splice(0)) {
      await this.#finish(await this.jobs.get(task.id), "cancelled", "Cancelled: the server closed before it started");
    }
    this.#active?.controller.abort();
    await this.#active?.done;
    await this.events.flush();
    await Promise.all(this.#saves.values());
  }

  /** Checked before a job is created, so a refused request writes nothing. */
  #checkOpen(): void {
    if (this.#closed) throw new OverloadedError("The server is closing; no new jobs start");
    if (this.#queue.length >= (this.options.queueLimit ?? 16)) {
      throw new OverloadedError(`${this.#queue.length} forge jobs are already waiting; try again later`);
    }
  }

  #enqueue(task: Task, job: JobRecord): JobRecord {
    this.#queue.push(task);
    queueMicrotask(() => this.#next());
    return withoutSteps(job);
  }

  /** A quantize or merge job: the runner keeps its record and progress. */
  #enqueueOwned(
    job: JobRecord,
    title: string,
    work: (signal: AbortSignal, progress: (fraction: number, message: string) => void) => Promise<{ digest: string; name?: string | undefined; message?: string }>,
  ): JobRecord {
    const run = async (signal: AbortSignal): Promise<void> => {
      job.status = "running";
      job.progress = { fraction: 0, message: "starting" };
      await this.#save(job);
      await this.#emit(job, { level: "info", type: "message", message: `${title}: started` });
      let reported = 0;
      const progress = (fraction: number, message: string): void => {
        job.progress = { fraction, message };
        // Per tensor or chunk is too often for disk and listeners: every 5%.
        if (fraction - reported < 0.05 && fraction < 1) return;
        reported = fraction;
        void this.#save(job);
        void this.#emit(job, { level: "info", type: "metrics", message, data: { fraction: Number(fraction.toFixed(4)) } });
      };
      try {
        const result = await work(signal, progress);
        job.result = { digest: result.digest, ...(result.name === undefined ? {} : { name: result.name }) };
        await this.#finish(job, "succeeded", `Created ${result.name ?? result.digest}${result.message === undefined ? "" : ` (${result.message})`}`);
      } catch (error) {
        await this.#finish(job, error instanceof AbortedError ? "cancelled" : "failed", (error as Error).message, error);
      }
    };
    return this.#enqueue({ id: job.id, run }, job);
  }

  async #runFinetune(id: string, signal: AbortSignal): Promise<void> {
    const before = await this.jobs.get(id);
    await this.#emit(before, { level: "info", type: "message", message: before.checkpointEpoch === undefined ? "Fine-tuning job started" : "Fine-tuning job resumed" });
    let stepsPerEpoch = 1;
    const onEvent = (event: TrainEvent, job: JobRecord): void => {
      const input = describeTrainEvent(event, job, stepsPerEpoch);
      if (event.event === "ready") stepsPerEpoch = event.stepsPerEpoch;
      if (input !== undefined) void this.#emit(job, input);
    };
    try {
      const job = await runFinetuneJob(this.store, this.jobs, id, { signal, onEvent });
      await this.#emit(job, { level: "info", type: "message", message: `New fine-tuned model created: ${job.result?.name ?? job.result?.digest}` });
      await this.#emit(job, { level: "info", type: "message", message: "The job has successfully completed" });
    } catch (error) {
      const job = await this.jobs.get(id);
      const status = error instanceof AbortedError ? "cancelled" : "failed";
      // runFinetuneJob records failures once training began; earlier ones (parent gone) are ours to record.
      if (!isFinished(job)) await this.#finish(job, status, (error as Error).message, error);
      else await this.#emit(job, { level: status === "failed" ? "error" : "warn", type: "message", message: status === "failed" ? `The job failed: ${job.error}` : "The job was cancelled" });
    }
  }

  #next(): void {
    if (this.#active !== undefined || this.#closed) return;
    const task = this.#queue.shift();
    if (task === undefined) return;
    const controller = new AbortController();
    const done = task
      .run(controller.signal)
      .catch((error: unknown) => this.options.logger?.error({ err: error, job: task.id }, "forge job runner failed"))
      .finally(() => {
        this.#listeners.delete(task.id);
        this.#active = undefined;
        this.#next();
      });
    this.#active = { id: task.id, controller, done };
  }

  async #finish(job: JobRecord, status: JobStatus, message: string, error?: unknown): Promise<void> {
    job.status = status;
    if (status === "succeeded") {
      delete job.error;
      job.progress = { fraction: 1, message: "done" };
    } else {
      job.error = message;
      job.progress = { ...job.progress, message: status === "cancelled" ? "cancelled" : `failed: ${message}` };
      if (status === "failed" && error !== undefined) this.options.logger?.warn({ err: error, job: job.id }, "forge job failed");
    }
    await this.#save(job);
    const level = status === "failed" ? "error" : status === "cancelled" ? "warn" : "info";
    await this.#emit(job, { level, type: "message", message: status === "succeeded" ? message : status === "cancelled" ? `The job was cancelled: ${message}` : `The job failed: ${message}` });
    if (status !== "succeeded") this.#listeners.delete(job.id);
  }

  /** Saves a record; saves of one job are chained (they share a temp file name). */
  #save(job: JobRecord): Promise<void> {
    const previous = this.#saves.get(job.id) ?? Promise.resolve();
    const saved = previous.then(() => this.jobs.save(job));
    this.#saves.set(job.id, saved.catch(() => undefined));
    return saved;
  }

  /** Logs an event and tells the job's listeners, with the job as it was when the event happened. */
  async #emit(job: JobRecord, input: JobEventInput): Promise<void> {
    const snapshot = withoutSteps(job);
    const event = await this.events.append(job.id, input);
    for (const listener of this.#listeners.get(job.id) ?? []) {
      try {
        listener({ job: snapshot, event });
      } catch (error) {
        this.options.logger?.warn({ err: error, job: job.id }, "a job listener failed");
      }
    }
  }
}
