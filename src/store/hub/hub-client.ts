import { ConfigError, InvalidRequestError, NotFoundError, UpstreamError } from "../../core/errors.js";
import { downloadFile, describeUrl, type DownloadFileOptions, type DownloadFileResult } from "./download-file.js";
import { errorText, fetchWithRedirects, isRedirectStatus, type FetchWithRedirectsOptions } from "./fetch-with-redirects.js";
import { assertHubFilePath, assertHubRepo, assertHubRevision } from "./hub-ref.js";
import { EMPTY_MODEL_CARD, parseModelCard, type ModelCard } from "./model-card.js";

/** The public Hugging Face hub. */
export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";

/** Options of {@link HubClient}. */
export interface HubClientOptions {
  /** Base URL of a Hugging Face-compatible hub (a path prefix is kept). @default "https://huggingface.co" */
  endpoint?: string;
  /** Access token for private and gated repositories; sent only to the hub's own origin. */
  token?: string;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** One file of a repository, as the hub lists it. */
export interface HubFile {
  /** Path inside the repository (the hub's `rfilename`). */
  readonly path: string;
  /** Size in bytes, when listed. */
  readonly size: number | undefined;
  /** sha256 of the content (the LFS oid), when the file is stored in LFS. */
  readonly sha256: string | undefined;
}

/** The files of a repository at one revision. */
export interface HubFileListing {
  /** The commit the revision pointed at (the hub's `sha`), when given. */
  readonly commit: string | undefined;
  readonly files: readonly HubFile[];
}

/** What a HEAD request on a file's resolve URL tells. */
export interface HubFileHead {
  /** The file's resolve URL on the hub. */
  readonly url: string;
  /** sha256 from `X-Linked-Etag` (LFS files) or a sha256-shaped `ETag`. */
  readonly sha256: string | undefined;
  /** Size from `X-Linked-Size`, else the content length. */
  readonly size: number | undefined;
  /** The commit from `X-Repo-Commit`, when given. */
  readonly commit: string | undefined;
}

const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const COMMIT_PATTERN = /^[0-9a-f]{40}$/;
const MAX_CARD_BYTES = 1 << 20;

/**
 * A client of a Hugging Face-compatible hub: lists files, reads model cards, looks up a file's
 * declared sha256 and downloads it. The token is kept private and sent to the hub's origin only.
 *
 * @example
 * const client = new HubClient({ endpoint: config.hubEndpoint, token: config.hubToken || undefined });
 * const listing = await client.listFiles("acme/tiny-GGUF", "main");
 */
export class HubClient {
  /** The hub's base URL, without a trailing slash. */
  readonly endpoint: string;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: HubClientOptions = {}) {
    this.endpoint = normalizeEndpoint(options.endpoint ?? DEFAULT_HUB_ENDPOINT);
    this.#token = options.token === "" ? undefined : options.token;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  /**
   * Lists a repository's files at a revision with `GET /api/models/{repo}/revision/{revision}?blobs=true`.
   *
   * @throws NotFoundError when the repository or revision does not exist; UpstreamError otherwise.
   */
  async listFiles(repo: string, revision: string): Promise<HubFileListing> {
    assertHubRepo(repo);
    assertHubRevision(revision);
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const { response } = await this.#request(url, { headers: { accept: "application/json" } });
    if (response.status === 404) {
      await discard(response);
      throw new NotFoundError(`The hub has no repository '${repo}' at revision '${revision}'`);
    }
    await this.#assertOk(response, `the listing of ${repo}@${revision}`);
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw new UpstreamError(`The hub's listing of ${repo}@${revision} is not JSON`, { cause: error });
    }
    const siblings = isRecord(body) ? body.siblings : undefined;
    if (!Array.isArray(siblings)) throw new UpstreamError(`The hub's listing of ${repo}@${revision} has no 'siblings' array`);
    const files: HubFile[] = [];
    for (const sibling of siblings) {
      if (!isRecord(sibling) || typeof sibling.rfilename !== "string") continue;
      const lfs = isRecord(sibling.lfs) ? sibling.lfs : undefined;
      const sha256 = typeof lfs?.sha256 === "string" && SHA256_PATTERN.test(lfs.sha256) ? lfs.sha256 : undefined;
      const size = byteCount(lfs?.size) ?? byteCount(sibling.size);
      files.push(Object.freeze({ path: sibling.rfilename, size, sha256 }));
    }
    const commit = isRecord(body) && typeof body.sha === "string" && COMMIT_PATTERN.test(body.sha) ? body.sha : undefined;
    return Object.freeze({ commit, files: Object.freeze(files) });
  }

  /**
   * Reads the model card (README.md) and its lineage fields; `undefined` when the repository
   * has no card.
   */
  async readModelCard(repo: string, revision: string): Promise<ModelCard | undefined> {
    const url = this.fileUrl(repo, revision, "README.md", { skipFileCheck: true });
    const { response } = await this.#request(url, { headers: { accept: "text/plain, text/markdown, */*" } });
    if (response.status === 404) {
      await discard(response);
      return undefined;
    }
    await this.#assertOk(response, `the model card of ${repo}@${revision}`);
    let text: string;
    try {
      text = await readCapped(response, MAX_CARD_BYTES);
    } catch (error) {
      throw new UpstreamError(`The model card of ${repo}@${revision} broke off: ${errorText(error)}`, { cause: error });
    }
    return text === "" ? EMPTY_MODEL_CARD : parseModelCard(text);
  }

