// The one child process that runs llama.cpp jobs for Grove (quantize, fine-tune, evaluate):
// `node job-worker.js JOB_MODULE_URL ARGS.json`. It imports the job module, calls its
// `run(args, emit)`, and writes one JSON line per event on stdout, ending with
// {"event":"result","result":…} or {"event":"error","error":…,"code":…,"param":…}. llama.cpp logs
// to stderr; a GGML_ASSERT aborts the process, which job-host.ts reports to the parent.
import { readFile } from "node:fs/promises";
import { GroveError } from "../core/errors.js";

/** A job module's entry point: do the work, report progress through `emit`, resolve with the result. */
export type NativeJob<A = unknown> = (args: A, emit: (event: Record<string, unknown>) => void) => Promise<unknown>;

const emit = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(event)}\n`);

try {
  const [moduleUrl, argumentsFile] = process.argv.slice(2);
  const module = (await import(moduleUrl ?? "")) as { run?: NativeJob };
  if (typeof module.run !== "function") throw new Error(`${moduleUrl} exports no run(args, emit)`);
  const args = JSON.parse(await readFile(argumentsFile ?? "", "utf8")) as unknown;
  emit({ event: "result", result: (await module.run(args, emit)) ?? null });
} catch (error) {
  emit({ event: "error", error: (error as Error).message, code: error instanceof GroveError ? error.code : "engine_failure", param: error instanceof GroveError ? error.param : undefined });
  process.exitCode = 1;
}
