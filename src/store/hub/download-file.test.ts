import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { AbortedError, DigestMismatchError, NotFoundError, UpstreamError } from "../../core/errors.js";
import { downloadFile } from "./download-file.js";
import { FakeHub, seededBytes, sha256Hex } from "../../test-support/fake-hub.js";

const CHUNK_SLACK = 64 * 1024;
const content = seededBytes(1536 * 1024 + 77, 1);
const sha256 = sha256Hex(content);

describe("downloadFile", () => {
  let hub: FakeHub;
  let cdnHub: FakeHub;
  let directory: string;
  let destination: string;
  let url: string;

  before(async () => {
    const repos = [{ repo: "acme/blob", files: [{ path: "model.gguf", content }] }];
    hub = await FakeHub.start({ repos });
    cdnHub = await FakeHub.start({ repos, cdn: true });
    url = `${hub.endpoint}/acme/blob/resolve/main/model.gguf`;
  });
  after(async () => {
    await hub.close();
    await cdnHub.close();
  });
  beforeEach(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
    directory = await mkdtemp(join(tmpdir(), "grove-download-"));
    destination = join(directory, `${sha256}.partial`);
    for (const server of [hub, cdnHub]) {
      server.requests.length = 0;
      server.bytesSent = 0;
      server.faults = {};
    }
  });
  after(() => rm(directory, { recursive: true, force: true }));

  test("downloads, verifies and reports progress up to the total", async () => {
    const progress: Array<[number, number | undefined]> = [];
    const result = await downloadFile({
      url,
      destination,
      expectedSha256: sha256,
      expectedSize: content.length,
      onProgress: (received, total) => progress.push([received, total]),
    });
    assert.deepEqual(result, { path: destination, sha256, size: content.length, resumedFrom: 0 });
    assert.ok((await readFile(destination)).equals(content));
    assert.deepEqual(progress.at(-1), [content.length, content.length]);
    assert.equal(hub.fileRequests()[0]?.headers.range, undefined);
  });

  test("resumes with a Range request after the server cut the connection half-way", async () => {
    hub.faults.cutAfterBytes = Math.floor(content.length / 2);
    await assert.rejects(downloadFile({ url, destination, expectedSha256: sha256, attempts: 1 }), UpstreamError);
    const kept = (await stat(destination)).size;
    assert.ok(kept > 0 && kept <= content.length / 2, `partial file holds ${kept} bytes`);

    const result = await downloadFile({ url, destination, expectedSha256: sha256, expectedSize: content.length });
    const requests = hub.fileRequests();
    assert.equal(requests.length, 2);
    assert.equal(requests[1]!.headers.range, `bytes=${kept}-`);
    assert.equal(result.resumedFrom, kept);
    assert.equal(result.sha256, sha256);
    assert.ok(hub.bytesSent <= content.length + CHUNK_SLACK, `sent ${hub.bytesSent} bytes for a ${content.length}-byte file`);
    assert.ok((await readFile(destination)).equals(content));
  });

  test("retries within one call, resuming from the bytes already written", async () => {
    hub.faults.cutAfterBytes = 300_000;
    const result = await downloadFile({ url, destination, expectedSha256: sha256, retryDelayMs: 0 });
    assert.equal(result.sha256, sha256);
    assert.ok(result.resumedFrom > 0);
    assert.equal(hub.fileRequests()[1]!.headers.range, `bytes=${result.resumedFrom}-`);
    assert.ok(hub.bytesSent <= content.length + CHUNK_SLACK);
  });

  test("a sha256 mismatch deletes the partial file and names both digests", async () => {
    const wrong = "ab".repeat(32);
    const error = await downloadFile({ url, destination, expectedSha256: wrong }).catch((caught: unknown) => caught);
    assert.ok(error instanceof DigestMismatchError);
    assert.equal(error.code, "digest_mismatch");
    assert.match(error.message, new RegExp(`${wrong}[\\s\\S]*${sha256}`));
    assert.equal(existsSync(destination), false);
  });

  test("a corrupt prefix left by an earlier run fails verification and is deleted", async () => {
    await writeFile(destination, Buffer.alloc(1000, 7));
    await assert.rejects(downloadFile({ url, destination, expectedSha256: sha256 }), DigestMismatchError);
    assert.equal(existsSync(destination), false);
  });

  test("a body longer than the declared size stops at once", async () => {
    await assert.rejects(downloadFile({ url, destination, expectedSize: 1000 }), DigestMismatchError);
    assert.equal(existsSync(destination), false);
  });

  test("a 200 answer to a Range request restarts from zero", async () => {
    await writeFile(destination, content.subarray(0, 5000));
    hub.faults.ignoreRange = true;
    const result = await downloadFile({ url, destination, expectedSha256: sha256 });
    assert.equal(result.resumedFrom, 0);
    assert.equal(hub.fileRequests()[0]!.headers.range, "bytes=5000-");
    assert.ok((await readFile(destination)).equals(content));
  });

  test("416 with the full size means the partial file is already complete", async () => {
    await writeFile(destination, content);
    const result = await downloadFile({ url, destination, expectedSha256: sha256, expectedSize: content.length });
    assert.equal(result.resumedFrom, content.length);
    assert.equal(hub.bytesSent, 0);
  });

  test("a redirect to another host drops the Authorization header", async () => {
    const cdnUrl = `${cdnHub.endpoint}/acme/blob/resolve/main/model.gguf`;
    const result = await downloadFile({ url: cdnUrl, destination, expectedSha256: sha256, token: "hf_secret" });
    assert.equal(result.sha256, sha256);
    const first = cdnHub.requests.find((request) => request.host === "hub")!;
    const second = cdnHub.requests.find((request) => request.host === "cdn")!;
    assert.equal(first.headers.authorization, "Bearer hf_secret");
    assert.notEqual(new URL(cdnHub.cdnEndpoint).hostname, new URL(cdnHub.endpoint).hostname);
    assert.equal(second.headers.authorization, undefined);
  });

  test("a stalled transfer times out and keeps the partial file", async () => {
    hub.faults.stallAfterBytes = 100_000;
    const error = await downloadFile({ url, destination, chunkTimeoutMs: 300, attempts: 1 }).catch((caught: unknown) => caught);
    assert.ok(error instanceof UpstreamError, String(error));
    assert.match(error.message, /No data/);
    assert.ok((await stat(destination)).size > 0);
  });

  test("cancelling keeps the partial file and throws AbortedError", async () => {
    hub.faults.stallAfterBytes = 100_000;
    const controller = new AbortController();
    const pending = downloadFile({
      url,
      destination,
      signal: controller.signal,
      onProgress: (received) => {
        if (received > 0) controller.abort();
      },
    });
    await assert.rejects(pending, AbortedError);
    assert.ok(existsSync(destination));
  });

  test("404, a redirect loop and a malformed sha256 are clear errors", async () => {
    await assert.rejects(downloadFile({ url: `${hub.endpoint}/acme/blob/resolve/main/missing.gguf`, destination }), NotFoundError);
    hub.faults.redirectLoop = true;
    await assert.rejects(downloadFile({ url, destination }), /redirected more than 5 times/);
    hub.faults = {};
    await assert.rejects(downloadFile({ url, destination, expectedSha256: "nothex" }), /not 64 hex digits/);
  });
});
