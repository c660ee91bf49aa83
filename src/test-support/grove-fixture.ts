import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type GroveConfig } from "../config/config.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";

/** A generated model in a fresh temp directory, removed by `cleanup`. */
export interface TestModel {
  readonly path: string;
  readonly directory: string;
  cleanup(): Promise<void>;
}

/** Writes a small real GGUF (default preset `test-tiny`, seed 7) for a test file. */
export async function createTestModel(preset = "test-tiny", seed = 7): Promise<TestModel> {
  const directory = await mkdtemp(join(tmpdir(), "grove-test-"));
  const path = join(directory, `${preset}-s${seed}.gguf`);
  await generateModel({ preset, seed, dtype: "f16", outPath: path });
  return { path, directory, cleanup: () => rm(directory, { recursive: true, force: true }) };
}

/**
 * Starts the real server on 127.0.0.1, port 0, with a temp GROVE_HOME and no environment
 * leaking in, the same way `grove serve` does.
 */
export async function startTestGrove(
  model: TestModel,
  flags: Partial<Record<keyof GroveConfig, unknown>> = {},
): Promise<RunningGrove> {
  const config = loadConfig({
    env: {},
    flags: { home: join(model.directory, "home"), model: model.path, port: 0, threads: 1, logLevel: "silent", ...flags },
  });
  return startGrove(config);
}

/**
 * Fills the store `startTestGrove` will open: `model` under `name`, and a generated test-tiny
 * model (F16) of each seed in `others` under its name.
 */
export async function seedTestStore(model: TestModel, name: string, others: Record<string, number> = {}): Promise<void> {
  const store = await ModelStore.open(join(model.directory, "home"));
  try {
    await store.importFile(model.path, { name });
    for (const [otherName, seed] of Object.entries(others)) {
      const path = join(model.directory, `${otherName.replace(/[^a-z0-9]/gi, "-")}.gguf`);
      await generateModel({ preset: "test-tiny", seed, dtype: "f16", outPath: path });
      await store.importFile(path, { name: otherName });
    }
  } finally {
    await store.close();
  }
}
