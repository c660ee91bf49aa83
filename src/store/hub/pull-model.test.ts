import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { DigestMismatchError, InvalidRequestError, NotFoundError, UpstreamError } from "../../core/errors.js";
import { FakeHub, seededBytes, sha256Hex } from "../../test-support/fake-hub.js";
import { HubClient } from "./hub-client.js";
import { pullModel } from "./pull-model.js";
import { ownedTempName } from "../temp-owner.js";

const CHUNK_SLACK = 64 * 1024;
const model = seededBytes(1024 * 1024 + 5, 3);
const quantized = seededBytes(300_000, 4);
const small = seededBytes(2048, 5);
const README = "---\nlicense: apache-2.0\nbase_model:\n- acme/base-1b\nbase_model_relation: quantized\n---\n# Tiny GGUF\n";

describe("pullModel", () => {
  let hub: FakeHub;
  let client: HubClient;
  let partialDirectory: string;

  before(async () => {
    hub = await FakeHub.start({
      cdn: true,
      repos: [
        { repo: "acme/tiny-GGUF", readme: README, files: [{ path: "tiny.f16.gguf", content: model }] },
        { repo: "acme/two-GGUF", files: [{ path: "a.Q8_0.gguf", content: model }, { path: "sub/b.Q4_0.gguf", content: quantized }] },
        { repo: "acme/liar-GGUF", files: [{ path: "x.gguf", content: quantized, declaredSha256: "0".repeat(64) }] },
        { repo: "acme/plain-GGUF", files: [{ path: "small.gguf", content: small, lfs: false }] },
        { repo: "acme/head-only", hideLfsInListing: true, files: [{ path: "q.gguf", content: quantized }] },
      ],
    });
    client = new HubClient({ endpoint: hub.endpoint, token: "hf_secret" });
  });
  after(() => hub.close());
  beforeEach(async () => {
    if (partialDirectory) await rm(dirname(partialDirectory), { recursive: true, force: true });
    partialDirectory = join(await mkdtemp(join(tmpdir(), "grove-pull-")), "partial");
    hub.requests.length = 0;
    hub.bytesSent = 0;
    hub.faults = {};
  });
  after(() => rm(dirname(partialDirectory), { recursive: true, force: true }));

  test("pulls the only GGUF through the CDN, verified, with the card's lineage", async () => {
    const progress: number[] = [];
    const result = await pullModel({ ref: "hf:acme/tiny-GGUF", client, partialDirectory, onProgress: (received) => progress.push(received) });
    assert.equal(result.alreadyStored, false);
    if (result.alreadyStored) return;
    assert.equal(result.path, join(partialDirectory, ownedTempName(`pull-${sha256Hex(model)}.partial`)));
    assert.equal(result.sha256, sha256Hex(model));
    assert.equal(result.size, model.length);
    assert.equal(result.verified, true);
    assert.ok((await readFile(result.path)).equals(model));
    assert.deepEqual(result.card, { baseModels: ["acme/base-1b"], relation: "quantized", license: "apache-2.0" });
    assert.deepEqual(result.source, {
      endpoint: hub.endpoint,
      repo: "acme/tiny-GGUF",
      revision: "main",
      commit: "c".repeat(40),
      file: "tiny.f16.gguf",
      ref: "hf:acme/tiny-GGUF/tiny.f16.gguf@main",
    });
    assert.equal(progress.at(-1), model.length);
    const hubRequests = hub.requests.filter((request) => request.host === "hub");
    const cdnRequests = hub.requests.filter((request) => request.host === "cdn");
    assert.ok(hubRequests.every((request) => request.headers.authorization === "Bearer hf_secret"));
    assert.equal(cdnRequests.length, 1);
    assert.equal(cdnRequests[0]!.headers.authorization, undefined);
    // Pinned to the listed commit, so a moving branch cannot swap the file mid-pull.
    assert.ok(hub.fileRequests()[0]!.path.includes(`/resolve/${"c".repeat(40)}/`));
  });

  test("pulling a stored file again downloads nothing", async () => {
    const stored = new Set([sha256Hex(model)]);
    const result = await pullModel({ ref: "hf:acme/tiny-GGUF", client, partialDirectory, isAlreadyStored: (sha256) => stored.has(sha256) });
    assert.deepEqual(
      { alreadyStored: result.alreadyStored, sha256: result.sha256, relation: result.card.relation },
      { alreadyStored: true, sha256: sha256Hex(model), relation: "quantized" },
    );
    assert.equal(hub.fileRequests("GET").length + hub.fileRequests("HEAD").length, 0);
    assert.equal(hub.bytesSent, 0);
    assert.equal(existsSync(partialDirectory), false);
  });

  test("a rerun after a broken pull resumes the same partial file", async () => {
    hub.faults.cutAfterBytes = Math.floor(model.length / 2);
    await assert.rejects(pullModel({ ref: "hf:acme/tiny-GGUF", client, partialDirectory, attempts: 1 }), UpstreamError);
    const partial = join(partialDirectory, ownedTempName(`pull-${sha256Hex(model)}.partial`));
    const kept = (await stat(partial)).size;
    assert.ok(kept > 0);
    // As if the pull had run in a process that died: the next pull adopts its partial file.
    await rename(partial, join(partialDirectory, ownedTempName(`pull-${sha256Hex(model)}.partial`, 2 ** 31 - 2)));
    const result = await pullModel({ ref: "hf:acme/tiny-GGUF", client, partialDirectory });
    assert.equal(result.alreadyStored, false);
    assert.equal(!result.alreadyStored && result.resumedFrom, kept);
    assert.equal(hub.fileRequests().filter((request) => request.host === "cdn").at(-1)!.headers.range, `bytes=${kept}-`);
    assert.ok(hub.bytesSent <= model.length + CHUNK_SLACK, `sent ${hub.bytesSent} bytes for ${model.length}`);
  });

  test("a named file in a folder, at a revision", async () => {
    const result = await pullModel({ ref: `hf:acme/two-GGUF/sub/b.Q4_0.gguf@${"c".repeat(40)}`, client, partialDirectory });
    assert.equal(result.sha256, sha256Hex(quantized));
    assert.deepEqual(result.card, { baseModels: [], relation: undefined, license: undefined });
  });

  test("a declared sha256 the bytes do not match leaves nothing behind", async () => {
    const error = await pullModel({ ref: "hf:acme/liar-GGUF", client, partialDirectory }).catch((caught: unknown) => caught);
    assert.ok(error instanceof DigestMismatchError);
    assert.match(error.message, new RegExp(`${"0".repeat(64)}[\\s\\S]*${sha256Hex(quantized)}`));
    assert.deepEqual(await readdir(partialDirectory), []);
  });

  test("falls back to the HEAD's X-Linked-Etag when the listing has no LFS info", async () => {
    const result = await pullModel({ ref: "hf:acme/head-only", client, partialDirectory });
    assert.equal(!result.alreadyStored && result.verified, true);
    assert.equal(hub.fileRequests("HEAD").length, 1);
  });

  test("a file without a declared sha256 is downloaded unverified under a name from its URL", async () => {
    const result = await pullModel({ ref: "hf:acme/plain-GGUF", client, partialDirectory });
    assert.equal(result.alreadyStored, false);
    if (result.alreadyStored) return;
    assert.equal(result.verified, false);
    assert.equal(result.sha256, sha256Hex(small));
    assert.match(result.path, /\.pull-url-[0-9a-f]{64}\.partial$/);
  });

  test("unknown repositories, missing files, several candidates and bad refs are clear errors", async () => {
    await assert.rejects(pullModel({ ref: "hf:acme/missing", client, partialDirectory }), NotFoundError);
    await assert.rejects(pullModel({ ref: "hf:acme/tiny-GGUF/nope.gguf", client, partialDirectory }), /no file 'nope\.gguf'.*tiny\.f16\.gguf/);
    await assert.rejects(
      pullModel({ ref: "hf:acme/two-GGUF", client, partialDirectory }),
      (error: unknown) => error instanceof InvalidRequestError && /a\.Q8_0\.gguf, sub\/b\.Q4_0\.gguf/.test(error.message),
    );
    await assert.rejects(pullModel({ ref: "hf:acme/../../etc", client, partialDirectory }), InvalidRequestError);
    assert.equal(hub.requests.filter((request) => request.path.includes("..")).length, 0);
  });
});
