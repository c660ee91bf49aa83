import type { FileHandle } from "node:fs/promises";

/** Bytes read ahead per refill; small, since GGUF headers are parsed once and most are < 10 MB. */
const WINDOW_BYTES = 64 * 1024;

/**
 * A forward-only little-endian reader over an open file that never reads, or allocates for,
 * more than the file holds: every read first checks the bytes left before `position`, and
 * `onTruncated` decides what a read past the end throws. Reads are served from a small window
 * that is refilled on demand, so parsing a header costs a handful of system calls.
 *
 * Callers `await need(n)` once, then take up to `n` bytes with the synchronous getters.
 * `need` returns a promise only when it must read, so hot loops can skip the `await` (and
 * the promise) when the bytes are already in the window.
 *
 * @example
 * const reader = new BoundedFileReader(handle, size, () => { throw new Error("truncated"); });
 * await reader.need(8);
 * const count = reader.uint64();
 */
export class BoundedFileReader {
  /** File size in bytes. */
  readonly size: number;
  readonly #handle: FileHandle;
  readonly #onTruncated: (needed: number) => never;
  #window: Buffer;
  /** File offset of `#window[0]`. */
  #windowStart = 0;
  /** Valid bytes in `#window`. */
  #windowLength = 0;
  #position = 0;

  /**
   * @param handle an open file; the reader never closes it
   * @param size the file size from `stat`
   * @param onTruncated throws the error for a read of `needed` bytes past the end of the file
   */
  constructor(handle: FileHandle, size: number, onTruncated: (needed: number) => never) {
    this.#handle = handle;
    this.size = size;
    this.#onTruncated = onTruncated;
    this.#window = Buffer.allocUnsafe(Math.min(WINDOW_BYTES, Math.max(size, 1)));
  }

  /** Offset of the next byte to read. */
  get position(): number {
    return this.#position;
  }

  /** Bytes between the position and the end of the file. */
  get remaining(): number {
    return this.size - this.#position;
  }

  /**
   * Makes the next `bytes` bytes readable synchronously. Calls `onTruncated` when the file
   * holds fewer, before allocating anything, so a hostile length costs nothing.
   */
  need(bytes: number): Promise<void> | undefined {
    if (bytes > this.remaining) this.#onTruncated(bytes);
    if (this.#position - this.#windowStart + bytes <= this.#windowLength) return undefined;
    return this.#fill(bytes);
  }

  async #fill(bytes: number): Promise<void> {
    const length = Math.min(Math.max(bytes, WINDOW_BYTES), this.remaining);
    if (length > this.#window.length) this.#window = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.#handle.read(this.#window, filled, length - filled, this.#position + filled);
      // The file shrank since `stat`: treat it as cut where the read stopped.
      if (bytesRead === 0) this.#onTruncated(bytes);
      filled += bytesRead;
    }
    this.#windowStart = this.#position;
    this.#windowLength = length;
  }

  #take(bytes: number): number {
    const at = this.#position - this.#windowStart;
    if (at < 0 || at + bytes > this.#windowLength) throw new RangeError(`BoundedFileReader: read of ${bytes} bytes without need()`);
    this.#position += bytes;
    return at;
  }

  /** A uint8. */
  uint8(): number {
    return this.#window.readUInt8(this.#take(1));
  }

  /** An int8. */
  int8(): number {
    return this.#window.readInt8(this.#take(1));
  }

  /** A little-endian uint16. */
  uint16(): number {
    return this.#window.readUInt16LE(this.#take(2));
  }

  /** A little-endian int16. */
  int16(): number {
    return this.#window.readInt16LE(this.#take(2));
  }

  /** A little-endian uint32. */
  uint32(): number {
    return this.#window.readUInt32LE(this.#take(4));
  }

  /** A little-endian int32. */
  int32(): number {
    return this.#window.readInt32LE(this.#take(4));
  }

  /** A little-endian float32. */
  float32(): number {
    return this.#window.readFloatLE(this.#take(4));
  }

  /** A little-endian float64. */
  float64(): number {
    return this.#window.readDoubleLE(this.#take(8));
  }

  /** A little-endian uint64. */
  uint64(): bigint {
    return this.#window.readBigUInt64LE(this.#take(8));
  }

  /** A little-endian int64. */
  int64(): bigint {
    return this.#window.readBigInt64LE(this.#take(8));
  }

  /** The next `length` bytes, as a view into the window (valid until the next `need`). */
  bytes(length: number): Buffer {
    const at = this.#take(length);
    return this.#window.subarray(at, at + length);
  }
}
