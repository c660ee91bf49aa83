import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../bench/server-process.js";

/** A throwaway Redis server, for tests. */
export interface TestRedis {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

function findRedisServer(): string {
  const dirs = [...(process.env.PATH ?? "").split(":").filter(Boolean), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  const found = dirs.map((dir) => join(dir, "redis-server")).find((path) => existsSync(path));
  if (!found) throw new Error("redis-server not found: install Debian's package with `apt-get install -y redis-server`");
  return found;
}

/** Resolves when the server says it is ready; rejects when it exits first. */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 20 s:\n${output.slice(-2000)}`)), 20_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output.slice(-2000)}`));
    });
  });
}

/**
 * Starts a fresh redis-server on 127.0.0.1 at a free port (Redis needs an explicit one), with
 * no persistence, in a temp folder; a port taken in the meantime is retried. Fails with the
 * Debian package to install when the binary is missing.
 */
export async function startRedis(): Promise<TestRedis> {
  const binary = findRedisServer();
  const directory = await mkdtemp(join(tmpdir(), "grove-redis-"));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      await ready(child);
    } catch (error) {
      child.kill("SIGKILL");
      if (attempt < 3) continue;
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
    child.stdout?.resume();
    child.stderr?.resume();
    return {
      url: `redis://127.0.0.1:${port}`,
      async stop() {
        if (child.exitCode === null) {
          const exited = new Promise((resolve) => child.once("exit", resolve));
          child.kill("SIGTERM");
          await exited;
        }
        await rm(directory, { recursive: true, force: true });
      },
    };
  }
}
