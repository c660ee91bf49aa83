import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { digestOfBytes } from "../core/digest.js";
import { DigestMismatchError, InvalidRequestError } from "../core/errors.js";
import { BlobStore } from "./blob-store.js";

let directory: string;
let count = 0;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-blob-store-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A fresh store and a source file outside it. */
async function fixture(content = "hello blobs") {
  const root = join(directory, `store-${++count}`);
  const source = join(directory, `source-${count}.bin`);
  await writeFile(source, content);
  return { store: new BlobStore(root), source, digest: digestOfBytes(Buffer.from(content)) };
}

describe("BlobStore", () => {
  it("reports the bytes copied and hashed, copying or moving, up to the file's size", async () => {
    const content = "x".repeat(3 << 20);
    for (const mode of ["copy", "move"] as const) {
      const { store, source } = await fixture(content);
      const seen: [number, number][] = [];
      await store.putFile(source, { mode, onProgress: (done, total) => seen.push([done, total]) });
      assert.ok(seen.length >= 3, `${mode}: ${seen.length} reports`);
      assert.deepEqual(seen.at(-1), [content.length, content.length]);
      assert.ok(seen.every(([done, total], index) => total === content.length && (index === 0 || done > seen[index - 1]![0])));
    }
  });

  it("copies a file to blobs/sha256-<hex>, verified, leaving the source and no temp file", async () => {
    const { store, source, digest } = await fixture();
    const result = await store.putFile(source, { expectedDigest: digest });
    assert.deepEqual(result, { digest, size: 11, path: join(store.root, "blobs", `sha256-${digest.slice(7)}`), created: true });
    assert.equal(await readFile(result.path, "utf8"), "hello blobs");
    assert.ok(existsSync(source));
    assert.equal(await store.has(digest), true);
    assert.equal(await store.size(digest), 11);
    assert.deepEqual(await store.list(), [digest]);
    assert.deepEqual(await readdir(store.tempDirectory), []);
  });

  it("moves a file in when asked, consuming it", async () => {
    const { store, digest } = await fixture();
    const download = await store.createTempPath();
    assert.ok(download.startsWith(store.tempDirectory));
    await writeFile(download, "hello blobs");
    const result = await store.putFile(download, { mode: "move", expectedDigest: digest });
    assert.equal(result.created, true);
    assert.equal(existsSync(download), false);
    assert.deepEqual(await readdir(store.tempDirectory), []);
  });

  it("stores identical files once", async () => {
    const { store, source, digest } = await fixture();
    const first = await store.putFile(source);
    const second = await store.putFile(source);
    assert.equal(first.created, true);
    assert.equal(second.created, false);
    assert.equal(second.path, first.path);
    assert.deepEqual(await store.list(), [digest]);
    assert.deepEqual(await readdir(store.tempDirectory), []);
  });

  it("stores nothing when the digest differs, in either mode", async () => {
    const { store, source } = await fixture();
    const wrong = digestOfBytes(Buffer.from("something else"));
    await assert.rejects(store.putFile(source, { expectedDigest: wrong }), (error: unknown) => {
      assert.ok(error instanceof DigestMismatchError);
      assert.equal(error.expected, wrong);
      return true;
    });
    assert.ok(existsSync(source), "copy mode leaves the source");
    await assert.rejects(store.putFile(source, { expectedDigest: wrong, mode: "move" }), DigestMismatchError);
    assert.equal(existsSync(source), false, "move mode consumed the source");
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await readdir(store.tempDirectory), []);
  });

  it("stores nothing when the inspection of the stored bytes throws", async () => {
    const { store, source } = await fixture();
    let inspected = "";
    await assert.rejects(
      store.putFile(source, {
        inspect: async (tempPath) => {
          inspected = await readFile(tempPath, "utf8");
          throw new InvalidRequestError("not a model");
        },
      }),
      /not a model/,
    );
    assert.equal(inspected, "hello blobs");
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await readdir(store.tempDirectory), []);
  });

  it("refuses malformed digests before any file system call", async () => {
    const root = join(directory, "never-created");
    const store = new BlobStore(root);
    for (const digest of ["../x", "/abs", "sha256:../../etc/passwd", `sha256:${"A".repeat(64)}`, `sha256:${"a".repeat(63)}`, "sha256:a\\b", `sha256:${"a".repeat(63)}\u0000`, ""]) {
      assert.throws(() => store.pathOf(digest), InvalidRequestError);
      await assert.rejects(store.has(digest), InvalidRequestError);
      await assert.rejects(store.remove(digest), InvalidRequestError);
      await assert.rejects(store.putFile(join(directory, "missing"), { expectedDigest: digest as `sha256:${string}` }), InvalidRequestError);
    }
    assert.equal(existsSync(root), false);
  });

  it("removes blobs and ignores foreign files when listing", async () => {
    const { store, source, digest } = await fixture();
    await store.putFile(source);
    await writeFile(join(store.blobsDirectory, "notes.txt"), "not a blob");
    assert.deepEqual(await store.list(), [digest]);
    assert.equal(await store.remove(digest), true);
    assert.equal(await store.remove(digest), false);
    assert.equal(await store.size(digest), undefined);
    assert.deepEqual(await store.list(), []);
  });

  it("cleans temp files whose writer is gone, however fresh, and never a running writer's, however old", async () => {
    const { store } = await fixture();
    const running = await store.createTempPath();
    await writeFile(running, "123");
    const longAgo = new Date(Date.now() - 24 * 60 * 60 * 1000);
    await utimes(running, longAgo, longAgo);
    // A writer that crashed: a real process that wrote its temp file (and a tool's file beside it) and was killed.
    const child = spawnSync(process.execPath, [
      "--input-type=module",
      "-e",
      `import { BlobStore } from ${JSON.stringify(new URL("./blob-store.js", import.meta.url).href)};
       import { writeFileSync } from "node:fs";
       const path = await new BlobStore(${JSON.stringify(store.root)}).createTempPath();
       writeFileSync(path, "12345"); writeFileSync(path + ".partial", "67");
       process.kill(process.pid, "SIGKILL");`,
    ]);
    assert.equal(child.signal, "SIGKILL");
    const legacyOld = join(store.tempDirectory, "0b4d0f9e-6c1e-4d0e-9d57-1b7a8f1f0c11.partial");
    const legacyFresh = join(store.tempDirectory, "1b4d0f9e-6c1e-4d0e-9d57-1b7a8f1f0c11.partial");
    await writeFile(legacyOld, "1234567");
    await writeFile(legacyFresh, "1");
    await utimes(legacyOld, longAgo, longAgo);
    assert.equal((await readdir(store.tempDirectory)).length, 5);
    assert.deepEqual(await store.cleanTemp(), { files: 3, bytes: 5 + 2 + 7 });
    assert.deepEqual((await readdir(store.tempDirectory)).sort(), [basename(legacyFresh), basename(running)].sort());
    assert.deepEqual(await store.cleanTemp({ unknownOlderThanMs: 0 }), { files: 1, bytes: 1 });
    assert.deepEqual(await readdir(store.tempDirectory), [basename(running)]);
  });

  it("re-hashes a blob to report its actual digest", async () => {
    const { store, source, digest } = await fixture();
    const { path } = await store.putFile(source);
    assert.equal(await store.digestOf(digest), digest);
    await writeFile(path, "tampered");
    assert.equal(await store.digestOf(digest), digestOfBytes(Buffer.from("tampered")));
    await store.remove(digest);
    assert.equal(await store.digestOf(digest), undefined);
  });
});
