import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { adoptPartialFile } from "../temp-owner.js";
import { chooseModelFile, type HubClient } from "./hub-client.js";
import { formatHubRef, parseHubRef, type HubRef } from "./hub-ref.js";
import { EMPTY_MODEL_CARD, type ModelCard } from "./model-card.js";

/** Options of {@link pullModel}. */
export interface PullModelOptions {
  /** `hf:OWNER/REPO[/FILE.gguf][@REVISION]`, or one already parsed. */
  ref: string | HubRef;
  /** The hub to pull from (its endpoint and token). */
  client: HubClient;
  /** Directory for partial downloads (created if missing); a rerun resumes the same partial file there. */
  partialDirectory: string;
  /** Whether the store already holds a file of this sha256 (hex); if so nothing is downloaded. */
  isAlreadyStored?: (sha256: string) => boolean | Promise<boolean>;
  /** Called after every chunk with the bytes on disk and the total, when known. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Cancels the pull; the partial file stays for a later resume. */
  signal?: AbortSignal;
  /** See `downloadFile`. @default 60000 */
  chunkTimeoutMs?: number;
  /** See `downloadFile`. @default 3 */
  attempts?: number;
  /** See `downloadFile`. @default 1000 */
  retryDelayMs?: number;
}

/** Where a pulled file came from, for the store's lineage record. */
export interface PullSource {
  /** The hub's base URL. */
  readonly endpoint: string;
  /** `OWNER/REPO`. */
  readonly repo: string;
  /** The revision asked for (branch, tag or commit). */
  readonly revision: string;
  /** The commit that revision pointed at, when the hub said. The download is pinned to it. */
  readonly commit: string | undefined;
  /** Path of the file inside the repository. */
  readonly file: string;
  /** The canonical reference, `hf:OWNER/REPO/FILE@REVISION`. */
  readonly ref: string;
}

/** A pull that found the file already in the store and downloaded nothing. */
export interface AlreadyStoredPull {
  readonly alreadyStored: true;
  /** The file's sha256 (hex), as the hub declared it. */
  readonly sha256: string;
  /** Its size, when the hub declared it. */
  readonly size: number | undefined;
  readonly card: ModelCard;
  readonly source: PullSource;
}

/** A pull that downloaded a verified file for the store to import. */
export interface DownloadedPull {
  readonly alreadyStored: false;
  /** The downloaded, fsynced partial file; the caller imports (moves) it. */
  readonly path: string;
  /** Its sha256 (hex), computed over the whole file. */
  readonly sha256: string;
  readonly size: number;
  /** The byte offset the download resumed from; 0 when it fetched everything. */
  readonly resumedFrom: number;
  /** True when the hub declared a sha256 and the file matched it; false when none was declared. */
  readonly verified: boolean;
  /** The model card's lineage and licence; empty when the repository has no card. */
  readonly card: ModelCard;
  readonly source: PullSource;
}

/** What {@link pullModel} did. */
export type PullModelResult = AlreadyStoredPull | DownloadedPull;

/**
 * Pulls a GGUF file from a Hugging Face-compatible hub: resolves the file (the one named, else
 * the repository's only `.gguf`) and its declared sha256 (from the listing's LFS oid, else the
 * resolve URL's `X-Linked-Etag`), reads the model card's `base_model`, `base_model_relation` and
 * `license`, and — unless `isAlreadyStored` says the store has that sha256 — downloads it into
 * `partialDirectory/<sha256>.partial` (resuming one left there), verified. Importing the file
 * and recording lineage is the caller's job.
 *
 * @example
 * const result = await pullModel({ ref: "hf:acme/tiny-GGUF", client, partialDirectory, isAlreadyStored, onProgress });
 * if (!result.alreadyStored) await store.importFile(result.path, { lineage: result.card, source: result.source });
 * @throws InvalidRequestError (a bad ref, several GGUF files), NotFoundError, UpstreamError,
 *   DigestMismatchError, AbortedError.
 */
export async function pullModel(options: PullModelOptions): Promise<PullModelResult> {
  const ref = typeof options.ref === "string" ? parseHubRef(options.ref) : parseHubRef(formatHubRef(options.ref));
  const { client } = options;
  const label = `${ref.repo}@${ref.revision}`;
  const listing = await client.listFiles(ref.repo, ref.revision);
  const file = chooseModelFile(listing, ref.file, label);
  // Pinning to the listed commit keeps the file, its declared sha256 and the card consistent
  // while the branch moves on.
  const pinned = listing.commit ?? ref.revision;
  const url = client.fileUrl(ref.repo, pinned, file.path);
  let sha256 = file.sha256;
  let size = file.size;
  let commit = listing.commit;
  if (sha256 === undefined) {
    const head = await client.headFile(ref.repo, pinned, file.path);
    sha256 = head.sha256;
    size = head.size ?? size;
    commit ??= head.commit;
  }
  const card = (await client.readModelCard(ref.repo, pinned)) ?? EMPTY_MODEL_CARD;
  const source: PullSource = Object.freeze({
    endpoint: client.endpoint,
    repo: ref.repo,
    revision: ref.revision,
    commit,
    file: file.path,
    ref: formatHubRef({ ...ref, file: file.path }),
  });
  if (sha256 !== undefined && options.isAlreadyStored !== undefined && (await options.isAlreadyStored(sha256))) {
    return Object.freeze({ alreadyStored: true, sha256, size, card, source });
  }
  await mkdir(options.partialDirectory, { recursive: true });
  const partialName = sha256 ?? `url-${createHash("sha256").update(url).digest("hex")}`;
  const result = await client.downloadFile({
    url,
    destination: await adoptPartialFile(options.partialDirectory, partialName),
    expectedSha256: sha256,
    expectedSize: size,
    onProgress: options.onProgress,
    signal: options.signal,
    chunkTimeoutMs: options.chunkTimeoutMs,
    attempts: options.attempts,
    retryDelayMs: options.retryDelayMs,
  });
  return Object.freeze({
    alreadyStored: false,
    path: result.path,
    sha256: result.sha256,
    size: result.size,
    resumedFrom: result.resumedFrom,
    verified: sha256 !== undefined,
    card,
    source,
  });
}
