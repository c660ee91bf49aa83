import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isDigest, type Digest } from "../core/digest.js";
import { DigestMismatchError, InvalidRequestError } from "../core/errors.js";
import { digestOfFile } from "./file-digest.js";
import { quoteUntrusted } from "./model-ref.js";
import { ownedTempName, tempOwnerState } from "./temp-owner.js";

/** How {@link BlobStore.putFile} takes the source file. */
export type PutFileMode = "copy" | "move";

/** Options of {@link BlobStore.putFile}. */
export interface PutFileOptions {
  /** The digest the bytes must have; a mismatch stores nothing. */
  expectedDigest?: Digest;
  /**
   * `copy` leaves the source alone. `move` renames it into the store when it is on the same file
   * system (copying otherwise) and consumes it: once the store has taken the bytes, the source is
   * gone whether or not they end up stored (a mismatch deletes them).
   * @default "copy"
   */
  mode?: PutFileMode;
  /**
   * Checks the stored bytes (the synced temp file, after hashing) before they become a blob, so
   * what is checked is exactly what is stored; a throw stores nothing and is rethrown.
   */
  inspect?: (tempPath: string, digest: Digest) => Promise<void>;
  /** Bytes copied and hashed so far, of the file's size (a CLI draws a bar with it). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** What {@link BlobStore.putFile} stored. */
export interface PutFileResult {
  digest: Digest;
  /** Size in bytes. */
  size: number;
  /** The blob's path. */
  path: string;
  /** False when an identical blob was already there (the new copy was dropped). */
  created: boolean;
}

/** What {@link BlobStore.cleanTemp} removed. */
export interface CleanTempResult {
  files: number;
  bytes: number;
}

const BLOB_PREFIX = "sha256-";
const BLOB_NAME_PATTERN = /^sha256-[0-9a-f]{64}$/;
const HOUR_MS = 60 * 60 * 1000;

/**
 * Content-addressed files: `<root>/blobs/sha256-<hex>`, written through `<root>/tmp/` on the same
 * file system (write → fsync → digest verified → rename → directory fsync). A file only ever
 * appears at a blob path complete and verified, so a crash at any point leaves at worst a temp
 * file named by its writing process (removed by {@link BlobStore.cleanTemp} once that process is gone), never a blob whose content differs from its name.
 * Identical files are stored once. Digests are validated before any path is built from them.
 */
export class BlobStore {
  /** The store's root directory (absolute). */
  readonly root: string;
  /** Where blobs live. */
  readonly blobsDirectory: string;
  /** Where files are written before they become blobs; on the same file system as the blobs. */
  readonly tempDirectory: string;

  /** Touches nothing on disk: directories are created on first write. */
  constructor(root: string) {
    this.root = resolve(root);
    this.blobsDirectory = join(this.root, "blobs");
    this.tempDirectory = join(this.root, "tmp");
  }

  /**
   * The path of a digest's blob (which may not exist).
   * @throws InvalidRequestError (param `digest`) when `digest` is not `sha256:` and 64 lower-case hex digits.
   */
  pathOf(digest: string): string {
    assertDigest(digest);
    return join(this.blobsDirectory, BLOB_PREFIX + digest.slice("sha256:".length));
  }

