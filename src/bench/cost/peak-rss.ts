import { readdir, readFile } from "node:fs/promises";

/**
 * The peak resident set size of a process in bytes (`VmHWM` of `/proc/<pid>/status`), or
 * undefined where there is no such file (not Linux, or the process is gone). For `grove serve`
 * it includes the Node runtime, the addon, the mapped weights that were read, the KV cache and
 * llama.cpp's compute buffers.
 */
export async function peakRssBytes(pid: number): Promise<number | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return match === null ? undefined : Number(match[1]) * 1024;
}

/**
 * The id of the process whose command line contains `argument` as one whole argument (the
 * unique temporary home a bench server was started with), or undefined when none does.
 */
export async function findProcessByArgument(argument: string): Promise<number | undefined> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      if (commandLine.includes(argument)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}
