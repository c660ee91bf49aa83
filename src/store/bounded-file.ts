import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { InvalidRequestError } from "../core/errors.js";

/** Options of {@link readBoundedFile}. */
export interface ReadBoundedFileOptions {
  /** The most bytes read; a larger file is refused before reading, and one that grows past it while read is refused too. */
  limit: number;
  /** What the file is, for messages ("the training data"). */
  what: string;
  /** The request parameter or flag that named it, for the error. */
  param?: string;
}

const CHUNK = 1 << 20;

/**
 * Reads a whole file that a request, a job or a user named, with the size bounded before and
 * while reading: the path must be a regular file (not `/dev/zero`, a FIFO or a directory — each
 * of which would read forever or block), its size at most `limit`, and the read stops at
 * `limit + 1` bytes whatever the file does meanwhile. The checks are made on the opened
 * descriptor, so a file swapped after the check is not read instead. Messages name the path and
 * the problem, never the contents.
 *
 * @throws InvalidRequestError for a missing or unreadable path, a file that is not regular, or one over the limit
 */
export async function readBoundedFile(path: string, options: ReadBoundedFileOptions): Promise<Buffer> {
  const param = options.param === undefined ? {} : { param: options.param };
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidRequestError(`Cannot read ${options.what} ${path}: ${code ?? (error as Error).message}`, { ...param, cause: error });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new InvalidRequestError(`${options.what} ${path} is not a regular file`, param);
    if (stats.size > options.limit) throw new InvalidRequestError(`${options.what} ${path} is ${stats.size} bytes; at most ${options.limit} are read`, param);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buffer = Buffer.allocUnsafe(Math.min(CHUNK, options.limit + 1 - total));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      chunks.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      total += bytesRead;
      if (total > options.limit) throw new InvalidRequestError(`${options.what} ${path} grew past ${options.limit} bytes while it was read`, param);
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}
