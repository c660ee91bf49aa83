import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A Hugging Face-style hub on loopback, for tests only: the model API, resolve URLs with Range
 * support, and optionally a CDN on a second loopback host that LFS files redirect to — the
 * layout `grove pull` meets on huggingface.co. It records every request and the file bytes it
 * sent, and can cut, stall or ignore ranges to test resumption.
 */

/** One file of a fake repository. */
export interface FakeHubFile {
  path: string;
  content: Buffer;
  /** Stored in LFS: listed with `lfs.sha256`, answered with `X-Linked-Etag`, redirected to the CDN. @default true */
  lfs?: boolean;
  /** A sha256 to declare instead of the real one (to test mismatches). */
  declaredSha256?: string;
}

/** One fake repository. */
export interface FakeHubRepo {
  repo: string;
  files: FakeHubFile[];
  /** README.md text; none when undefined. */
  readme?: string;
  /** The commit `main` points at. @default forty "c" */
  commit?: string;
  /** List files without `lfs` info even with `?blobs=true`. */
  hideLfsInListing?: boolean;
}

/** Ways the file routes misbehave. */
export interface FakeHubFaults {
  /** Destroy the socket after this many body bytes, on the next file response only. */
  cutAfterBytes?: number;
  /** Send this many body bytes, then nothing, on the next file response only. */
  stallAfterBytes?: number;
  /** Answer 200 with the whole file even when a Range was asked for. */
  ignoreRange?: boolean;
  /** Redirect every resolve request to itself. */
  redirectLoop?: boolean;
}

/** A request the fake hub or its CDN received. */
export interface FakeHubRequest {
  host: "hub" | "cdn";
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
}

/** Options of {@link FakeHub.start}. */
export interface FakeHubOptions {
  repos: FakeHubRepo[];
  /** Serve LFS files from a CDN on another loopback host (127.0.0.2) by a 302. @default false */
  cdn?: boolean;
}

/** The fake hub: start it, point a HubClient at `endpoint`, `close` it. */
export class FakeHub {
  readonly requests: FakeHubRequest[] = [];
  /** Faults for the next file responses; tests set these. */
  faults: FakeHubFaults = {};
  /** File body bytes sent by the hub and the CDN together. */
  bytesSent = 0;
  endpoint = "";
  cdnEndpoint = "";
  readonly #repos: Map<string, FakeHubRepo>;
  readonly #servers: Server[] = [];

  private constructor(options: FakeHubOptions) {
    this.#repos = new Map(options.repos.map((repo) => [repo.repo, repo]));
  }

  /** Starts the hub on 127.0.0.1 (and the CDN on 127.0.0.2, or `localhost` where that does not bind), ports 0. */
  static async start(options: FakeHubOptions): Promise<FakeHub> {
    const hub = new FakeHub(options);
    hub.endpoint = await hub.#listen("127.0.0.1", (request, response) => hub.#hub(request, response));
    if (options.cdn) {
      const cdnHandler = (request: IncomingMessage, response: ServerResponse) => hub.#cdn(request, response);
      hub.cdnEndpoint = await hub.#listen("127.0.0.2", cdnHandler).catch(() => hub.#listen("localhost", cdnHandler));
    }
    return hub;
  }

  /** Requests to file content (resolve URLs of .gguf files and the CDN), GET and HEAD. */
  fileRequests(method = "GET"): FakeHubRequest[] {
    return this.requests.filter(
      (request) => request.method === method && (request.host === "cdn" || (/\/resolve\//.test(request.path) && !request.path.endsWith("/README.md"))),
    );
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  }

  #listen(host: string, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
    return new Promise((resolve, reject) => {
      const server = createServer(handler);
      server.once("error", reject);
      server.listen(0, host, () => {
        this.#servers.push(server);
        resolve(`http://${host}:${(server.address() as AddressInfo).port}`);
      });
    });
  }

  #record(host: "hub" | "cdn", request: IncomingMessage): string {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    this.requests.push({ host, method: request.method ?? "GET", path, headers: request.headers });
    return path;
  }

