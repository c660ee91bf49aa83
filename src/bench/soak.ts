/**
 * `npm run soak`: does the server's memory stay flat under a long run of streaming requests,
 * most of them abandoned by their client at a random time?
 *
 * Starts `grove serve` as a child process (fresh temporary home, port 0, the embedded default
 * model unless `--model` says otherwise), drives streaming chat requests from `--clients`
 * clients, and every `--report-every` requests stops sending, waits until the server is at
 * rest (no request in flight, no slot busy, nothing queued) and reads the server's resident
 * size from /proc: once as it stands, once after a full garbage collection of the server's main
 * thread (soak-gc-hook.ts, preloaded into the server). Progress goes to stderr, the series to stdout.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describeErrorChain, GroveError } from "../core/errors.js";
import { benchEnvironment } from "./bench-environment.js";
import { parseSoakArguments, SOAK_USAGE, type SoakArguments } from "./parse-soak-arguments.js";
import { ServerProcess } from "./server-process.js";
import { SseParser } from "./sse-parser.js";

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The temporary home of the server, removed on any exit (a Ctrl-C included). */
let temporaryHome: string | undefined;

function removeHome(): void {
  if (temporaryHome !== undefined) rmSync(temporaryHome, { recursive: true, force: true });
  temporaryHome = undefined;
}

function progress(message: string): void {
  process.stderr.write(`[soak] ${message}\n`);
}

/** One report: the server at rest after `requests` requests. */
export interface SoakSample {
  readonly requests: number;
  /** VmRSS of the server process, bytes, at rest. */
  readonly residentBytes: number;
  /** VmRSS after a full garbage collection of the server's main thread (not with heap snapshots, which collect on their own). */
  readonly residentAfterGcBytes: number | undefined;
  readonly completed: number;
  readonly aborted: number;
  readonly errors: number;
  /** Seconds since the first request. */
  readonly elapsedSeconds: number;
}

/** The `VmRSS` line of a /proc/PID/status text, in bytes. @throws Error when the line is missing */
export function parseResidentBytes(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error("no VmRSS line in the process status");
  return Number(match[1]) * 1024;
}

/** Counts of the requests so far, and the first few error messages. */
class Tally {
  completed = 0;
  aborted = 0;
  errors = 0;
  readonly messages: string[] = [];
  /** Mean duration of completed requests, ms (for choosing abort times). */
  meanMs = 50;

  error(message: string): void {
    this.errors++;
    if (this.messages.length < 10) this.messages.push(message);
  }
}

/**
 * One streaming chat request; resolves when it ends, never rejects. When `abortAfterMs` is set,
 * the client closes the connection then (if the stream has not ended already).
 */