  /** True when the blob exists. */
  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  /** The blob's size in bytes, or `undefined` when it does not exist. */
  async size(digest: string): Promise<number | undefined> {
    const path = this.pathOf(digest);
    try {
      const stats = await stat(path);
      return stats.isFile() ? stats.size : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * A fresh path in the temp directory (created if needed), for a caller that writes a file
   * (a download) and then hands it to {@link putFile} with `mode: "move"`. Nothing is created at
   * the path itself. The name carries this process's id: once the process is gone,
   * {@link cleanTemp} removes the file (and any `<path>.*` a tool wrote beside it).
   */
  async createTempPath(): Promise<string> {
    await mkdir(this.tempDirectory, { recursive: true });
    return join(this.tempDirectory, ownedTempName(`${randomUUID()}.partial`));
  }

  /**
   * Stores a file as a blob named by its digest and returns where it lies.
   *
   * @throws InvalidRequestError when `expectedDigest` is malformed (before any file system call)
   * @throws DigestMismatchError when the bytes do not have `expectedDigest`; nothing is left behind
   */
  async putFile(sourcePath: string, options: PutFileOptions = {}): Promise<PutFileResult> {
    const mode = options.mode ?? "copy";
    if (mode !== "copy" && mode !== "move") throw new InvalidRequestError(`Unknown put mode ${quoteUntrusted(String(mode))}`, { param: "mode" });
    if (options.expectedDigest !== undefined) assertDigest(options.expectedDigest);
    await mkdir(this.blobsDirectory, { recursive: true });
    await mkdir(this.tempDirectory, { recursive: true });
    const tempPath = join(this.tempDirectory, ownedTempName(`${randomUUID()}.tmp`));
    let consumeSource = false;
    try {
      let written: { digest: Digest; size: number };
      if (mode === "move" && (await renameUnlessCrossDevice(sourcePath, tempPath))) {
        written = await syncAndHash(tempPath, options.onProgress);
      } else {
        consumeSource = mode === "move";
        written = await copyAndHash(sourcePath, tempPath, options.onProgress);
      }
      if (options.expectedDigest !== undefined && written.digest !== options.expectedDigest) {
        throw new DigestMismatchError(
          `The file's digest is ${written.digest}, expected ${options.expectedDigest}; nothing was stored`,
          options.expectedDigest,
          written.digest,
        );
      }
      await options.inspect?.(tempPath, written.digest);
      const path = this.pathOf(written.digest);
      const existing = await this.size(written.digest);
      // An identical blob is kept; one of another size cannot hold these bytes, so it is replaced.
      const created = existing !== written.size;
      if (created) {
        await rename(tempPath, path);
        await syncDirectory(this.blobsDirectory);
      } else {
        await unlink(tempPath);
      }
      return { digest: written.digest, size: written.size, path, created };
    } finally {
      // Best effort: a failure here must not hide the error that brought us here.
      await unlink(tempPath).catch(() => undefined);
      if (consumeSource) await unlink(sourcePath).catch(() => undefined);
    }
  }

  /** Deletes a blob; false when it was not there. Callers make sure no registry row needs it. */
  async remove(digest: string): Promise<boolean> {
    const path = this.pathOf(digest);
    try {
      await unlink(path);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Digests of every blob present, sorted; files with other names are ignored. */
  async list(): Promise<Digest[]> {
    let names: string[];
    try {
      names = await readdir(this.blobsDirectory);
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
    return names
      .filter((name) => BLOB_NAME_PATTERN.test(name))
      .sort()
      .map((name): Digest => `sha256:${name.slice(BLOB_PREFIX.length)}`);
  }

  /**
   * Removes temp files whose writer is gone (see temp-owner.ts: the name carries the writing
   * process), however recent, and leaves those of running processes alone however old. A file
   * whose writer cannot be known (another machine's, or one named before writers were recorded)
   * goes when untouched for `unknownOlderThanMs`.
   */
  async cleanTemp(options: { unknownOlderThanMs?: number } = {}): Promise<CleanTempResult> {
    const unknownOlderThanMs = options.unknownOlderThanMs ?? HOUR_MS;
    let names: string[];
    try {
      names = await readdir(this.tempDirectory);
    } catch (error) {
      if (isNotFound(error)) return { files: 0, bytes: 0 };
      throw error;
    }
    const now = Date.now();
    const result: CleanTempResult = { files: 0, bytes: 0 };
    for (const name of names) {
      const owner = tempOwnerState(name);
      if (owner === "alive") continue;
      const path = join(this.tempDirectory, name);
      const stats = await lstat(path).catch(() => undefined);
      if (stats === undefined || !stats.isFile()) continue;
      // With 0, every unknown temp file goes: a just-written file's mtime can read a little ahead of Date.now().
      if (owner === "unknown" && unknownOlderThanMs > 0 && now - stats.mtimeMs < unknownOlderThanMs) continue;
      try {
        await unlink(path);
        result.files++;
        result.bytes += stats.size;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return result;
  }

  /** Re-hashes a blob: its actual digest, or `undefined` when it is missing. */
  async digestOf(digest: string): Promise<Digest | undefined> {
    const path = this.pathOf(digest);
    try {
      return await digestOfFile(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}

function assertDigest(digest: string): asserts digest is Digest {
  if (typeof digest !== "string" || !isDigest(digest)) {
    throw new InvalidRequestError(
      `${quoteUntrusted(String(digest))} is not a digest: expected 'sha256:' and 64 lower-case hex digits`,
      { param: "digest" },
    );
  }
}

/** Renames within one file system; false (nothing done) when the two paths are on different ones. */
async function renameUnlessCrossDevice(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EXDEV") return false;
    throw error;
  }
}

/** Copies into a new file, hashing the bytes on the way, and syncs it to disk. */
async function copyAndHash(sourcePath: string, targetPath: string, onProgress?: (done: number, total: number) => void): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  const total = onProgress === undefined ? 0 : (await stat(sourcePath)).size;
  const target = await open(targetPath, "wx");
  let size = 0;
  try {
    for await (const chunk of createReadStream(sourcePath, { highWaterMark: 1 << 20 })) {
      const bytes = chunk as Buffer;
      hash.update(bytes);
      await target.write(bytes);
      size += bytes.length;
      onProgress?.(size, Math.max(total, size));
    }
    await target.sync();
  } finally {
    await target.close();
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** Syncs a file someone else wrote, then hashes what is on disk. */
async function syncAndHash(path: string, onProgress?: (done: number, total: number) => void): Promise<{ digest: Digest; size: number }> {
  const handle = await open(path, "r");
  let size: number;
  try {
    await handle.sync();
    size = (await handle.stat()).size;
  } finally {
    await handle.close();
  }
  return { digest: await digestOfFile(path, onProgress === undefined ? undefined : (done) => onProgress(done, size)), size };
}

/** Makes a rename durable: the directory entry itself is synced. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}
