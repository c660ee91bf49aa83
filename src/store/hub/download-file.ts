import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortedError, DigestMismatchError, GroveError, InvalidRequestError, NotFoundError, UpstreamError } from "../../core/errors.js";
import { errorText, fetchWithRedirects } from "./fetch-with-redirects.js";

/** Options of {@link downloadFile}. */
export interface DownloadFileOptions {
  /** The file's URL; redirects are followed (at most 5). */
  url: string;
  /** The partial file to write; an existing one is resumed with an HTTP Range request. */
  destination: string;
  /** The sha256 (64 hex digits) the source declares; the finished file must match it. */
  expectedSha256?: string;
  /** The size in bytes the source declares; the finished file must match it. */
  expectedSize?: number;
  /** Bearer token, sent only to the origin of `url`, never to a host it redirects to. */
  token?: string;
  /** Called after every chunk with the bytes on disk (a resumed prefix included) and the total, when known. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Cancels the download; the partial file stays for a later resume. */
  signal?: AbortSignal;
  /** Give up an attempt when no byte arrives for this long. @default 60000 */
  chunkTimeoutMs?: number;
  /** Tries in all when the connection breaks, stalls or the server answers 5xx; each retry resumes. @default 3 */
  attempts?: number;
  /** Wait before retry n is n times this. @default 1000 */
  retryDelayMs?: number;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** What {@link downloadFile} wrote. */
export interface DownloadFileResult {
  /** The finished, fsynced, verified file (= `destination`). */
  path: string;
  /** Its sha256, 64 lower-case hex digits. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** The byte offset the last, successful request resumed from; 0 when it fetched the whole file. */
  resumedFrom: number;
}

/** The bytes on disk and the running hash over exactly those bytes. */
interface PartialState {
  offset: number;
  hash: Hash;
}

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Downloads a file into a partial file, resuming one left by an earlier attempt, and verifies
 * the whole file against the declared sha256 and size. The file is fsynced before this returns.
 * On a mismatch the partial file is deleted; on a broken connection, a stall or cancellation
 * it is kept, so that the next call resumes it.
 *
 * @example
 * const result = await downloadFile({ url, destination: "/data/partial/abc.partial", expectedSha256: "ab…", onProgress });
 * @throws DigestMismatchError (partial deleted), NotFoundError (HTTP 404), UpstreamError
 *   (network, stall, other HTTP statuses; partial kept), AbortedError.
 */
export async function downloadFile(options: DownloadFileOptions): Promise<DownloadFileResult> {
  const expectedSha256 = options.expectedSha256?.toLowerCase();
  if (expectedSha256 !== undefined && !SHA256_PATTERN.test(expectedSha256)) {
    throw new InvalidRequestError(`Expected sha256 '${options.expectedSha256}' is not 64 hex digits`, { param: "expectedSha256" });
  }
  const expectedSize = options.expectedSize;
  if (expectedSize !== undefined && (!Number.isSafeInteger(expectedSize) || expectedSize < 0)) {
    throw new InvalidRequestError(`Expected size ${expectedSize} is not a byte count`, { param: "expectedSize" });
  }
  const attempts = Math.max(1, options.attempts ?? 3);
  const handle = await openPartial(options.destination);
  let mismatch: DigestMismatchError | undefined;
  let result: DownloadFileResult;
  try {
    const state = await readPartial(handle, options.destination, expectedSize);
    let resumedFrom = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        resumedFrom = await transfer(handle, state, options);
        break;
      } catch (error) {
        if (attempt >= attempts || !isRetryable(error) || options.signal?.aborted) throw error;
        await sleep((options.retryDelayMs ?? 1000) * attempt, undefined, { signal: options.signal }).catch((cause: unknown) => {
          throw new AbortedError(undefined, { cause });
        });
      }
    }
    await handle.sync();
    const sha256 = state.hash.digest("hex");
    result = { path: options.destination, sha256, size: state.offset, resumedFrom };
    const shaWrong = expectedSha256 !== undefined && sha256 !== expectedSha256;
    const sizeWrong = expectedSize !== undefined && state.offset !== expectedSize;
    if (shaWrong || sizeWrong) {
      const [expected, actual] = shaWrong ? [expectedSha256!, sha256] : [String(expectedSize), String(state.offset)];
      mismatch = new DigestMismatchError(
        `Downloaded ${describeUrl(options.url)} does not match what its source declared: ` +
          `expected sha256 ${expectedSha256 ?? "(not declared)"} and ${expectedSize ?? "(undeclared)"} bytes, ` +
          `got sha256 ${sha256} and ${state.offset} bytes; the partial file was deleted`,
        expected,
        actual,
      );
    }
  } catch (error) {
    if (error instanceof DigestMismatchError) mismatch = error;
    else throw error;
  } finally {
    await handle.close();
    if (mismatch) await unlink(options.destination).catch(() => undefined);
  }
  if (mismatch) throw mismatch;
  return result!;
}

/** Opens the partial file for positioned writes, creating it when missing. */
async function openPartial(path: string): Promise<FileHandle> {
  try {
    return await open(path, "r+");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return open(path, "w+");
  }
}