async function oneRequest(url: string, model: string, options: SoakArguments, abortAfterMs: number | undefined, tally: Tally, index: number): Promise<void> {
  const controller = new AbortController();
  const timer = abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
  const started = performance.now();
  try {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model,
        stream: true,
        max_tokens: options.maxTokens,
        messages: [{ role: "user", content: `What part of speech is word${index % 997}?` }],
      }),
      signal: controller.signal,
    });
    if (response.status !== 200) {
      tally.error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
      return;
    }
    const parser = new SseParser();
    const decoder = new TextDecoder();
    let done = false;
    for await (const chunk of response.body!) {
      for (const data of parser.push(decoder.decode(chunk as Uint8Array, { stream: true }))) {
        if (data === "[DONE]") done = true;
        else if (data.includes('"error"')) tally.error(`stream error: ${data.slice(0, 200)}`);
      }
    }
    if (done) {
      tally.completed++;
      tally.meanMs += (performance.now() - started - tally.meanMs) / 100;
    } else tally.error("the stream ended without [DONE]");
  } catch (error) {
    if (controller.signal.aborted) tally.aborted++;
    else tally.error(error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ""}` : String(error));
  } finally {
    clearTimeout(timer);
  }
}

/** Sends requests from `clients` loops until `count` more have ended. */
async function drive(url: string, model: string, options: SoakArguments, tally: Tally, first: number, count: number): Promise<void> {
  let next = first;
  const end = first + count;
  const client = async () => {
    while (next < end) {
      const index = next++;
      // Abandon at a random time up to twice a typical request's duration: some while queued,
      // some while streaming, some just as the stream ends.
      const abortAfterMs = Math.random() < options.abortShare ? Math.random() * 2 * Math.max(5, tally.meanMs) : undefined;
      await oneRequest(url, model, options, abortAfterMs, tally, index);
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
}

/** Waits until `GET /health` shows no busy slot and nothing queued, twice in a row. */
async function waitForRest(url: string): Promise<void> {
  let quiet = 0;
  const deadline = Date.now() + 60_000;
  while (quiet < 2) {
    if (Date.now() > deadline) throw new Error("the server did not come to rest within 60 s");
    const health = (await (await fetch(`${url}/health`)).json()) as { models?: { slots_busy: number; queued: number }[] };
    quiet = (health.models ?? []).every((model) => model.slots_busy === 0 && model.queued === 0) ? quiet + 1 : 0;
    await sleep(250);
  }
}

/** Asks the server for a heap snapshot (SIGUSR2) and waits until the file is written. */
async function heapSnapshot(pid: number, url: string, directory: string): Promise<string> {
  const before = new Set(readdirSync(directory));
  process.kill(pid, "SIGUSR2");
  for (;;) {
    await sleep(500);
    // The server writes the snapshot on its main thread: once it answers again, the file is whole.
    await fetch(`${url}/health`).then((response) => response.arrayBuffer());
    const added = readdirSync(directory).find((name) => name.endsWith(".heapsnapshot") && !before.has(name));
    if (added === undefined) continue;
    const size = statSync(join(directory, added)).size;
    await sleep(500);
    if (statSync(join(directory, added)).size === size) return join(directory, added);
  }
}

/** Asks the server's main thread for a full garbage collection (soak-gc-hook.ts) and lets it shrink. */
async function collectGarbage(pid: number, url: string, settleMs: number): Promise<void> {
  process.kill(pid, "SIGUSR2");
  // The collection runs on the main thread: once it answers again, the collection is done.
  await sleep(500);
  await fetch(`${url}/health`).then((response) => response.arrayBuffer());
  await sleep(Math.min(settleMs, 2000));
}

/** The served model: the one `/v1/models` marks default, else the first. */
async function servedModel(url: string): Promise<string> {
  const body = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; default?: boolean }[] };
  return (body.data.find((entry) => entry.default) ?? body.data[0]!).id;
}

function markdown(samples: readonly SoakSample[], options: SoakArguments, command: string): string {
  const environment = benchEnvironment(repositoryRoot, undefined);
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const lines = [
    `Soak ${environment.date.slice(0, 16)}Z on ${environment.cpu} (${environment.cores} cores), Node ${environment.node}: ` +
      `${options.clients} clients, ${Math.round(options.abortShare * 100)}% abandoned, max_tokens ${options.maxTokens}, --parallel ${options.parallel}, ` +
      `resident size read ${options.settleMs / 1000} s after the server came to rest`,
    `Command: \`${command}\``,
    "",
    "| requests | resident at rest (MB) | after a full GC (MB) | completed | abandoned | errors | elapsed (s) |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...samples.map((sample) => `| ${sample.requests} | ${mb(sample.residentBytes)} | ${sample.residentAfterGcBytes === undefined ? "—" : mb(sample.residentAfterGcBytes)} | ${sample.completed} | ${sample.aborted} | ${sample.errors} | ${sample.elapsedSeconds.toFixed(0)} |`),
  ];
  const half = samples.find((sample) => sample.requests >= options.requests / 2);
  const last = samples.at(-1);
  if (half !== undefined && last !== undefined && last !== half) {
    const percent = (now: number, then: number) => {
      const change = (now / then - 1) * 100;
      return `${change >= 0 ? "+" : ""}${change.toFixed(1)}%`;
    };
    const afterGc = last.residentAfterGcBytes !== undefined && half.residentAfterGcBytes !== undefined ? `, after a full GC ${percent(last.residentAfterGcBytes, half.residentAfterGcBytes)}` : "";
    lines.push("", `Resident size after ${last.requests} requests vs after ${half.requests}: at rest ${percent(last.residentBytes, half.residentBytes)}${afterGc}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Runs the soak (argv without `node` and the script); resolves to the exit code. */
export async function soak(argv: readonly string[]): Promise<number> {
  let server: ServerProcess | undefined;
  try {
    const options = parseSoakArguments(argv);
    if (options.help) {
      process.stdout.write(SOAK_USAGE);
      return 0;
    }
    const home = await mkdtemp(join(tmpdir(), "grove-soak-home-"));
    temporaryHome = home;
    const snapshots = options.heapSnapshots === undefined ? undefined : resolve(options.heapSnapshots);
    if (snapshots !== undefined) mkdirSync(snapshots, { recursive: true });
    const args = [
      join(repositoryRoot, "bin", "grove.js"), "serve",
      "--home", home, "--port", "0", "--parallel", String(options.parallel),
      "--log-level", "warn", "--web-dir", "none",
      ...(options.threads > 0 ? ["--threads", String(options.threads)] : []),
      ...(options.model === undefined ? [] : ["--model", options.model]),
    ];
    const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("GROVE_")));
    const hook = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "soak-gc-hook.js")).href;
    const nodeOptions = snapshots !== undefined ? "--heapsnapshot-signal=SIGUSR2" : `--expose-gc --import=${hook}`;
    environment.NODE_OPTIONS = `${environment.NODE_OPTIONS ?? ""} ${nodeOptions}`.trim();
    progress(`starting node ${args.join(" ")}`);
    server = await ServerProcess.start({ name: "grove", command: process.execPath, args, env: environment, cwd: snapshots, port: /http:\/\/127\.0\.0\.1:(\d+)/ });
    const pid = server.pid!;
    const model = await servedModel(server.url);
    const resident = () => parseResidentBytes(readFileSync(`/proc/${pid}/status`, "utf8"));
    progress(`serving ${model} at ${server.url} (pid ${pid}); resident at start ${(resident() / 1e6).toFixed(1)} MB`);
    const tally = new Tally();
    const samples: SoakSample[] = [];
    const started = performance.now();
    for (let sent = 0; sent < options.requests; ) {
      const count = Math.min(options.reportEvery, options.requests - sent);
      await drive(server.url, model, options, tally, sent, count);
      sent += count;
      await waitForRest(server.url);
      await sleep(options.settleMs);
      const residentBytes = resident();
      let residentAfterGcBytes: number | undefined;
      if (snapshots === undefined) {
        await collectGarbage(pid, server.url, options.settleMs);
        residentAfterGcBytes = resident();
      }
      const sample: SoakSample = { requests: sent, residentBytes, residentAfterGcBytes, completed: tally.completed, aborted: tally.aborted, errors: tally.errors, elapsedSeconds: (performance.now() - started) / 1000 };
      samples.push(sample);
      const afterGc = residentAfterGcBytes === undefined ? "" : ` (${(residentAfterGcBytes / 1e6).toFixed(1)} MB after a full GC)`;
      progress(`${sent} requests: resident ${(sample.residentBytes / 1e6).toFixed(1)} MB${afterGc}, ${tally.completed} completed, ${tally.aborted} abandoned, ${tally.errors} errors, ${sample.elapsedSeconds.toFixed(0)} s`);
      if (snapshots !== undefined) progress(`heap snapshot: ${await heapSnapshot(pid, server.url, snapshots)}`);
    }
    for (const message of tally.messages) progress(`error: ${message}`);
    const command = argv.length === 0 ? "npm run soak" : `npm run soak -- ${argv.join(" ")}`;
    process.stdout.write(options.json ? `${JSON.stringify({ command, settings: options, samples, errors: tally.messages }, null, 2)}\n` : markdown(samples, options, command));
    return tally.errors > 0 ? 1 : 0;
  } catch (error) {
    const verbose = argv.includes("--verbose");
    const message = verbose ? describeErrorChain(error) : error instanceof Error ? error.message : String(error);
    process.stderr.write(`${error instanceof GroveError ? `error (${error.code})` : "error"}: ${message}\n`);
    return 1;
  } finally {
    await server?.stop();
    removeHome();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.on("exit", () => {
    ServerProcess.killAll();
    removeHome();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      ServerProcess.killAll();
      removeHome();
      process.exit(130);
    });
  }
  soak(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
