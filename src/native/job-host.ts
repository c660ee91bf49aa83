import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AbortedError, EngineError } from "../core/errors.js";

const WORKER = new URL("./job-worker.js", import.meta.url);

/** Options of {@link runNativeJob}. */
export interface NativeJobOptions {
  /** The job module (its URL): it exports `run(args, emit)`, see job-worker.ts. */
  readonly module: URL;
  /** The job's arguments, passed as a JSON file. */
  readonly args: unknown;
  /** Called with each event the job emits (not the final result or error). */
  readonly onEvent?: (event: Record<string, unknown>) => void;
  /** Called with each line the job (llama.cpp) writes to stderr. */
  readonly onLog?: (line: string) => void;
  /** Aborting kills the process. */
  readonly signal?: AbortSignal;
  /** What the job is, for messages: "Quantization", "Fine-tuning". */
  readonly what: string;
}

/** How a job ended, when it did not succeed (for the caller's message). */
export interface NativeJobFailure {
  /** The job's own error, or the GGML_ASSERT line, or how the process died. */
  readonly reason: string;
  /** The job's error code and parameter, when it threw a GroveError. */
  readonly code?: string;
  readonly param?: string;
  /** The last lines of stderr. */
  readonly log: string;
}

/**
 * Runs one llama.cpp job in a child process (FFI calls block, and a GGML_ASSERT aborts the process
 * that makes them): the one host for quantization, both trainers and evaluation.
 *
 * @returns the job's result, or a failure describing why it did not finish
 * @throws AbortedError when `signal` aborts (the process is killed)
 * @throws EngineError when the process cannot start
 */
export async function runNativeJob(options: NativeJobOptions): Promise<{ ok: true; result: unknown } | { ok: false; failure: NativeJobFailure }> {
  if (options.signal?.aborted) throw new AbortedError(`${options.what} cancelled`);
  const directory = await mkdtemp(join(tmpdir(), "grove-job-"));
  const file = join(directory, "args.json");
  try {
    await writeFile(file, JSON.stringify(options.args));
    return await new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, [WORKER.pathname, options.module.href, file], { stdio: ["ignore", "pipe", "pipe"] });
      let pending = "";
      let logPending = "";
      let log = "";
      let outcome: { event: string; result?: unknown; error?: string; code?: string; param?: string } | undefined;
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        child.kill("SIGKILL");
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        pending += chunk;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          if (line.trim() === "") continue;
          let event: { event?: unknown };
          try {
            event = JSON.parse(line) as { event?: unknown };
          } catch {
            continue; // not ours (a library printing to stdout)
          }
          if (event.event === "result" || event.event === "error") outcome = event as typeof outcome;
          else options.onEvent?.(event as Record<string, unknown>);
        }
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        log = (log + chunk).slice(-4000);
        if (options.onLog === undefined) return;
        logPending += chunk;
        const lines = logPending.split("\n");
        logPending = lines.pop() ?? "";
        for (const line of lines) options.onLog(line);
      });
      child.on("error", (error) => {
        options.signal?.removeEventListener("abort", onAbort);
        reject(new EngineError(`Cannot start the ${options.what.toLowerCase()} worker: ${error.message}`, { cause: error }));
      });
      child.on("close", (code, killedBy) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (aborted) return reject(new AbortedError(`${options.what} cancelled`));
        if (code === 0 && outcome?.event === "result") return resolvePromise({ ok: true, result: outcome.result });
        const died = killedBy !== null ? `the worker was killed by ${killedBy}` : `the worker exited with code ${code}`;
        const reason = outcome?.error ?? died + describeLog(log);
        resolvePromise({ ok: false, failure: { reason, ...(outcome?.code === undefined ? {} : { code: outcome.code }), ...(outcome?.param === undefined ? {} : { param: outcome.param }), log } });
      });
    });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The failed assertion when the log has one (a backtrace may follow it), else its last lines. */
function describeLog(tail: string): string {
  const assertion = /^.*GGML_ASSERT.*$/m.exec(tail)?.[0];
  if (assertion !== undefined) return `; ${assertion.trim()}`;
  return tail.trim() === "" ? "" : `; last log: ${tail.trim().split("\n").slice(-3).join(" | ")}`;
}
