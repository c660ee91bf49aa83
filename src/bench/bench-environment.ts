import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";

/** The machine and software a benchmark ran on, for the report. */
export interface BenchEnvironment {
  /** ISO date and time of the run. */
  readonly date: string;
  /** `os.cpus()[0].model`. */
  readonly cpu: string;
  /** Cores the process may use (`os.availableParallelism()`). */
  readonly cores: number;
  /** Total memory, GiB. */
  readonly memoryGib: number;
  /** Node.js version. */
  readonly node: string;
  /** node-llama-cpp version installed in this checkout. */
  readonly nodeLlamaCpp: string | undefined;
  /** Commit of the llama.cpp checkout llama-server was built from (`git log -1 --format=%h`). */
  readonly llamaCppCommit: string | undefined;
}

/**
 * Collects {@link BenchEnvironment}. Nothing here is required: a value that cannot be read
 * (no git, a binary outside a checkout) is reported as unknown rather than failing the run.
 *
 * @param repositoryRoot the Grove checkout, to read node-llama-cpp's version from.
 * @param llamaServer the llama-server binary; its checkout is found from its folder.
 */
export function benchEnvironment(repositoryRoot: string, llamaServer: string | undefined): BenchEnvironment {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: availableParallelism(),
    memoryGib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    nodeLlamaCpp: packageVersion(join(repositoryRoot, "node_modules", "node-llama-cpp", "package.json")),
    llamaCppCommit: llamaServer ? gitCommit(dirname(llamaServer)) : undefined,
  };
}

function packageVersion(path: string): string | undefined {
  try {
    const version = (JSON.parse(readFileSync(path, "utf8")) as { version?: unknown }).version;
    return typeof version === "string" ? version : undefined;
  } catch {
    // Not installed where expected: reported as unknown.
    return undefined;
  }
}

function gitCommit(directory: string): string | undefined {
  try {
    return execFileSync("git", ["-C", directory, "log", "-1", "--format=%h"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim() || undefined;
  } catch {
    // Not a git checkout, or no git: reported as unknown.
    return undefined;
  }
}
