import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { libllamaDirectory } from "./libllama.js";

/** Which prebuilt libraries Grove loads. */
export interface LibrarySet {
  /** The folder of libllama and libggml. */
  readonly directory: string;
  /** The GPU backend they drive, or false for the CPU. */
  readonly gpu: "cuda" | "vulkan" | "metal" | false;
}

/**
 * The libraries node-llama-cpp would pick on this machine: its GPU detection (`getLlamaGpuTypes`,
 * which looks for drivers and runtimes without loading anything) names the GPU types usable here,
 * and the first whose prebuilt package is installed wins; otherwise the CPU build. `gpu: false`
 * forces the CPU.
 */
export async function chooseLibraries(gpu: "auto" | false = "auto"): Promise<LibrarySet> {
  if (gpu !== false) {
    const require = createRequire(import.meta.url);
    // node-llama-cpp's detection module alone: its whole package costs a server 40 MiB of memory.
    const detection = join(dirname(require.resolve("node-llama-cpp")), "bindings", "utils", "getLlamaGpuTypes.js");
    const { getLlamaGpuTypes } = (await import(pathToFileURL(detection).href)) as { getLlamaGpuTypes: (include: "supported") => Promise<(string | false)[]> };
    for (const type of await getLlamaGpuTypes("supported")) {
      if (type === false) continue;
      const name = `${process.platform === "darwin" ? "mac" : process.platform === "win32" ? "win" : process.platform}-${process.arch}-${type}`;
      try {
        const index = require.resolve(`@node-llama-cpp/${name}`);
        const directory = join(dirname(index), "..", "bins", name);
        if (existsSync(directory)) return { directory, gpu: type as LibrarySet["gpu"] };
      } catch {
        // Not installed: try the next type.
      }
    }
  }
  return { directory: libllamaDirectory(), gpu: false };
}
