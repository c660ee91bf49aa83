import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { BenchServerName } from "./parse-bench-arguments.js";
import { freePort, ServerProcess } from "./server-process.js";

/** Settings both servers get, so that they are compared on equal terms. */
export interface BenchServerSettings {
  /** CPU threads, for generation and for prompt processing. */
  readonly threads: number;
  /** Slots (parallel sequences). */
  readonly parallel: number;
  /** Context tokens per slot. */
  readonly contextSize: number;
}

/** Where the programs are. */
export interface BenchServerPrograms {
  /** `bin/grove.js` of this checkout. */
  readonly groveBin: string;
  /** The llama-server binary (needed only to start llama-server, and beside it the libraries grove-ref loads). */
  readonly llamaServer: string | undefined;
  /** The environment to start children from; each server's own settings variables are removed from it. */
  readonly environment: NodeJS.ProcessEnv;
}

/** A started server and how it was started. */
export interface BenchServer {
  /** The running server. */
  readonly server: ServerProcess;
  /** The command line, for the report. */
  readonly commandLine: string;
  /** Stops the server and removes anything it was given to write in. */
  readonly stop: () => Promise<void>;
}

/** Grove data directories of servers not yet stopped. */
const temporaryHomes = new Set<string>();

/** Removes the temporary Grove homes of servers never stopped (after Ctrl-C); synchronous, for exit handlers. */
export function removeTemporaryHomes(): void {
  for (const home of temporaryHomes) rmSync(home, { recursive: true, force: true });
  temporaryHomes.clear();
}

/**
 * The environment minus the variables a server reads its settings from (`GROVE_*` for Grove,
 * `LLAMA_ARG_*` for llama-server), so a stray variable in the shell cannot give one server
 * an unfair setting; everything that matters is passed as a flag.
 */
function cleanEnvironment(environment: NodeJS.ProcessEnv, prefix: string): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(environment).filter(([name]) => !name.startsWith(prefix)));
}

/** Quotes an argument for display when the shell would split it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * Starts one server on loopback for `modelPath` and waits until it is ready.
 *
 * - Grove: `node bin/grove.js serve --model FILE --port 0 --threads T --parallel P --ctx-size C
 *   --log-level warn`, with a fresh temporary `--home`; its port is read from the address
 *   it prints.
 * - llama-server: `-m FILE --host 127.0.0.1 --port PORT -t T -tb T -np P -c C·P
 *   --no-kv-unified -cb --no-webui`. Its `-c` is the total context, split evenly among the
 *   slots once the unified KV cache is off, so each slot holds C tokens as in Grove.
 *   Flash attention is left at its default (`auto`), which is node-llama-cpp's default too.
 */
export async function startBenchServer(
  name: BenchServerName,
  modelPath: string,
  settings: BenchServerSettings,
  programs: BenchServerPrograms,
): Promise<BenchServer> {
  const { threads, parallel, contextSize } = settings;
  if (name === "grove" || name === "grove-ref") {
    const home = await mkdtemp(join(tmpdir(), "grove-bench-home-"));
    temporaryHomes.add(home);
    const removeHome = async () => {
      await rm(home, { recursive: true, force: true });
      temporaryHomes.delete(home);
    };
    const args = [
      programs.groveBin,
      "serve",
      "--model", modelPath,
      "--port", "0",
      "--threads", String(threads),
      "--parallel", String(parallel),
      "--ctx-size", String(contextSize),
      "--log-level", "warn",
      "--home", home,
      "--web-dir", "none",
      // grove-ref: the libraries built beside llama-server, so both run the same kernels.
      ...(name === "grove-ref" ? ["--libllama-dir", dirname(programs.llamaServer!)] : []),
    ];
    try {
      const server = await ServerProcess.start({
        name,
        command: process.execPath,
        args,
        env: cleanEnvironment(programs.environment, "GROVE_"),
        port: /http:\/\/127\.0\.0\.1:(\d+)/,
      });
      const stop = async () => {
        await server.stop();
        await removeHome();
      };
      return { server, commandLine: ["node", ...args].map(shellWord).join(" "), stop };
    } catch (error) {
      await removeHome();
      throw error;
    }
  }
  const port = await freePort();
  const args = [
    "-m", modelPath,
    "--host", "127.0.0.1",
    "--port", String(port),
    "-t", String(threads),
    "-tb", String(threads),
    "-np", String(parallel),
    "-c", String(contextSize * parallel),
    "--no-kv-unified",
    "-cb",
    "--no-webui",
  ];
  const server = await ServerProcess.start({
    name,
    command: programs.llamaServer!,
    args,
    env: cleanEnvironment(programs.environment, "LLAMA_ARG_"),
    port,
  });
  return { server, commandLine: [programs.llamaServer!, ...args].map(shellWord).join(" "), stop: () => server.stop() };
}
