import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateAdapter } from "../forge/generate/generate-adapter.js";
import { generateModel, type GenerateModelDtype } from "../forge/generate/generate-model.js";
import type { ModelPresetName } from "../forge/generate/model-presets.js";
import { ModelStore } from "../store/model-store.js";
import { listeningUrl } from "./server-process.js";

const BIN = fileURLToPath(new URL("../../bin/grove.js", import.meta.url));

/** Options of {@link measureAdapterMemory}. */
export interface AdapterMemoryOptions {
  /** A folder for the models and the store (left for the caller to remove). */
  directory: string;
  /** @default "small" */
  preset?: ModelPresetName;
  /** @default "f16" */
  dtype?: GenerateModelDtype;
  /** Adapter forks served at once. @default 8 */
  adapters?: number;
  /** LoRA rank of every adapter (all seven projections of every block). @default 8 */
  rank?: number;
  /** `grove serve --threads`. @default 1 */
  threads?: number;
  /** `grove serve --ctx-size` (per slot; one slot per adapter). @default 128 */
  contextSize?: number;
  /** Tokens each greedy request generates. @default 16 */
  maxTokens?: number;
}

/** What {@link measureAdapterMemory} measured, in bytes (resident memory of the `grove serve` process). */
export interface AdapterMemoryResult {
  baseFileBytes: number;
  adapterFileBytes: number;
  adapters: number;
  /** After a request to the base alone (`grove serve --model` loads it at start). */
  baseBytes: number;
  /** After a request to each adapter fork, one at a time. */
  withAdaptersBytes: number;
  /** After the adapters' concurrent requests too. */
  afterConcurrentBytes: number;
  /** `baseBytes + adapters × adapterFileBytes`, plus 10%: the bound. */
  limitBytes: number;
  /** Did every fork's answer under concurrency equal its answer alone (greedy, the same prompt cached)? */
  concurrentMatchesAlone: boolean;
  /** Distinct greedy answers among the forks. */
  distinctAnswers: number;
  /** Models the server reports loaded without a base (1: the shared base), and forks on it. */
  loadedModels: number;
  loadedForks: number;
}

/**
 * Serves one generated base and `adapters` generated adapter forks of it from a fresh store in a
 * child `grove serve` (so only the server's memory is read, from /proc/PID/status), and records its
 * resident memory with the base alone, then with every fork loaded; checks that concurrent requests
 * to all forks answer what each answers alone.
 */
export async function measureAdapterMemory(options: AdapterMemoryOptions): Promise<AdapterMemoryResult> {
  const count = options.adapters ?? 8;
  const home = join(options.directory, "home");
  const base = await generateModel({ preset: options.preset ?? "small", seed: 7, dtype: options.dtype ?? "f16", outPath: join(options.directory, "base.gguf") });
  const store = await ModelStore.open(home);
  let adapterFileBytes = 0;
  try {
    await store.importFile(base.path, { name: "bench:base" });
    for (let index = 0; index < count; index++) {
      const adapter = await generateAdapter({ basePath: base.path, seed: 100 + index, rank: options.rank ?? 8, strong: true, outPath: join(options.directory, `adapter-${index}.gguf`) });
      adapterFileBytes = adapter.fileSize;
      await store.importFile(adapter.path, { name: `bench:a${index}`, base: "bench:base" });
    }
  } finally {
    await store.close();
  }
  const server = await startServer(home, options, count);
  try {
    const names = Array.from({ length: count }, (_, index) => `bench:a${index}`);
    const greedy = (model: string) => complete(server.url, model, options.maxTokens ?? 16);
    await greedy("bench:base");
    const baseBytes = await resident(server.pid);
    for (const name of names) await greedy(name);
    const withAdaptersBytes = await resident(server.pid);
    // Again, alone: now each fork's slot holds its prompt, as it will under concurrency (a prefix
    // reused changes the batches, and with them the last bits of quantized matmuls).
    const alone: string[] = [];
    for (const name of names) alone.push(await greedy(name));
    const together = await Promise.all(names.map(greedy));
    const afterConcurrentBytes = await resident(server.pid);
    const loaded = (await (await fetch(`${server.url}/api/loaded`)).json()) as { models: { base?: string }[] };
    return {
      baseFileBytes: base.fileSize,
      adapterFileBytes,
      adapters: count,
      baseBytes,
      withAdaptersBytes,
      afterConcurrentBytes,
      limitBytes: (baseBytes + count * adapterFileBytes) * 1.1,
      concurrentMatchesAlone: together.every((text, index) => text === alone[index]),
      distinctAnswers: new Set(alone).size,
      loadedModels: loaded.models.filter((model) => model.base === undefined).length,
      loadedForks: loaded.models.filter((model) => model.base !== undefined).length,
    };
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
  }
}

async function startServer(home: string, options: AdapterMemoryOptions, slots: number) {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GROVE_")) env[key] = value;
  const args = [BIN, "serve", "--home", home, "--model", "bench:base", "--port", "0", "--threads", String(options.threads ?? 1), "--parallel", String(slots)];
  args.push("--ctx-size", String(options.contextSize ?? 128), "--log-level", "warn", "--web-dir", "none");
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
  const exited = once(child, "close");
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await listeningUrl(child, () => stderr);
  return { child, url, pid: child.pid!, exited };
}

/** Greedy text of a fixed prompt. */
async function complete(url: string, model: string, maxTokens: number): Promise<string> {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "the river and the stone", max_tokens: maxTokens, temperature: 0, seed: 1 }),
  });
  const body = (await response.json()) as { choices?: { text: string }[]; error?: { message: string } };
  if (!response.ok || body.choices === undefined) throw new Error(`${model}: ${response.status} ${body.error?.message ?? ""}`);
  return body.choices[0]!.text;
}

/** VmRSS of a process, in bytes. */
async function resident(pid: number): Promise<number> {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`No VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}
