import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { ModelListing, TreeNode } from "../../store/model-store.js";
import { sharedRegistryFixture } from "../../test-support/shared-registry-fixture.js";
import { runCli, spawnCli } from "../../test-support/run-cli.js";
import type { ShowResult } from "./store-commands.js";

// `grove import/ls/show/tree/tag/rm/alias --database URL` on two homes (two replicas) sharing one registry.

const shared = sharedRegistryFixture("grove-store-cli-shared-");

describe("store commands with --database", () => {
  it("work against the shared registry from two homes", async () => {
    const database = await shared.server.createDatabase("cli_shared");
    const a = ["--home", join(shared.directory, "a"), "--database", database];
    const b = ["--home", join(shared.directory, "b"), "--database", database];
    const ok = async (...args: string[]) => {
      const run = await runCli(...args);
      assert.equal(run.code, 0, run.stderr);
      return run.stdout;
    };

    await ok("import", shared.files.base.path, "--name", "tiny:f16", ...a);
    const listed = JSON.parse(await ok("ls", "--json", ...b)) as ModelListing[];
    assert.deepEqual(listed.map((model) => [model.digest, model.names, model.local]), [[shared.files.base.digest, ["tiny:f16"], false]]);
    assert.match(await ok("ls", ...b), /LOCAL[\s\S]*tiny:f16.*\bno\b/);
    assert.doesNotMatch(await ok("ls", ...a), /LOCAL/);

    await ok("tag", "tiny:f16", "tiny:stable", ...b);
    const shown = JSON.parse(await ok("show", "tiny:stable", "--json", ...a)) as ShowResult;
    assert.deepEqual(shown.names, ["tiny:f16", "tiny:stable"]);

    await ok("import", shared.files.tuned.path, "--name", "tuned:f16", "--base", "tiny:stable", "--relation", "finetune", ...b);
    const trees = JSON.parse(await ok("tree", "--json", ...a)) as TreeNode[];
    assert.deepEqual(trees.map((node) => [node.names, node.children.map((child) => child.names)]), [[["tiny:f16", "tiny:stable"], [["tuned:f16"]]]]);

    await ok("alias", "set", "chat", "tuned:f16", ...a);
    assert.match(await ok("alias", "ls", ...b), /chat:latest/);
    await ok("alias", "rm", "chat", ...b);

    await ok("rm", "tuned:f16", ...a);
    assert.deepEqual((JSON.parse(await ok("ls", "--json", ...b)) as ModelListing[]).map((model) => model.names), [["tiny:f16", "tiny:stable"]]);
    // Without --database, home b's own registry is empty.
    assert.deepEqual(JSON.parse(await ok("ls", "--json", "--home", join(shared.directory, "b"))), []);
    // GROVE_DATABASE_URL does what --database does.
    const viaEnv = await spawnCli(["ls", "--json", "--home", join(shared.directory, "b")], { GROVE_DATABASE_URL: database }).result;
    assert.equal((JSON.parse(viaEnv.stdout) as ModelListing[]).length, 1);
  });

  it("fails with a clear message for an unreachable database", async () => {
    const run = await runCli("ls", "--home", join(shared.directory, "c"), "--database", "postgres://grove@127.0.0.1:1/none");
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /Cannot connect to PostgreSQL at postgres:\/\/grove@127\.0\.0\.1:1\/none/);
  });
});
