// `npm run bench:adapters [-- --preset llama-1b --dtype q8_0 --rank 16 --adapters 8 --threads 2 --write-docs]`
//
// Many adapters on one base (issue 19): the resident memory of a `grove serve` process with one
// generated base alone, then with `--adapters` generated LoRA adapter forks of it served at once
// (each requested once, then all together), against the bound: base + n × adapter file +
// 10%. Also checks that the forks' concurrent answers equal their answers alone (greedy).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { GenerateModelDtype } from "../forge/generate/generate-model.js";
import type { ModelPresetName } from "../forge/generate/model-presets.js";
import { measureAdapterMemory, type AdapterMemoryOptions } from "./adapter-memory.js";
import { benchMarkers, writeDocsSection } from "./write-docs-section.js";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const MIB = 1024 * 1024;

function parseOptions(argv: string[]): { options: Omit<AdapterMemoryOptions, "directory">; writeDocs: boolean } {
  const options: Record<string, unknown> = { preset: "llama-1b", dtype: "q8_0", rank: 16, adapters: 8, threads: 2, contextSize: 128, maxTokens: 16 };
  let writeDocs = false;
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index]!;
    if (flag === "--write-docs") {
      writeDocs = true;
      continue;
    }
    const key = flag.replace(/^--/, "").replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    const value = argv[++index];
    if (!(key in options) || value === undefined) throw new Error(`Unknown or incomplete option ${flag}; see the header of src/bench/adapter-memory-bench.ts`);
    options[key] = key === "preset" || key === "dtype" ? value : Number(value);
  }
  return { options: options as Omit<AdapterMemoryOptions, "directory"> & { preset: ModelPresetName; dtype: GenerateModelDtype }, writeDocs };
}

async function cpuModel(): Promise<string> {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(await readFile("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  } catch {
    return cpus()[0]?.model ?? "unknown";
  }
}

const { options, writeDocs } = parseOptions(process.argv.slice(2));
const directory = await mkdtemp(join(tmpdir(), "grove-bench-adapters-"));
try {
  const result = await measureAdapterMemory({ ...options, directory });
  const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
  const n = result.adapters;
  const command = `npm run bench:adapters -- --preset ${options.preset} --dtype ${options.dtype} --rank ${options.rank} --adapters ${n} --threads ${options.threads}`;
  const section = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${await cpuModel()} (${cpus().length} cores), \`${command}\`:`,
    `a generated ${options.preset} base (${options.dtype}, file ${mib(result.baseFileBytes)}) and ${n} generated rank-${options.rank} adapters`,
    `(all seven projections of every block, F32, file ${mib(result.adapterFileBytes)} each), served by one \`grove serve\``,
    `(\`--parallel ${n} --ctx-size ${options.contextSize}\`); resident memory (VmRSS) of the server process.`,
    "",
    "| state | resident memory |",
    "| --- | ---: |",
    `| base loaded, one request | ${mib(result.baseBytes)} |`,
    `| + ${n} adapter forks, one request each | ${mib(result.withAdaptersBytes)} (+${mib(result.withAdaptersBytes - result.baseBytes)}) |`,
    `| + ${n} concurrent requests, one per fork | ${mib(result.afterConcurrentBytes)} |`,
    `| bound: base + ${n} × adapter + 10% | ${mib(result.limitBytes)} |`,
    `| before issue 19, one load of the base per fork: at least base + ${n} × base file | ≥ ${mib(result.baseBytes + n * result.baseFileBytes)} |`,
    "",
    `Loaded: ${result.loadedModels} model and ${result.loadedForks} forks on it; concurrent answers equal the answers alone: ${result.concurrentMatchesAlone ? "yes" : "NO"};`,
    `${result.distinctAnswers} distinct greedy answers among the ${n} forks.`,
  ].join("\n");
  console.log(section);
  if (writeDocs) await writeDocsSection(join(ROOT, "docs", "benchmarks.md"), section, benchMarkers("adapters"));
  if (!result.concurrentMatchesAlone || result.afterConcurrentBytes >= result.limitBytes) process.exitCode = 1;
} finally {
  await rm(directory, { recursive: true, force: true });
}
