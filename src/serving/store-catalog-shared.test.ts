import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ModelNotLocalError } from "../core/errors.js";
import type { Engine } from "../engine/engine.js";
import { generateModel, type GenerateModelResult } from "../forge/generate/generate-model.js";
import { AliasBook } from "../store/alias-book.js";
import { ModelStore } from "../store/model-store.js";
import { startPostgres, type TestPostgres } from "../test-support/postgres-server.js";
import { toErrorResponse } from "../server/error-table.js";
import { StoreCatalog } from "./store-catalog.js";

// Replica B serves from a registry shared with replica A: an alias set on A is a served name on
// B, and a model whose file only A holds answers a 503 naming it. No model is loaded, so a stub
// stands in for the engine.

let server: TestPostgres;
let directory: string;
let file: GenerateModelResult;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-catalog-shared-"));
  server = await startPostgres();
  file = await generateModel({ preset: "test-tiny", seed: 1, dtype: "f16", outPath: join(directory, "tiny.gguf") });
});
after(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

const engine = {
  models: [],
  load: () => Promise.reject(new Error("the engine is not reached in this test")),
} as unknown as Engine;

describe("StoreCatalog on a shared registry", () => {
  it("lists an alias set on another replica, and answers 503 model_not_local for a model whose file is elsewhere", async () => {
    const database = await server.createDatabase("catalog_shared");
    const a = await ModelStore.open(join(directory, "a"), { database });
    const b = await ModelStore.open(join(directory, "b"), { database });
    const catalog = new StoreCatalog({ store: b, engine });
    try {
      await a.importFile(file.path, { name: "tiny:f16" });
      await new AliasBook(a).set("chat", [{ ref: "tiny:f16" }]);
      assert.deepEqual((await catalog.list()).map((entry) => entry.id).sort(), ["chat:latest", "tiny:f16"]);
      for (const name of ["chat", "tiny:f16"]) {
        await assert.rejects(catalog.get(name), (error: unknown) => {
          assert.ok(error instanceof ModelNotLocalError);
          assert.equal(error.digest, file.digest);
          assert.match(error.message, new RegExp(`'${name}' \\(${file.digest}\\).*import or pull it on this machine`));
          const { status, body } = toErrorResponse(error);
          assert.equal(status, 503);
          assert.equal(body.error.code, "model_not_local");
          return true;
        });
      }
    } finally {
      catalog.close();
      await a.close();
      await b.close();
    }
  });
});
