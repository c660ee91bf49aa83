import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, ModelNotLocalError } from "../core/errors.js";
import { sharedRegistryFixture } from "../test-support/shared-registry-fixture.js";
import { AliasBook } from "./alias-book.js";
import { ModelStore } from "./model-store.js";

// Two replicas: two ModelStores with their own homes (blob folders) on one PostgreSQL registry.

const shared = sharedRegistryFixture("grove-shared-registry-");
let count = 0;

/** Two stores on one fresh database, each with its own home. */
async function replicas(): Promise<[ModelStore, ModelStore]> {
  const database = await shared.server.createDatabase(`shared_${++count}`);
  const a = await ModelStore.open(join(shared.directory, `a-${count}`), { database });
  const b = await ModelStore.open(join(shared.directory, `b-${count}`), { database });
  return [a, b];
}

describe("ModelStore on a shared PostgreSQL registry", () => {
  it("lists on B what A imported (not local there), resolves B's names on A, and shares aliases", async () => {
    const [a, b] = await replicas();
    try {
      await a.importFile(shared.files.base.path, { name: "tiny:f16" });
      const onB = await b.list();
      assert.deepEqual(onB.map((model) => [model.digest, model.names, model.local]), [[shared.files.base.digest, ["tiny:f16"], false]]);
      assert.deepEqual((await a.list()).map((model) => model.local), [true]);

      // B names it; A resolves the name.
      await b.tag("tiny:f16", "tiny:stable");
      assert.equal((await a.resolve("tiny:stable")).digest, shared.files.base.digest);
      assert.equal((await b.show("tiny:stable")).model.digest, shared.files.base.digest);

      // Lineage recorded on B (B imports a fork of A's model: the base need not be local).
      await b.importFile(shared.files.tuned.path, { name: "tiny-chat:f16", base: "tiny:stable", relation: "finetune" });
      assert.deepEqual((await a.tree()).map((node) => [node.names, node.children.map((child) => child.names)]), [[["tiny:f16", "tiny:stable"], [["tiny-chat:f16"]]]]);

      // An alias set on A is seen on B.
      await new AliasBook(a).set("chat", [{ ref: "tiny-chat:f16", weight: 3 }, { ref: "tiny:f16", weight: 1 }]);
      assert.deepEqual((await b.registry.getAlias("chat:latest"))?.targets.map((target) => target.weight).sort(), [1, 3]);

      // Serving needs the file here: B has the fork, not the base; A the reverse.
      assert.equal(await b.localPath(shared.files.tuned.digest), b.blobs.pathOf(shared.files.tuned.digest));
      await assert.rejects(b.localPath(shared.files.base.digest, "tiny:f16"), (error: unknown) => {
        assert.ok(error instanceof ModelNotLocalError);
        assert.equal(error.code, "model_not_local");
        assert.match(error.message, /'tiny:f16'.*not on this machine.*import or pull it/);
        return true;
      });
      await b.importFile(shared.files.base.path);
      assert.equal(await b.localPath(shared.files.base.digest), b.blobs.pathOf(shared.files.base.digest));

      // gc on A keeps its blob (the shared registry references it); rm on B removes it for both.
      assert.deepEqual((await a.gc()).removedBlobs, []);
      await assert.rejects(b.remove("tiny:f16"), /fork/);
      await new AliasBook(b).remove("chat");
      await b.remove("tiny-chat:f16");
      assert.deepEqual((await a.list()).map((model) => model.names), [["tiny:f16", "tiny:stable"]]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("keeps one model row when A and B import the same file at once", async () => {
    const [a, b] = await replicas();
    try {
      const results = await Promise.all([a.importFile(shared.files.base.path, { name: "tiny:a" }), b.importFile(shared.files.base.path, { name: "tiny:b" })]);
      assert.deepEqual(results.map((result) => result.model.digest), [shared.files.base.digest, shared.files.base.digest]);
      assert.equal(results.filter((result) => result.created).length, 1);
      assert.deepEqual(results.map((result) => result.blobCreated), [true, true]);
      const listed = await a.list();
      assert.equal(listed.length, 1);
      assert.deepEqual(listed[0]!.names, ["tiny:a", "tiny:b"]);
      assert.equal(listed[0]!.createdAt, results.find((result) => result.created)!.model.createdAt);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("refuses a bad database URL with a ConfigError naming the setting", async () => {
    await assert.rejects(ModelStore.open(join(shared.directory, "bad"), { database: "postgres://grove@127.0.0.1:1/none" }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /Cannot connect to PostgreSQL at postgres:\/\/grove@127\.0\.0\.1:1\/none.*--database \(GROVE_DATABASE_URL\)/);
      return true;
    });
  });
});