  /**
   * Asks the hub, with a HEAD request that follows only same-origin redirects, for a file's
   * declared sha256 and size. The hub answers an LFS file with a redirect to its CDN carrying
   * `X-Linked-Etag` (the sha256) and `X-Linked-Size`; that redirect is not followed.
   *
   * @throws NotFoundError when the file does not exist; UpstreamError otherwise.
   */
  async headFile(repo: string, revision: string, file: string): Promise<HubFileHead> {
    const url = this.fileUrl(repo, revision, file);
    const { response } = await this.#request(url, {
      method: "HEAD",
      headers: { "accept-encoding": "identity" },
      followCrossOrigin: false,
    });
    await discard(response);
    if (response.status === 404) throw new NotFoundError(`The hub has no file '${file}' in ${repo}@${revision}`);
    if (!isRedirectStatus(response.status)) await this.#assertOk(response, `${file} in ${repo}@${revision}`);
    const headers = response.headers;
    const sha256 = etagSha256(headers.get("x-linked-etag")) ?? etagSha256(headers.get("etag"));
    const linkedSize = byteCount(Number(headers.get("x-linked-size") ?? Number.NaN));
    const size = linkedSize ?? (response.ok ? byteCount(Number(headers.get("content-length") ?? Number.NaN)) : undefined);
    const commitHeader = headers.get("x-repo-commit");
    const commit = commitHeader !== null && COMMIT_PATTERN.test(commitHeader) ? commitHeader : undefined;
    return Object.freeze({ url, sha256, size, commit });
  }

  /** The resolve URL of a file: `{endpoint}/{repo}/resolve/{revision}/{file}`. */
  fileUrl(repo: string, revision: string, file: string, options: { skipFileCheck?: boolean } = {}): string {
    assertHubRepo(repo);
    assertHubRevision(revision);
    if (!options.skipFileCheck) assertHubFilePath(file);
    const path = file.split("/").map(encodeURIComponent).join("/");
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
  }

  /** Downloads a URL with {@link downloadFile}, sending this client's token to the hub's origin only. */
  downloadFile(options: Omit<DownloadFileOptions, "token" | "fetch">): Promise<DownloadFileResult> {
    return downloadFile({ ...options, token: this.#tokenFor(options.url), fetch: this.#fetch });
  }

  #request(url: string, options: Omit<FetchWithRedirectsOptions, "token" | "fetch">) {
    return fetchWithRedirects(url, { ...options, token: this.#tokenFor(url), fetch: this.#fetch });
  }

  /** The token, for URLs on the hub's own origin only. */
  #tokenFor(url: string): string | undefined {
    return new URL(url).origin === new URL(this.endpoint).origin ? this.#token : undefined;
  }

  async #assertOk(response: Response, what: string): Promise<void> {
    if (response.ok) return;
    await discard(response);
    const hint =
      response.status === 401 || response.status === 403
        ? this.#token === undefined
          ? ": it may be private or gated; set a token (HF_TOKEN)"
          : ": the token may lack access to it"
        : "";
    throw new UpstreamError(`The hub refused ${what} (HTTP ${response.status} from ${describeUrl(response.url || this.endpoint)})${hint}`, {
      status: response.status,
    });
  }
}

/**
 * Chooses the GGUF file to pull: the one named, or else the only `.gguf` file of the listing.
 *
 * @throws NotFoundError when the named file is missing or the repository has no GGUF file;
 *   InvalidRequestError (param `ref`) listing the candidates when there are several.
 */
export function chooseModelFile(listing: HubFileListing, file: string | undefined, label: string): HubFile {
  const candidates = listing.files.filter((entry) => entry.path.toLowerCase().endsWith(".gguf"));
  const names = candidates.map((entry) => entry.path).join(", ");
  if (file !== undefined) {
    const found = listing.files.find((entry) => entry.path === file);
    if (found === undefined) {
      throw new NotFoundError(`${label} has no file '${file}'; its GGUF files: ${names === "" ? "(none)" : names}`);
    }
    return found;
  }
  if (candidates.length === 0) throw new NotFoundError(`${label} has no .gguf file`);
  if (candidates.length > 1) {
    throw new InvalidRequestError(`${label} has ${candidates.length} GGUF files; name one as hf:OWNER/REPO/FILE.gguf: ${names}`, {
      param: "ref",
    });
  }
  const chosen = candidates[0]!;
  assertHubFilePath(chosen.path);
  return chosen;
}

function normalizeEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (error) {
    throw new ConfigError(`Hub endpoint '${endpoint}' is not a URL`, { cause: error, param: "hubEndpoint" });
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "" || url.username !== "") {
    throw new ConfigError(`Hub endpoint '${endpoint}' must be a plain http(s) URL without query, fragment or credentials`, {
      param: "hubEndpoint",
    });
  }
  return url.href.replace(/\/+$/, "");
}

/** The sha256 in an ETag value (`"<hex>"`, `W/"<hex>"`), or `undefined` when it is not one. */
function etagSha256(header: string | null): string | undefined {
  const value = header?.trim().replace(/^W\//, "").replace(/^"|"$/g, "").toLowerCase();
  return value !== undefined && SHA256_PATTERN.test(value) ? value : undefined;
}

function byteCount(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

/** Reads a text body of at most `limit` bytes; a longer one is cut there (front matter comes first). */
async function readCapped(response: Response, limit: number): Promise<string> {
  if (response.body === null) return "";
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  while (length < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}
