import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConfigError, InvalidRequestError } from "../core/errors.js";
import { digest, model, registryContract } from "../test-support/registry-contract.js";
import { startPostgres, type TestPostgres } from "../test-support/postgres-server.js";
import { openPostgresDatabase } from "./postgres-database.js";
import { PostgresRegistry } from "./postgres-registry.js";

// Against a throwaway PostgreSQL server (initdb + pg_ctl, see test-support); each test has its
// own database. Missing binaries fail the file with the Debian package to install.

let server: TestPostgres;
let count = 0;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
});

async function freshUrl(): Promise<string> {
  return server.createDatabase(`registry_${++count}`);
}

describe("PostgresRegistry", () => {
  registryContract(async () => PostgresRegistry.open(await freshUrl()));

  it("migrates once when replicas open together; a newer schema is refused", async () => {
    const url = await freshUrl();
    const registries = await Promise.all([1, 2, 3].map(() => PostgresRegistry.open(url)));
    await registries[0]!.addModel(model("aa"));
    for (const registry of registries) assert.equal((await registry.listModels()).length, 1);
    await Promise.all(registries.map((registry) => registry.close()));
    const database = await openPostgresDatabase(url);
    try {
      assert.deepEqual((await database.query("SELECT component, version FROM grove_schema")).rows, [{ component: "registry", version: 2 }]);
      await database.query("UPDATE grove_schema SET version = 99 WHERE component = 'registry'");
    } finally {
      await database.close();
    }
    await assert.rejects(PostgresRegistry.open(url), (error: unknown) => error instanceof ConfigError && /newer Grove/.test(error.message));
  });

  it("refuses a bad URL and an unreachable server with a ConfigError naming --database", async () => {
    await assert.rejects(PostgresRegistry.open("not a url"), (error: unknown) => error instanceof ConfigError && /--database/.test(error.message));
    await assert.rejects(PostgresRegistry.open("mysql://localhost/grove"), (error: unknown) => error instanceof ConfigError && /postgres:\/\//.test(error.message));
    const unreachable = server.url.replace(/:\d+\//, ":1/");
    await assert.rejects(PostgresRegistry.open(unreachable, { connectTimeoutMs: 2000 }), (error: unknown) => error instanceof ConfigError && /Cannot connect to PostgreSQL/.test(error.message));
  });

  it("commits or rolls back a transaction as a whole; writers on another replica wait for it", async () => {
    const url = await freshUrl();
    const registry = await PostgresRegistry.open(url);
    const replica = await PostgresRegistry.open(url);
    try {
      await assert.rejects(
        registry.transaction(async (transaction) => {
          await transaction.addModel(model("d0"));
          await transaction.setName("gone:latest", digest("d0"));
          throw new Error("abort");
        }),
        /abort/,
      );
      assert.equal(await replica.getModel(digest("d0")), undefined);
      assert.equal(await replica.getNameTarget("gone:latest"), undefined);

      await registry.addModel(model("d1"));
      const order: string[] = [];
      let view: unknown;
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const transaction = registry.transaction(async (inner) => {
        view = inner;
        await inner.addModel(model("d2"));
        entered();
        await finished;
        order.push("transaction");
        return "done";
      });
      await inside;
      // The other replica reads the committed state, and its write waits for the lock.
      assert.equal(await replica.getModel(digest("d2")), undefined);
      const write = replica.setName("d:latest", digest("d2")).then(() => order.push("replica wrote"));
      const readWhileWaiting = await replica.getModel(digest("d1"));
      assert.equal(readWhileWaiting?.digest, digest("d1"));
      finish();
      assert.equal(await transaction, "done");
      await write;
      assert.deepEqual(order, ["transaction", "replica wrote"]);
      assert.equal(await registry.getNameTarget("d:latest"), digest("d2"));
      await assert.rejects((view as PostgresRegistry).listModels(), (error: unknown) => error instanceof InvalidRequestError && /transaction has ended/.test(error.message));
    } finally {
      await registry.close();
      await replica.close();
    }
    await assert.rejects(registry.listModels(), /closed/);
  });

  it("keeps one model row when replicas add the same digest at once", async () => {
    const url = await freshUrl();
    const registries = await Promise.all([1, 2, 3, 4].map(() => PostgresRegistry.open(url)));
    try {
      const record = model("e0");
      const added = await Promise.all(registries.map((registry) => registry.transaction(async (transaction) => transaction.addModel(record))));
      assert.deepEqual(added.filter(Boolean).length, 1);
      assert.equal((await registries[3]!.listModels()).length, 1);
    } finally {
      await Promise.all(registries.map((registry) => registry.close()));
    }
  });
});
