// `npm run check:lora-parity [-- --base FILE --adapter FILE --prompts 20 --llama-server BIN]`
//
// An adapter served by Grove and by the reference `llama-server --lora` (issue 19): the same
// next-token distribution on each prompt. Both servers load the same base and adapter files
// (generated ones by default: a `small` F16 base and a LoRA adapter of every projection); each
// prompt's first-token distribution comes from `/completion` with `n_probs` = the vocabulary, and
// the KL divergence KL(llama-server ‖ Grove) is summed over every token. Exit status 1 when any
// prompt's divergence reaches 1e-4.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { generateAdapter } from "../forge/generate/generate-adapter.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { CORPUS } from "../forge/generate/corpus.js";
import { freePort } from "./server-process.js";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const GROVE = join(ROOT, "bin", "grove.js");
const LIMIT = 1e-4;
/** The prompts: the built-in corpus's sentences, their first six words. */
const PROMPTS = CORPUS.replace(/\s+/g, " ")
  .split(/(?<=[.!?]) /)
  .filter((sentence) => /^[A-Za-z ,]+/.test(sentence) && !/["']/.test(sentence) && sentence.split(" ").length >= 6)
  .map((sentence) => sentence.split(" ").slice(0, 6).join(" "));

interface Options {
  base?: string;
  adapter?: string;
  prompts: number;
  llamaServer: string;
  threads: number;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { prompts: 20, llamaServer: join(homedir(), ".cache", "grove", "llama.cpp", "build", "bin", "llama-server"), threads: Math.min(2, cpus().length) };
  for (let index = 0; index < argv.length; index += 2) {
    const [flag, value] = [argv[index], argv[index + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value; see the header of src/bench/lora-parity.ts`);
    if (flag === "--base") options.base = resolve(value);
    else if (flag === "--adapter") options.adapter = resolve(value);
    else if (flag === "--prompts") options.prompts = Number(value);
    else if (flag === "--llama-server") options.llamaServer = resolve(value);
    else if (flag === "--threads") options.threads = Number(value);
    else throw new Error(`Unknown option ${flag}; see the header of src/bench/lora-parity.ts`);
  }
  if (!Number.isInteger(options.prompts) || options.prompts < 1 || options.prompts > PROMPTS.length) throw new Error(`--prompts must be 1..${PROMPTS.length}`);
  return options;
}

async function waitHealthy(url: string, child: ChildProcess, name: string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with status ${child.exitCode} before answering`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`${name} did not answer /health within 120 s`);
}

/** Each token's probability of the first generated token, from `/completion` with every token's log-probability. */
async function distribution(url: string, prompt: string, vocabulary: number, model?: string): Promise<Float64Array> {
  const response = await fetch(`${url}/completion`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, n_predict: 1, n_probs: vocabulary, temperature: 0, cache_prompt: false, ...(model === undefined ? {} : { model }) }),
  });
  if (!response.ok) throw new Error(`${url}/completion answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { completion_probabilities: { top_logprobs: { id: number; logprob: number }[] }[] };
  const probabilities = new Float64Array(vocabulary);
  for (const entry of body.completion_probabilities[0]!.top_logprobs) probabilities[entry.id] = Math.exp(entry.logprob);
  return probabilities;
}

/** KL(p ‖ q) in nats, over tokens p gives weight; q's zero where p is not would be infinite. */
export function klDivergence(p: Float64Array, q: Float64Array): number {
  let sum = 0;
  for (let index = 0; index < p.length; index++) {
    if (p[index]! <= 0) continue;
    sum += p[index]! * Math.log(p[index]! / Math.max(q[index]!, 1e-300));
  }
  return sum;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const directory = await mkdtemp(join(tmpdir(), "grove-lora-parity-"));
  const children: ChildProcess[] = [];
  try {
    const base = options.base ?? join(directory, "base.gguf");
    if (options.base === undefined) await generateModel({ preset: "small", seed: 11, dtype: "f16", outPath: base });
    const adapter = options.adapter ?? join(directory, "adapter.gguf");
    if (options.adapter === undefined) await generateAdapter({ basePath: base, seed: 5, outPath: adapter, rank: 8, strong: true, targets: ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] });
    const home = join(directory, "home");
    const run = (args: string[]) => new Promise<void>((done, fail) => {
      const child = spawn(process.execPath, [GROVE, ...args, "--home", home], { stdio: ["ignore", "ignore", "inherit"] });
      child.once("exit", (code) => (code === 0 ? done() : fail(new Error(`grove ${args[0]} exited with ${code}`))));
    });
    await run(["import", base, "--name", "parity:base"]);
    await run(["import", adapter, "--base", "parity:base", "--name", "parity:lora"]);
    const [grovePort, llamaPort] = [await freePort(), await freePort()];
    const threads = String(options.threads);
    const grove = spawn(process.execPath, [GROVE, "serve", "--home", home, "--model", "parity:lora", "--port", String(grovePort), "--parallel", "1", "--threads", threads, "--web-dir", "none", "--log-level", "error"], { stdio: ["ignore", "ignore", "inherit"] });
    children.push(grove);
    const llama = spawn(options.llamaServer, ["-m", base, "--lora", adapter, "--port", String(llamaPort), "-np", "1", "-t", threads, "-c", "2048", "--no-webui"], { stdio: ["ignore", "ignore", "ignore"] });
    children.push(llama);
    const groveUrl = `http://127.0.0.1:${grovePort}`;
    const llamaUrl = `http://127.0.0.1:${llamaPort}`;
    await Promise.all([waitHealthy(groveUrl, grove, "grove serve"), waitHealthy(llamaUrl, llama, "llama-server")]);
    const vocabulary = await vocabularyOf(llamaUrl);
    const cpu = /^model name\s*:\s*(.+)$/m.exec(await readFile("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
    process.stdout.write(`LoRA parity, Grove vs llama-server --lora, ${options.prompts} prompts, vocabulary ${vocabulary}, ${cpu}\n`);
    let worst = 0;
    let total = 0;
    let smallestEffect = Infinity;
    for (const [index, prompt] of PROMPTS.slice(0, options.prompts).entries()) {
      const [reference, ours] = [await distribution(llamaUrl, prompt, vocabulary), await distribution(groveUrl, prompt, vocabulary)];
      // Both report rounded log-probabilities: a divergence within their noise may come out just below 0.
      const kl = Math.abs(klDivergence(reference, ours));
      // What the adapter does: the reference against the base alone (Grove serving the base).
      const effect = klDivergence(reference, await distribution(groveUrl, prompt, vocabulary, "parity:base"));
      worst = Math.max(worst, kl);
      total += kl;
      smallestEffect = Math.min(smallestEffect, effect);
      process.stdout.write(`${String(index + 1).padStart(3)}  KL ${kl.toExponential(3)}  (adapter vs base ${effect.toExponential(3)})  ${JSON.stringify(prompt)}\n`);
    }
    process.stdout.write(`mean KL ${(total / options.prompts).toExponential(3)}, max ${worst.toExponential(3)} (limit ${LIMIT}); the adapter moves the base by at least ${smallestEffect.toExponential(3)}\n`);
    // A parity that an adapter without effect would pass proves nothing.
    if (worst >= LIMIT || smallestEffect < 100 * LIMIT) process.exitCode = 1;
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await rm(directory, { recursive: true, force: true });
  }
}

/** The vocabulary's size, from llama-server's `/v1/models` (`meta.n_vocab`). */
async function vocabularyOf(url: string): Promise<number> {
  const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { meta?: { n_vocab?: number } }[] };
  const size = models.data[0]?.meta?.n_vocab;
  if (typeof size !== "number") throw new Error(`${url}/v1/models gives no meta.n_vocab`);
  return size;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  });
}