/** Hashes the bytes already on disk; a partial larger than the declared size starts over. */
async function readPartial(handle: FileHandle, path: string, expectedSize: number | undefined): Promise<PartialState> {
  const { size } = await handle.stat();
  const state: PartialState = { offset: 0, hash: createHash("sha256") };
  if (size === 0) return state;
  if (expectedSize !== undefined && size > expectedSize) {
    await handle.truncate(0);
    return state;
  }
  for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1 << 20 })) {
    state.hash.update(chunk as Buffer);
  }
  state.offset = size;
  return state;
}

async function restart(handle: FileHandle, state: PartialState): Promise<void> {
  await handle.truncate(0);
  state.offset = 0;
  state.hash = createHash("sha256");
}

/**
 * One request: resumes from `state.offset` when it is past zero, appends the body and updates
 * the hash. Returns the offset the server's answer started from.
 */
async function transfer(handle: FileHandle, state: PartialState, options: DownloadFileOptions): Promise<number> {
  if (options.signal?.aborted) throw new AbortedError(undefined, { cause: options.signal.reason });
  const chunkTimeoutMs = options.chunkTimeoutMs ?? 60_000;
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal!.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let stalled = false;
  const timer = setTimeout(() => {
    stalled = true;
    controller.abort(new UpstreamError(`No data from ${describeUrl(options.url)} for ${chunkTimeoutMs} ms`));
  }, chunkTimeoutMs);
  try {
    for (;;) {
      const headers: Record<string, string> = { "accept-encoding": "identity" };
      if (state.offset > 0) headers.range = `bytes=${state.offset}-`;
      const { response } = await fetchWithRedirects(options.url, {
        headers,
        token: options.token,
        signal: controller.signal,
        fetch: options.fetch,
      });
      let total: number | undefined;
      if (response.status === 416 && state.offset > 0) {
        await response.body?.cancel().catch(() => undefined);
        if (parseContentRange(response.headers.get("content-range"))?.total === state.offset) return state.offset;
        await restart(handle, state);
        continue;
      }
      if (response.status === 206 && state.offset > 0) {
        const range = parseContentRange(response.headers.get("content-range"));
        if (range?.start !== state.offset) {
          await response.body?.cancel().catch(() => undefined);
          await restart(handle, state);
          continue;
        }
        total = range.total;
      } else if (response.status === 200) {
        // The server ignored the Range header: the body is the whole file.
        if (state.offset > 0) await restart(handle, state);
        total = parseLength(response.headers.get("content-length"));
      } else {
        await response.body?.cancel().catch(() => undefined);
        throw statusError(response.status, options.url);
      }
      const resumedFrom = state.offset;
      await receiveBody(response, handle, state, options, options.expectedSize ?? total, () => timer.refresh());
      if (total !== undefined && state.offset < total) {
        throw new UpstreamError(`The connection to ${describeUrl(options.url)} closed after ${state.offset} of ${total} bytes`);
      }
      return resumedFrom;
    }
  } catch (error) {
    if (stalled) throw controller.signal.reason as UpstreamError;
    if (options.signal?.aborted) throw new AbortedError(undefined, { cause: error });
    if (error instanceof GroveError) throw error;
    throw new UpstreamError(`The download of ${describeUrl(options.url)} broke off at byte ${state.offset}: ${errorText(error)}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    // Frees the connection when the body was left unread (an error above).
    controller.abort();
  }
}

async function receiveBody(
  response: Response,
  handle: FileHandle,
  state: PartialState,
  options: DownloadFileOptions,
  total: number | undefined,
  onChunk: () => void,
): Promise<void> {
  options.onProgress?.(state.offset, total);
  if (response.body === null) return;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onChunk();
    if (options.expectedSize !== undefined && state.offset + value.byteLength > options.expectedSize) {
      throw new DigestMismatchError(
        `${describeUrl(options.url)} sent more than the ${options.expectedSize} bytes its source declared; the partial file was deleted`,
        String(options.expectedSize),
        `more than ${options.expectedSize}`,
      );
    }
    await handle.write(value, 0, value.byteLength, state.offset);
    state.hash.update(value);
    state.offset += value.byteLength;
    options.onProgress?.(state.offset, total);
  }
}

function isRetryable(error: unknown): boolean {
  if (!(error instanceof UpstreamError)) return false;
  return error.status === undefined || error.status >= 500 || error.status === 429 || error.status === 408;
}

function statusError(status: number, url: string): GroveError {
  const where = describeUrl(url);
  if (status === 404) return new NotFoundError(`${where} does not exist (HTTP 404)`);
  if (status === 401 || status === 403) {
    return new UpstreamError(`${where} refused access (HTTP ${status}): the file may be private or gated and need a token`, { status });
  }
  return new UpstreamError(`${where} answered HTTP ${status}`, { status });
}

/** `bytes START-END/TOTAL` or `bytes *\/TOTAL`; `undefined` parts are unknown. */
function parseContentRange(header: string | null): { start: number | undefined; total: number | undefined } | undefined {
  const match = header === null ? null : /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(header.trim());
  if (!match) return undefined;
  return { start: match[1] === undefined ? undefined : Number(match[1]), total: match[2] === "*" ? undefined : Number(match[2]) };
}

function parseLength(header: string | null): number | undefined {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
}

/** Host and path only: CDN URLs carry signatures in their query that must not reach a log. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return "the URL";
  }
}
