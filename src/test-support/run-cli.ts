import { spawn, type ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { once } from "node:events";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../cli/main.js";

/** What one CLI run printed and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bin/grove.js`, the entry point users run. */
export const GROVE_BIN = fileURLToPath(new URL("../../bin/grove.js", import.meta.url));

/**
 * The environment for a child `grove`: this one without `GROVE_*`, `HF_*` and
 * `HUGGING_FACE_HUB_TOKEN`, so that a developer's settings never leak into a test.
 */
export function cleanEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(GROVE_|HF_|HUGGING_FACE_)/.test(key)) env[key] = value;
  }
  return { ...env, NODE_ENV: "test", ...extra };
}

/**
 * Runs `grove ARGS` in-process through `main`, capturing stderr. For runs expected to fail
 * (they print only to stderr): stdout is left alone, because node's test runner reports
 * through this process's stdout.
 */
export async function runCliInProcess(...args: string[]): Promise<Omit<CliRun, "stdout">> {
  const write = process.stderr.write;
  let stderr = "";
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  try {
    const code = await main(["node", "grove", ...args]);
    return { code, stderr };
  } finally {
    process.stderr.write = write;
  }
}

/** Starts `node bin/grove.js ARGS` as a child process with a clean environment. */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess & { result: Promise<CliRun> } {
  const child = spawn(process.execPath, [GROVE_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: cleanEnvironment(env) });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const result = once(child, "close").then(([code, signal]) => ({ code: code ?? (signal === null ? -1 : 128), stdout, stderr }));
  return Object.assign(child, { result });
}

/** Runs `node bin/grove.js ARGS` to completion, for what it prints on stdout. */
export async function runCli(...args: string[]): Promise<CliRun> {
  return spawnCli(args).result;
}

/** Everything a failed command must leave alone in a home: `ls --json`, the blobs and the temp directory. */
export async function storeSnapshot(home: string) {
  const ls = await runCli("ls", "--json", "--home", home);
  assert.equal(ls.code, 0, ls.stderr);
  return { ls: ls.stdout, blobs: await readdir(join(home, "blobs")), temp: await readdir(join(home, "tmp")) };
}

/** Runs `grove <args> --home <home> --json`, asserts it succeeded and returns its parsed output. */
export async function runCliJson<T>(home: string, ...args: string[]): Promise<T> {
  const run = await runCli(...args, "--home", home, "--json");
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as T;
}
