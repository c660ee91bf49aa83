import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Digest } from "../core/digest.js";
import { AmbiguousModelError, ConfigError, ConflictError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import type { ModelRecord } from "./registry.js";
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

function digest(hex: string): Digest {
  return `sha256:${hex.padEnd(64, "0")}`;
}

function model(hex: string, extra: Partial<ModelRecord> = {}): ModelRecord {
  return {
    digest: digest(hex),
    size: 100,
    architecture: "llama",
    parameterCount: 1000,
    quantization: "F16",
    contextLength: 1024,
    vocabularySize: 512,
    card: { name: hex },
    createdAt: new Date().toISOString(),
    ...extra,
  };
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
    assert.deepEqual(await upgraded.appliedMigrations(), [1, 2]);
    assert.equal((await upgraded.listModels()).length, 1);
    const event = await upgraded.recordAliasEvent({ alias: "chat:latest", at: "2026-11-29T00:00:00.000Z", action: "set", from: [], to: [{ digest: model("ba").digest, weight: 1 }], tasks: [], scores: [], decision: "applied", reason: "test" });
    assert.deepEqual(await upgraded.aliasHistory("chat:latest"), [event]);
    await upgraded.close();
    assert.throws(() => SqliteRegistry.open(path, { migrations: [] }), ConfigError);
  });

  it("stores models idempotently and round-trips every field", async () => {
    const registry = SqliteRegistry.open(databasePath());
    const record = model("ab", { chatTemplate: "{{x}}", license: "mit", card: { author: "grove", tags: ["a"] } });
    assert.equal(await registry.addModel(record), true);
    assert.equal(await registry.addModel({ ...record, size: 5 }), false);
    assert.deepEqual(await registry.getModel(record.digest), record);
    assert.deepEqual(await registry.getModel(model("ac").digest), undefined);
    await registry.close();
  });

  it("finds a unique prefix and lists candidates for an ambiguous one", async () => {
    const registry = SqliteRegistry.open(databasePath());
    await registry.addModel(model("abcd01"));
    await registry.addModel(model("abcd02"));
    await registry.addModel(model("ef"));
    assert.equal((await registry.findByPrefix("abcd01")).digest, digest("abcd01"));
    assert.equal((await registry.findByPrefix("ef")).digest, digest("ef"));
    await assert.rejects(registry.findByPrefix("abcd"), (error: unknown) => {
      assert.ok(error instanceof AmbiguousModelError);
      assert.deepEqual(error.candidates, [digest("abcd01"), digest("abcd02")]);
      assert.match(error.message, /abcd010+.*abcd020+/);
      return true;
    });
    await assert.rejects(registry.findByPrefix("1234"), ModelNotFoundError);
    await assert.rejects(registry.findByPrefix("ab%"), InvalidRequestError);
    await registry.close();
  });

  it("points names, moves them and lists them", async () => {
    const registry = SqliteRegistry.open(databasePath());
    await registry.addModel(model("a1"));
    await registry.addModel(model("a2"));
    assert.equal(await registry.setName("tiny:latest", digest("a1")), undefined);
    assert.equal(await registry.setName("tiny:f16", digest("a1")), undefined);
    assert.equal(await registry.setName("tiny:latest", digest("a2")), digest("a1"));
    assert.deepEqual(await registry.namesOf(digest("a1")), ["tiny:f16"]);
    assert.equal(await registry.getNameTarget("tiny:latest"), digest("a2"));
    assert.deepEqual((await registry.listNames()).map((record) => record.name), ["tiny:f16", "tiny:latest"]);
    assert.equal(await registry.removeName("tiny:f16"), true);
    assert.equal(await registry.removeName("tiny:f16"), false);
    await assert.rejects(registry.setName("ghost:latest", digest("ff")), ModelNotFoundError);
    await registry.close();
  });

  it("records lineage with recipes and refuses cycles and unknown models", async () => {
    const registry = SqliteRegistry.open(databasePath());
    for (const hex of ["b0", "b1", "b2"]) await registry.addModel(model(hex));
    const recipe = { tool: "grove-forge", toolVersion: "0.1.0", parameters: { type: "Q8_0" }, inputs: [digest("b0")] };
    await registry.addEdge({ child: digest("b1"), parent: digest("b0"), relation: "quantized", recipe });
    await registry.addEdge({ child: digest("b2"), parent: digest("b1"), relation: "finetune", recipe: null });
    assert.deepEqual(await registry.parentsOf(digest("b1")), [{ child: digest("b1"), parent: digest("b0"), relation: "quantized", recipe }]);
    assert.deepEqual((await registry.childrenOf(digest("b1"))).map((edge) => edge.child), [digest("b2")]);
    await assert.rejects(registry.addEdge({ child: digest("b0"), parent: digest("b2"), relation: "merge", recipe: null }), /cycle/);
    await assert.rejects(registry.addEdge({ child: digest("b0"), parent: digest("b0"), relation: "merge", recipe: null }), /own parent/);
    await assert.rejects(registry.addEdge({ child: digest("b0"), parent: digest("99"), relation: "merge", recipe: null }), ModelNotFoundError);
    // addEdges is all or none.
    await assert.rejects(
      registry.addEdges([
        { child: digest("b2"), parent: digest("b0"), relation: "merge", recipe: null },
        { child: digest("b2"), parent: digest("98"), relation: "merge", recipe: null },
      ]),
      ModelNotFoundError,
    );
    assert.equal((await registry.listEdges()).length, 2);
    await registry.close();
  });

  it("removes a model with its names and edges, unless an alias routes to it", async () => {
    const registry = SqliteRegistry.open(databasePath());
    for (const hex of ["c0", "c1", "c2"]) await registry.addModel(model(hex));
    await registry.addEdge({ child: digest("c1"), parent: digest("c0"), relation: "finetune", recipe: null });
    await registry.addEdge({ child: digest("c2"), parent: digest("c1"), relation: "quantized", recipe: null });
    await registry.setName("mid:latest", digest("c1"));
    await registry.setAlias({ name: "chat", targets: [{ digest: digest("c1"), weight: 9 }, { digest: digest("c2"), weight: 1 }] });
    assert.deepEqual(await registry.getAlias("chat"), { name: "chat", targets: [{ digest: digest("c1"), weight: 9 }, { digest: digest("c2"), weight: 1 }] });
    assert.deepEqual(await registry.aliasesTargeting(digest("c1")), ["chat"]);
    await assert.rejects(registry.removeModel(digest("c1")), ConflictError);
    await registry.setAlias({ name: "chat", targets: [{ digest: digest("c2"), weight: 1 }] });
    assert.equal(await registry.removeModel(digest("c1")), true);
    assert.equal(await registry.removeModel(digest("c1")), false);
    assert.deepEqual(await registry.listEdges(), []);
    assert.equal(await registry.getNameTarget("mid:latest"), undefined);
    assert.deepEqual(await registry.listAliases(), [{ name: "chat", targets: [{ digest: digest("c2"), weight: 1 }] }]);
    await assert.rejects(registry.setAlias({ name: "bad", targets: [] }), InvalidRequestError);
    await assert.rejects(registry.setAlias({ name: "bad", targets: [{ digest: digest("c2"), weight: 0 }] }), InvalidRequestError);
    await assert.rejects(registry.setAlias({ name: "bad", targets: [{ digest: digest("77"), weight: 1 }] }), ModelNotFoundError);
    assert.equal(await registry.removeAlias("chat"), true);
    assert.deepEqual(await registry.listAliases(), []);
    await registry.close();
  });

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
