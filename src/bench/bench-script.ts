import { spawnSync } from "node:child_process";
import { join } from "node:path";

// What the stand-alone comparison scripts against llama.cpp's tools (finetune-bench.ts,
// perplexity-bench.ts) share: their flags and the build of the tools.

/**
 * Reads `--name value` flags over `defaults` (a value is a number unless its key is in
 * `stringKeys`) and the switch `--write-docs`.
 * @throws Error naming the flag and `script` (whose header lists the flags) for an unknown or incomplete one
 */
export function parseBenchOptions<T extends { writeDocs: boolean }>(argv: readonly string[], defaults: T, script: string, stringKeys: readonly (keyof T)[]): T {
  const options = { ...defaults };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index]!;
    if (flag === "--write-docs") {
      options.writeDocs = true;
      continue;
    }
    const key = flag.replace(/^--/, "") as keyof T;
    const value = argv[++index];
    if (!(key in options) || value === undefined) throw new Error(`Unknown or incomplete option ${flag}; see the header of ${script}`);
    (options as unknown as Record<string, unknown>)[key as string] = stringKeys.includes(key) ? value : Number(value);
  }
  return options;
}

/**
 * Builds llama.cpp's tools from the source bundled in node-llama-cpp (scripts/build-llama-server.sh,
 * a no-op once built) and returns the folder of their binaries.
 */
export function buildLlamaTools(root: string): string {
  const build = spawnSync("bash", [join(root, "scripts", "build-llama-server.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (build.status !== 0) throw new Error("Could not build llama.cpp's tools (scripts/build-llama-server.sh)");
  return build.stdout.trim();
}
