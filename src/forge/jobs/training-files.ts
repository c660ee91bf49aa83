import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestOfBytes, type Digest } from "../../core/digest.js";
import { NotFoundError } from "../../core/errors.js";
import { parseTrainingData } from "../finetune/training-data.js";
import { namesIn } from "./names-in.js";

/** An uploaded file (training data, or a task with purpose `evals`), as its sidecar `<id>.json` records it. */
export interface TrainingFile {
  /** `file-` and 24 hex digits. */
  id: string;
  /** The name the client gave. */
  filename: string;
  purpose: string;
  bytes: number;
  /** JSONL records in it. */
  records: number;
  digest: Digest;
  createdAt: string;
}

const FILE_ID = /^file-[0-9a-f]{24}$/;

/**
 * Training data uploaded over HTTP, under `<home>/files`: `<id>.jsonl` and a JSON sidecar
 * `<id>.json`, both written atomically. A file is checked record by record before it is kept,
 * so a fine-tune job can point at it by id.
 */
export class TrainingFiles {
  readonly directory: string;

  constructor(home: string) {
    this.directory = join(home, "files");
  }

  /**
   * Checks and stores an upload. `countRecords` checks the bytes for the upload's purpose and
   * counts what they hold; by default they must be training records.
   * @throws InvalidRequestError naming the first bad line, or when it holds no records
   */
  async add(filename: string, purpose: string, bytes: Buffer, countRecords = (data: Buffer) => parseTrainingData(data.toString("utf8"), filename).length): Promise<TrainingFile> {
    const records = countRecords(bytes);
    const file: TrainingFile = {
      id: `file-${randomBytes(12).toString("hex")}`,
      filename,
      purpose,
      bytes: bytes.length,
      records,
      digest: digestOfBytes(bytes),
      createdAt: new Date().toISOString(),
    };
    await mkdir(this.directory, { recursive: true });
    await this.#writeAtomically(this.pathOf(file.id), bytes);
    await this.#writeAtomically(join(this.directory, `${file.id}.json`), `${JSON.stringify(file, null, 1)}\n`);
    return file;
  }

  /** @throws NotFoundError for an unknown or malformed id */
  async get(id: string): Promise<TrainingFile> {
    if (!FILE_ID.test(id)) throw new NotFoundError(`No file '${id}'`, { param: "file_id" });
    try {
      return JSON.parse(await readFile(join(this.directory, `${id}.json`), "utf8")) as TrainingFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`No file '${id}'`, { param: "file_id" });
      throw error;
    }
  }

  /** Every file, newest first. */
  async list(): Promise<TrainingFile[]> {
    const names = await namesIn(this.directory);
    const ids = names.filter((name) => name.endsWith(".json")).map((name) => name.slice(0, -5)).filter((id) => FILE_ID.test(id));
    const files = await Promise.all(ids.map((id) => this.get(id).catch(() => undefined)));
    return files.filter((file) => file !== undefined).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Where a file's bytes are (checked for shape only). */
  pathOf(id: string): string {
    if (!FILE_ID.test(id)) throw new NotFoundError(`No file '${id}'`, { param: "file_id" });
    return join(this.directory, `${id}.jsonl`);
  }

  /** @throws NotFoundError for an unknown id */
  async remove(id: string): Promise<void> {
    await this.get(id);
    await rm(join(this.directory, `${id}.json`), { force: true });
    await rm(this.pathOf(id), { force: true });
  }

  async #writeAtomically(path: string, data: string | Buffer): Promise<void> {
    const temp = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
    try {
      await writeFile(temp, data);
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}
