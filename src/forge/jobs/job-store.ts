import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidRequestError, NotFoundError } from "../../core/errors.js";
import type { JobKind, JobRecord } from "../../core/wire.js";
import { namesIn } from "./names-in.js";

/** The JSON shapes the admin API answers with are declared once, in core/wire.ts (the web app reads them too). */
export type { JobKind, JobStatus, EpochRecord, JobRecord } from "../../core/wire.js";

/** True when the process that owns a queued or running job is alive (and is not this one). */
export function ownedByAnotherLiveProcess(job: JobRecord): boolean {
  if (job.pid === undefined || job.pid === process.pid) return false;
  try {
    process.kill(job.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

const JOB_ID = /^job-[0-9a-f]{12}$/;

/**
 * Forge jobs on disk: one directory per job under `<home>/jobs`, holding `job.json` (written
 * atomically: a reader sees the old or the new record, never half of one) and the job's
 * working files (training tokens, checkpoints). Shared by the CLI and the server.
 */
export class JobStore {
  readonly directory: string;

  constructor(home: string) {
    this.directory = join(home, "jobs");
  }

  /** A new job's directory and record, status `queued`. */
  async create(kind: JobKind, source: JobRecord["source"], parameters: Record<string, unknown>): Promise<JobRecord> {
    const id = `job-${randomBytes(6).toString("hex")}`;
    await mkdir(this.directoryOf(id), { recursive: true });
    const now = new Date().toISOString();
    const job: JobRecord = { id, kind, status: "queued", createdAt: now, updatedAt: now, source, parameters, progress: { fraction: 0, message: "queued" } };
    await this.save(job);
    return job;
  }

  /** The directory holding a job's files. @throws InvalidRequestError for a malformed id */
  directoryOf(id: string): string {
    if (!JOB_ID.test(id)) throw new InvalidRequestError(`'${id}' is not a job id (job- and 12 hex digits)`, { param: "job" });
    return join(this.directory, id);
  }

  /** @throws NotFoundError when there is no such job */
  async get(id: string): Promise<JobRecord> {
    let text: string;
    try {
      text = await readFile(join(this.directoryOf(id), "job.json"), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`No job '${id}'`);
      throw error;
    }
    return JSON.parse(text) as JobRecord;
  }

  /** Every job, newest first. */
  async list(): Promise<JobRecord[]> {
    const names = await namesIn(this.directory);
    const jobs: JobRecord[] = [];
    for (const name of names.filter((entry) => JOB_ID.test(entry))) {
      try {
        jobs.push(await this.get(name));
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error; // a directory being created
      }
    }
    return jobs.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Writes the record atomically, stamping `updatedAt`. */
  async save(job: JobRecord): Promise<void> {
    job.updatedAt = new Date().toISOString();
    if (job.status === "running" || job.status === "queued") job.pid = process.pid;
    const directory = this.directoryOf(job.id);
    const temp = join(directory, `job.json.${process.pid}.tmp`);
    await writeFile(temp, `${JSON.stringify(job, null, 1)}\n`);
    await rename(temp, join(directory, "job.json"));
  }

  /** Removes a job and its files. */
  async remove(id: string): Promise<void> {
    await rm(this.directoryOf(id), { recursive: true, force: true });
  }
}
