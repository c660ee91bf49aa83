import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { generateModel, type GenerateModelResult } from "../forge/generate/generate-model.js";
import { startPostgres, type TestPostgres } from "./postgres-server.js";

/** What a test of replicas on one PostgreSQL registry starts from. */
export interface SharedRegistryFixture {
  server: TestPostgres;
  /** A temp folder: the models' files and the replicas' homes. */
  directory: string;
  /** Two generated test-tiny F16 models (seeds 1 and 2). */
  files: Record<"base" | "tuned", GenerateModelResult>;
}

/**
 * Registers the file's `before` (a throwaway PostgreSQL server, a temp folder named from
 * `prefix`, two models) and `after` (server stopped, folder removed); the object returned is
 * filled in when `before` has run.
 */
export function sharedRegistryFixture(prefix: string): SharedRegistryFixture {
  const fixture = { files: {} } as SharedRegistryFixture;
  before(async () => {
    fixture.directory = await mkdtemp(join(tmpdir(), prefix));
    fixture.server = await startPostgres();
    fixture.files.base = await generateModel({ preset: "test-tiny", seed: 1, dtype: "f16", outPath: join(fixture.directory, "base.gguf") });
    fixture.files.tuned = await generateModel({ preset: "test-tiny", seed: 2, dtype: "f16", outPath: join(fixture.directory, "tuned.gguf") });
  });
  after(async () => {
    await fixture.server?.stop();
    await rm(fixture.directory, { recursive: true, force: true });
  });
  return fixture;
}
