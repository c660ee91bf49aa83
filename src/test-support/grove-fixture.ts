import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type GroveConfig } from "../config/config.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";

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
 * leaking in (except GROVE_TEST_WEB_DIR, the web build to serve), the same way `grove serve` does.
 */
export async function startTestGrove(
  model: TestModel,
  flags: Partial<Record<keyof GroveConfig, unknown>> = {},
): Promise<RunningGrove> {
  const config = loadConfig({
    env: {},
    flags: {
      home: join(model.directory, "home"), model: model.path, port: 0, threads: 1, logLevel: "silent",
      // A web app built elsewhere (vite build web --outDir DIR), so parallel work need not share dist/web.
      ...(process.env["GROVE_TEST_WEB_DIR"] ? { webDir: process.env["GROVE_TEST_WEB_DIR"] } : {}),
      ...flags,
    },
  });
  return startGrove(config);
}
