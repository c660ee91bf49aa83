import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { EngineError } from "../core/errors.js";

/** How to start one server under test and tell when it is ready. */
export interface ServerProcessOptions {
  /** Name for messages and the report, e.g. `grove`. */
  readonly name: string;
  /** Executable to run. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Environment of the child. @default the bench's own */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory of the child. @default the bench's own */
  readonly cwd?: string;
  /**
   * Where the server listens: a port known in advance, or a pattern whose first group is the
   * port, matched against the child's stdout (for servers started with port 0).
   */
  readonly port: number | RegExp;
  /** Give up if `GET /health` has not answered 200 by then. @default 300000 */
  readonly readyTimeoutMs?: number;
}

/** Children still running, killed when the bench exits for any reason. */
const running = new Set<ChildProcess>();

/** Keeps the last few kilobytes of a child's output, to explain a failed start. */
class OutputTail {
  private text = "";
  append(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-4000);
  }
  toString(): string {
    return this.text.trim();
  }
}

/**
 * A server under test, running as a child process on loopback. The bench starts one at a
 * time (on a small machine two servers would steal each other's cores) and stops it before
 * starting the next.
 *
 * @example
 * const server = await ServerProcess.start({ name: "llama-server", command, args, port });
 * try { … fetch(`${server.url}/v1/completions`) … } finally { await server.stop(); }
 */
export class ServerProcess {
  private constructor(
    /** The name given at start. */
    readonly name: string,
    /** `http://127.0.0.1:PORT`. */
    readonly url: string,
    /** The id of the model it serves (first entry of `GET /v1/models`). */
    readonly model: string,
    private readonly child: ChildProcess,
  ) {}

  /** Starts the child, waits until it listens and `GET /health` answers 200, and reads its model id. */
  static async start(options: ServerProcessOptions): Promise<ServerProcess> {
    const child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    child.once("exit", () => running.delete(child));
    const tail = new OutputTail();
    child.stderr!.on("data", (chunk: Buffer) => tail.append(chunk));
    let exited: string | undefined;
    let startError: Error | undefined;
    child.once("exit", (code, signal) => (exited = signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once("error", (error) => (startError = error));
    const failure = () => {
      if (startError) return new EngineError(`Could not run ${options.command}: ${startError.message}`, { cause: startError });
      if (exited) return new EngineError(`${options.name} ${exited} before it was ready. Its last output:\n${tail}`);
      return undefined;
    };
    const deadline = Date.now() + (options.readyTimeoutMs ?? 300_000);
    try {
      const port = await portOf(child, options.port, tail, () => failure() !== undefined || Date.now() > deadline);
      const url = `http://127.0.0.1:${port}`;
      while (!(await healthy(url))) {
        const problem = failure();
        if (problem) throw problem;
        if (Date.now() > deadline) throw new EngineError(`${options.name} was not ready at ${url} in time. Its last output:\n${tail}`);
        await sleep(200);
      }
      return new ServerProcess(options.name, url, await modelId(url), child);
    } catch (error) {
      await stopChild(child);
      throw failure() ?? error;
    }
  }

  /** The child's process id (for reading its memory from /proc). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Asks the server to exit (SIGTERM), and kills it if it has not within 10 s. */
  async stop(): Promise<void> {
    await stopChild(this.child);
  }

  /** Kills every server still running, synchronously; for `process.on("exit")` and signals. */
  static killAll(): void {
    for (const child of running) child.kill("SIGKILL");
    running.clear();
  }
}

/** A TCP port free on loopback at the time of asking (the server binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function portOf(child: ChildProcess, port: number | RegExp, tail: OutputTail, givenUp: () => boolean): Promise<number> {
  if (typeof port === "number") {
    child.stdout!.on("data", (chunk: Buffer) => tail.append(chunk));
    return port;
  }
  let seen = "";
  let found: number | undefined;
  child.stdout!.on("data", (chunk: Buffer) => {
    tail.append(chunk);
    if (found !== undefined) return;
    seen = (seen + chunk.toString()).slice(-4000);
    const match = port.exec(seen);
    if (match) found = Number(match[1]);
  });
  while (found === undefined) {
    if (givenUp()) throw new EngineError(`The server did not print its address (${port}). Its last output:\n${tail}`);
    await sleep(100);
  }
  return found;
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    // Not listening yet.
    return false;
  }
}

async function modelId(url: string): Promise<string> {
  const response = await fetch(`${url}/v1/models`, { signal: AbortSignal.timeout(10_000) });
  const body = (await response.json().catch(() => undefined)) as { data?: { id?: unknown }[] } | undefined;
  const id = body?.data?.[0]?.id;
  if (!response.ok || typeof id !== "string") {
    throw new EngineError(`GET ${url}/v1/models answered ${response.status} without a model id`);
  }
  return id;
}

async function stopChild(child: ChildProcess): Promise<void> {
  // A child that never spawned (ENOENT) has no pid and emits no "exit".
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}

/**
 * The `http://127.0.0.1:PORT` a spawned `grove serve --port 0` prints once it listens.
 * @throws Error with the exit code and the end of `stderr()` when it exits first
 */
export function listeningUrl(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let stdout = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /http:\/\/127\.0\.0\.1:\d+/.exec(stdout);
      if (match) resolve(match[0]);
    });
    child.on("close", (code) => reject(new Error(`grove serve exited with ${code} before listening: ${stderr().slice(-2000)}`)));
  });
}
