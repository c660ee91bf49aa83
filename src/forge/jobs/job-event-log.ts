import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { JobStore } from "./job-store.js";

/** One line of a job's history: a message or a metrics point, as the job runner saw it. */
export interface JobEvent {
  /** `<job id>-<sequence>`, increasing within a job. */
  id: string;
  /** ISO time the runner saw it. */
  createdAt: string;
  level: "info" | "warn" | "error";
  /** `metrics` carries numbers in `data` (step, losses); `message` is prose. */
  type: "message" | "metrics";
  message: string;
  /**
   * Numbers where the event has them: `step` (counted over all epochs), `epoch` (1-based),
   * `train_loss`, `valid_loss`, `fraction` (progress in [0, 1]).
   */
  data?: Record<string, number | string | null>;
}

/** What a caller gives {@link JobEventLog.append}; id and time are added. */
export type JobEventInput = Omit<JobEvent, "id" | "createdAt">;

/**
 * Each job's events as JSON lines in `<home>/jobs/<id>/events.jsonl`, appended in order (writes
 * are chained per job, so a reader that awaits {@link read} sees every event appended before).
 */
export class JobEventLog {
  readonly #writes = new Map<string, Promise<void>>();
  readonly #sequence = new Map<string, number>();

  constructor(private readonly jobs: JobStore) {}

  /**
   * Stamps the event with its id and time and appends it; resolves with it once written. Events
   * of one job are written, and resolve, in the order they were appended.
   */
  append(jobId: string, input: JobEventInput): Promise<JobEvent> {
    const createdAt = new Date().toISOString();
    const path = this.#path(jobId);
    const previous = this.#writes.get(jobId) ?? Promise.resolve();
    const written = previous.then(async () => {
      const sequence = this.#sequence.get(jobId) ?? (await this.#readFile(jobId)).length;
      this.#sequence.set(jobId, sequence + 1);
      const event: JobEvent = { id: `${jobId}-${sequence + 1}`, createdAt, ...input };
      await appendFile(path, `${JSON.stringify(event)}\n`);
      return event;
    });
    // A failed write (the job removed meanwhile) must not stop later ones.
    this.#writes.set(jobId, written.then(() => undefined, () => undefined));
    return written;
  }

  /** Every event of a job, oldest first, including those still being written; none for a job without a log. */
  async read(jobId: string): Promise<JobEvent[]> {
    await this.#writes.get(jobId);
    return this.#readFile(jobId);
  }

  async #readFile(jobId: string): Promise<JobEvent[]> {
    let text: string;
    try {
      text = await readFile(this.#path(jobId), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    return text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as JobEvent);
  }

  /** Resolves once every pending write is on disk. */
  async flush(): Promise<void> {
    await Promise.all(this.#writes.values());
  }

  #path(jobId: string): string {
    return join(this.jobs.directoryOf(jobId), "events.jsonl");
  }
}