  #hub(request: IncomingMessage, response: ServerResponse): void {
    const path = this.#record("hub", request);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (api) return this.#listing(api[1]!, api[2]!, request, response);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repo = resolve ? this.#repo(resolve[1]!, resolve[2]!) : undefined;
    if (!resolve || !repo) return void json(response, 404, { error: "Repository not found" });
    if (this.faults.redirectLoop) return void response.writeHead(302, { location: request.url }).end();
    const name = resolve[3]!;
    if (name === "README.md") {
      if (repo.readme === undefined) return void json(response, 404, { error: "Entry not found" });
      return void response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end(repo.readme);
    }
    const file = repo.files.find((candidate) => candidate.path === name);
    if (!file) return void json(response, 404, { error: "Entry not found" });
    const sha256 = declared(file);
    const headers = { "x-repo-commit": commit(repo), etag: `"${gitBlobId(file.content)}"` };
    if ((file.lfs ?? true) && this.cdnEndpoint !== "") {
      response.writeHead(302, {
        ...headers,
        location: `${this.cdnEndpoint}/blobs/${sha256}?signature=secret`,
        "x-linked-etag": `"${sha256}"`,
        "x-linked-size": String(file.content.length),
      });
      return void response.end();
    }
    this.#serveBytes(request, response, file.content, { ...headers, ...((file.lfs ?? true) ? { etag: `"${sha256}"` } : {}) });
  }

  #cdn(request: IncomingMessage, response: ServerResponse): void {
    const path = this.#record("cdn", request);
    const sha256 = /^\/blobs\/([0-9a-f]{64})$/.exec(path)?.[1];
    for (const repo of this.#repos.values()) {
      const file = repo.files.find((candidate) => declared(candidate) === sha256);
      if (file) return this.#serveBytes(request, response, file.content, { etag: `"cdn-${sha256}"` });
    }
    response.writeHead(404).end();
  }

  #listing(name: string, revision: string, request: IncomingMessage, response: ServerResponse): void {
    const repo = this.#repo(name, revision);
    if (!repo) return void json(response, 404, { error: "Repository not found" });
    const blobs = new URL(request.url ?? "/", "http://x").searchParams.get("blobs") === "true";
    const files = [...repo.files.map((file) => ({ path: file.path, content: file.content, lfs: file.lfs ?? true, sha256: declared(file) }))];
    if (repo.readme !== undefined) files.push({ path: "README.md", content: Buffer.from(repo.readme), lfs: false, sha256: "" });
    const siblings = files.map((file) => ({
      rfilename: file.path,
      ...(blobs ? { blobId: gitBlobId(file.content), size: file.lfs ? 134 : file.content.length } : {}),
      ...(blobs && file.lfs && !repo.hideLfsInListing ? { lfs: { sha256: file.sha256, size: file.content.length, pointerSize: 134 } } : {}),
    }));
    json(response, 200, { id: repo.repo, modelId: repo.repo, sha: commit(repo), private: false, siblings });
  }

  #repo(name: string, revision: string): FakeHubRepo | undefined {
    const repo = this.#repos.get(name);
    return repo && (revision === "main" || revision === commit(repo)) ? repo : undefined;
  }

  /** Answers GET/HEAD with Range support (`bytes=N-`) and the faults in force. */
  #serveBytes(request: IncomingMessage, response: ServerResponse, content: Buffer, headers: Record<string, string>): void {
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
    let start = 0;
    if (range && !this.faults.ignoreRange) {
      start = Number(range[1]);
      if (start >= content.length) {
        return void response.writeHead(416, { ...headers, "content-range": `bytes */${content.length}` }).end();
      }
      response.writeHead(206, { ...headers, "content-length": content.length - start, "content-range": `bytes ${start}-${content.length - 1}/${content.length}` });
    } else {
      response.writeHead(200, { ...headers, "content-length": content.length, "accept-ranges": "bytes" });
    }
    if (request.method === "HEAD") return void response.end();
    const body = content.subarray(start);
    const { cutAfterBytes, stallAfterBytes } = this.faults;
    if (cutAfterBytes !== undefined || stallAfterBytes !== undefined) {
      this.faults = { ...this.faults, cutAfterBytes: undefined, stallAfterBytes: undefined };
      const part = body.subarray(0, cutAfterBytes ?? stallAfterBytes);
      this.bytesSent += part.length;
      // The callback runs once the bytes are handed to the kernel, so the client can read them first.
      response.write(part, () => {
        if (cutAfterBytes !== undefined) response.socket?.destroy();
      });
      return;
    }
    this.bytesSent += body.length;
    response.end(body);
  }
}

/** Deterministic bytes of a given length from a seed (sha256 in counter mode). */
export function seededBytes(length: number, seed: number): Buffer {
  const blocks: Buffer[] = [];
  for (let index = 0; index * 32 < length; index++) blocks.push(createHash("sha256").update(`${seed}:${index}`).digest());
  return Buffer.concat(blocks).subarray(0, length);
}

/** sha256 of bytes, hex. */
export function sha256Hex(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

function declared(file: FakeHubFile): string {
  return file.declaredSha256 ?? sha256Hex(file.content);
}

function commit(repo: FakeHubRepo): string {
  return repo.commit ?? "c".repeat(40);
}

function gitBlobId(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
