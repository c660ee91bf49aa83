import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError } from "../core/errors.js";
import { digest, model, registryContract } from "../test-support/registry-contract.js";
import { SQLITE_MIGRATIONS } from "./sqlite-migrations.js";
import { SqliteRegistry } from "./sqlite-registry.js";

let directory: string;
let count = 0;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-registry-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

function databasePath(): string {
  return join(directory, `registry-${++count}.db`);
}

describe("SqliteRegistry", () => {
  it("applies migrations once; reopening is idempotent; a newer schema is refused", async () => {
    const path = databasePath();
    const first = SqliteRegistry.open(path);
    assert.deepEqual(await first.appliedMigrations(), SQLITE_MIGRATIONS.map((migration) => migration.version));
    await first.addModel(model("aa"));
    await first.close();
    const second = SqliteRegistry.open(path);
    assert.deepEqual(await second.appliedMigrations(), SQLITE_MIGRATIONS.map((migration) => migration.version));
    assert.equal((await second.listModels()).length, 1);
    await second.close();
    // A registry written before the alias history (schema 1) gains it on open, its rows kept.
    const old = databasePath();
    const v1 = SqliteRegistry.open(old, { migrations: SQLITE_MIGRATIONS.slice(0, 1) });
    await v1.addModel(model("ba"));
    await v1.close();
    const upgraded = SqliteRegistry.open(old);
    assert.deepEqual(await upgraded.appliedMigrations(), [1, 2, 3]);
    assert.equal((await upgraded.listModels()).length, 1);
    const event = await upgraded.recordAliasEvent({ alias: "chat:latest", at: "2026-11-29T00:00:00.000Z", action: "set", from: [], to: [{ digest: model("ba").digest, weight: 1 }], tasks: [], scores: [], decision: "applied", reason: "test" });
    assert.deepEqual(await upgraded.aliasHistory("chat:latest"), [event]);
    // Schema 3 rebuilt the edges table to admit the `config` relation.
    await upgraded.addModel(model("bb"));
    await upgraded.addEdge({ child: digest("bb"), parent: digest("ba"), relation: "config", recipe: null });
    assert.equal((await upgraded.parentsOf(digest("bb")))[0]?.relation, "config");
    await upgraded.close();
    assert.throws(() => SqliteRegistry.open(path, { migrations: [] }), ConfigError);
  });

  registryContract(async () => SqliteRegistry.open(databasePath()));

  it("commits or rolls back a transaction as a whole, and holds other callers until it ends", async () => {
    const registry = SqliteRegistry.open(databasePath());
    await assert.rejects(
      registry.transaction(async (transaction) => {
        await transaction.addModel(model("d0"));
        throw new Error("abort");
      }),
      /abort/,
    );
    assert.equal(await registry.getModel(digest("d0")), undefined);

    const order: string[] = [];
    let view: unknown;
    const transaction = registry.transaction(async (inner) => {
      view = inner;
      await inner.addModel(model("d1"));
      await new Promise((resolve) => setImmediate(resolve));
      order.push("transaction");
      return "done";
    });
    const outside = registry.getModel(digest("d1")).then((record) => order.push(`outside saw ${record === undefined ? "nothing" : "d1"}`));
    assert.equal(await transaction, "done");
    await outside;
    assert.deepEqual(order, ["transaction", "outside saw d1"]);
    await assert.rejects((view as SqliteRegistry).listModels(), /transaction has ended/);
    await registry.close();
  });

  it("sees another connection's commits (WAL, one file shared by processes)", async () => {
    const path = databasePath();
    const writer = SqliteRegistry.open(path);
    const reader = SqliteRegistry.open(path);
    await writer.addModel(model("e0"));
    assert.equal((await reader.getModel(digest("e0")))?.digest, digest("e0"));
    await writer.close();
    await reader.close();
  });
});
