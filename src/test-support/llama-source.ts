import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The git bundle of llama.cpp's source that node-llama-cpp ships (DESIGN.md: reference points). */
export const LLAMA_SOURCE_BUNDLE = fileURLToPath(new URL("../../node_modules/node-llama-cpp/llama/gitRelease.bundle", import.meta.url));

const CACHE = join(homedir(), ".cache", "grove");

let checkout: Promise<string> | undefined;

/**
 * A checkout of the llama.cpp source node-llama-cpp bundles, for tests that read it as data
 * (its chat templates, its tests' expected texts). No download: it is cloned from the local
 * bundle once, outside the repository, and reused:
 * - `GROVE_LLAMA_CPP_DIR` when set (cloned there if missing), else
 * - `~/.cache/grove/llama.cpp` (what scripts/build-llama-server.sh clones) when it is a checkout
 *   of the bundle's commit, else
 * - `~/.cache/grove/llama.cpp-source/<commit>`.
 * Test processes running at once each clone into a temp folder and rename it into place; the
 * first rename wins and the others use its checkout.
 * @throws Error when git is missing or the bundle is absent (run `npm ci`)
 */
export function llamaSource(): Promise<string> {
  checkout ??= locate();
  return checkout;
}

async function locate(): Promise<string> {
  if (!existsSync(LLAMA_SOURCE_BUNDLE)) {
    throw new Error(`llama.cpp's source bundle is missing at ${LLAMA_SOURCE_BUNDLE}: run npm ci`);
  }
  const commit = await bundleCommit();
  const configured = process.env.GROVE_LLAMA_CPP_DIR || undefined;
  if (configured) return isCheckout(configured) ? configured : clone(configured);
  const shared = join(CACHE, "llama.cpp");
  if (isCheckout(shared) && (await headOf(shared)) === commit) return shared;
  const own = join(CACHE, "llama.cpp-source", commit.slice(0, 12));
  return isCheckout(own) ? own : clone(own);
}

async function git(args: readonly string[]): Promise<string> {
  try {
    return (await run("git", args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("git is needed to read llama.cpp's source bundle: install it (apt-get install -y git)", { cause: error });
    }
    throw error;
  }
}

async function bundleCommit(): Promise<string> {
  const heads = await git(["bundle", "list-heads", LLAMA_SOURCE_BUNDLE]);
  const head = heads.split("\n").find((line) => line.endsWith(" HEAD")) ?? heads.split("\n")[0];
  const commit = head?.split(" ")[0];
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new Error(`Cannot read the commit of ${LLAMA_SOURCE_BUNDLE}: ${heads}`);
  return commit;
}

async function headOf(dir: string): Promise<string | undefined> {
  try {
    return await git(["-C", dir, "rev-parse", "HEAD"]);
  } catch {
    return undefined;
  }
}

function isCheckout(dir: string): boolean {
  return existsSync(join(dir, ".git")) && existsSync(join(dir, "models", "templates"));
}

async function clone(dir: string): Promise<string> {
  await mkdir(dirname(dir), { recursive: true });
  const temp = await mkdtemp(join(dirname(dir), ".clone-"));
  try {
    await git(["clone", "--quiet", LLAMA_SOURCE_BUNDLE, join(temp, "source")]);
    try {
      await rename(join(temp, "source"), dir);
    } catch (error) {
      // Another process renamed its clone into place first: use that one.
      if (!isCheckout(dir)) throw new Error(`${dir} exists and is not a llama.cpp checkout: remove it or point GROVE_LLAMA_CPP_DIR elsewhere`, { cause: error });
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  if (!isCheckout(dir)) throw new Error(`${dir} is not a llama.cpp checkout after cloning ${LLAMA_SOURCE_BUNDLE}`);
  return dir;
}
