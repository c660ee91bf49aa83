// `npm run demo:build [-- --home DIR --threads N]`: after `npm run demo:train`, derives and
// measures the demo family's forks in the same store, with Grove's own forge and bench — each
// step skipped when its result exists, so it can be rerun (it needs demo-s:base; sizes still
// training are skipped, so the chat fine-tune can start while demo-m and demo-l train).
// A home where demo-s was neither trained nor is training (a new machine: the store lives
// outside the repository) is first seeded with the shipped family (data/demo/models/, with its
// results), so a size trained there joins the family without retraining the others: each step
// below whose output the shipped family already holds is skipped. Retrain a shipped size in a
// fresh home: in a seeded one its shipped F16 fork is not the new base's, and the build stops.
//   1. the chat fine-tune's data (WordNet "What does X mean?" → the definition, and "What part
//      of speech is X?" → noun, verb, adjective or adverb, as many words of each; training
//      synsets only) in the store directory, and the task files in data/demo/tasks/
//      (committed: results are keyed by their digests);
//   2. demo-s-chat:f32, a full fine-tune of demo-s:base on that data;
//   3. F16 forks of every trained model (the shipped precision: demo-s:f16, demo-m:f16,
//      demo-l:f16, demo-s-chat:f16), and Q8_0 and Q4_0 forks of demo-s:f16 and demo-s-chat:f16;
//   4. evaluation: held-out perplexity of every model and of the untrained same-shape models,
//      KL divergence of each quantized fork against its F16 parent, the definition tasks;
//   5. with --bench, `grove bench` of every shipped model (short workload) for the front chart.
// `npm run demo:ship` then exports the shipped models (src/demo/ship.ts).
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { benchModel } from "../bench/cost/bench-model.js";
import { evaluateModel } from "../bench/quality/evaluate.js";
import { openResults } from "../results/open-results.js";
import { createFinetuneJob, runFinetuneJob } from "../forge/finetune/finetune-job.js";
import { JobStore } from "../forge/jobs/job-store.js";
import { quantizeFork } from "../forge/quantize/quantize-fork.js";
import { ModelStore } from "../store/model-store.js";
import { balancedByPos, chatRecord, definitionSynsets, multipleChoiceDocs, posChoiceDocs, posExactDocs, posRecord, posWords } from "./chat-task.js";
import { importShippedFamily, SHIPPED_FAMILY_DIR } from "./embedded.js";
import { HELD_OUT_SHARE, readWordnet } from "./prepare-corpus.js";
import { MANIFEST_FILE } from "./ship.js";
import { isHeldOut } from "./wordnet.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEMO_DIR = join(ROOT, "data", "demo");
export const HELDOUT_TEXT = join(DEMO_DIR, "corpus", "heldout.txt");
export const TASKS_DIR = join(DEMO_DIR, "tasks");

/** Chat fine-tune records (taught definitions). */
export const CHAT_RECORDS = 20_000;
/** Questions per task file. */
const TASK_ITEMS = 300;

/** The shipped models: F16 bases of each size, the chat fine-tune and the quantized forks. */
export const SHIPPED = ["demo-s:f16", "demo-m:f16", "demo-l:f16", "demo-s:q8_0", "demo-s:q4_0", "demo-s-chat:f16", "demo-s-chat:q8_0", "demo-s-chat:q4_0"] as const;
/** What `npm start` serves by default. */
export const DEFAULT_NAME = "demo-s-chat:f16";

interface Options {
  home: string;
  threads: number | undefined;
  bench: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { home: join(homedir(), ".cache", "grove", "demo-home"), threads: undefined, bench: false };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    if (flag === "--bench") {
      options.bench = true;
      continue;
    }
    const value = argv[++index];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--home") options.home = resolve(value);
    else if (flag === "--threads") options.threads = Number(value);
    else throw new Error(`Unknown option ${flag}; see the header of src/demo/build-family.ts`);
  }
  return options;
}

function log(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const jsonl = (records: readonly unknown[]): string => `${records.map((record) => JSON.stringify(record)).join("\n")}\n`;

/** Writes the chat data and the task files (deterministic: the same bytes on every run). */
export async function writeTaskFiles(home: string): Promise<{ chatData: string; tasks: Record<string, string> }> {
  const synsets = await readWordnet();
  const training = synsets.filter((synset) => !isHeldOut(synset, HELD_OUT_SHARE));
  const heldOut = synsets.filter((synset) => isHeldOut(synset, HELD_OUT_SHARE));
  const taught = definitionSynsets(training, 1).slice(0, CHAT_RECORDS);
  const unseen = definitionSynsets(heldOut, 2);
  // Balanced parts of speech, taught and tested: always answering "noun" scores 0.25.
  const posTaught = balancedByPos(posWords(synsets, training, 1), CHAT_RECORDS / 4);
  const taughtWords = new Set(posTaught.map((item) => item.word));
  const posUnseen = balancedByPos(posWords(synsets, heldOut, 2).filter((item) => !taughtWords.has(item.word)), TASK_ITEMS / 4);
  // Both kinds of question, spread evenly through the data: the fine-tune learns to answer either.
  const records: ReturnType<typeof chatRecord>[] = [];
  let next = 0;
  for (const [index, synset] of taught.entries()) {
    records.push(chatRecord(synset));
    while (next < posTaught.length && next * taught.length <= index * posTaught.length) records.push(posRecord(posTaught[next++]!));
  }
  const chatData = join(home, "chat-train.jsonl");
  await writeFile(chatData, jsonl(records));
  await mkdir(TASKS_DIR, { recursive: true });
  const tasks = {
    // The part of speech of words the fine-tune was never asked about (held-out synsets): an
    // instruction with a one-word answer, scored by exact match of the greedy reply.
    "pos-exact": join(TASKS_DIR, "pos-exact.jsonl"),
    // The same questions as a choice among the four names (log-likelihood of each).
    "pos-mc": join(TASKS_DIR, "pos-mc.jsonl"),
    // Definitions the chat fine-tune was taught, asked as it was taught: recall.
    "define-mc": join(TASKS_DIR, "define-mc.jsonl"),
    // Words no demo model saw (the held-out synsets).
    "define-mc-unseen": join(TASKS_DIR, "define-mc-unseen.jsonl"),
  };
  await writeFile(tasks["pos-exact"], jsonl(posExactDocs(posUnseen.slice(0, TASK_ITEMS))));
  await writeFile(tasks["pos-mc"], jsonl(posChoiceDocs(posUnseen.slice(0, TASK_ITEMS))));
  await writeFile(tasks["define-mc"], jsonl(multipleChoiceDocs(taught.slice(0, TASK_ITEMS), taught, 3)));
  await writeFile(tasks["define-mc-unseen"], jsonl(multipleChoiceDocs(unseen.slice(0, TASK_ITEMS), unseen, 4)));
  return { chatData, tasks };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const store = await ModelStore.open(options.home);
  const jobs = new JobStore(store.home);
  const results = await openResults({ home: store.home, database: "" });
  const threads = options.threads === undefined ? {} : { threads: options.threads };
  const exists = async (name: string): Promise<boolean> => (await store.nameTarget(name)) !== undefined;
  try {
    // (Not while demo-s trains here: its own chat fine-tune and forks are to be built.)
    if (!(await exists("demo-s:base")) && !(await exists("demo-s:init")) && existsSync(join(SHIPPED_FAMILY_DIR, MANIFEST_FILE))) {
      const { imported } = await importShippedFamily(store, results, SHIPPED_FAMILY_DIR);
      if (imported.length > 0) log(`seeded ${store.home} with the shipped family (${imported.join(", ")}): demo-s:base was not trained here`);
    }
    if (!(await exists("demo-s:base")) && !(await exists("demo-s-chat:f16"))) throw new Error("demo-s:base is missing: run npm run demo:train first");
    // The chat fine-tune needs only demo-s: sizes still training are skipped (run again later).
    const sizes: string[] = [];
    for (const size of ["s", "m", "l"]) {
      if ((await exists(`demo-${size}:base`)) || (await exists(`demo-${size}:f16`))) sizes.push(size);
      else log(`demo-${size}:base is not trained yet: its forks and evaluations are skipped`);
    }
    const { chatData, tasks } = await writeTaskFiles(store.home);
    log(`wrote ${chatData} and the task files in ${TASKS_DIR}`);

    if (!(await exists("demo-s-chat:f32")) && !(await exists("demo-s-chat:f16"))) {
      const pending = (await jobs.list()).find((job) => job.kind === "finetune" && job.parameters.name === "demo-s-chat:f32" && job.status !== "succeeded");
      const job =
        pending ??
        (await createFinetuneJob(store, jobs, {
          model: "demo-s:base",
          data: chatData,
          trainer: "ggml",
          // The shipped demo-s-chat trained on every token (its recipe has no lossOn): kept, so
          // this script still makes the fork docs/demo.md measures.
          lossOn: "all",
          // …and in the file's order (its recipe has no shuffleSeed).
          shuffle: false,
          accumulate: 8,
          epochs: 3,
          learningRate: 1e-3,
          learningRateMin: 1e-4,
          warmupSteps: 100,
          contextSize: 256,
          validationSplit: 0.02,
          name: "demo-s-chat:f32",
          ...threads,
        }));
      log(`fine-tuning demo-s-chat:f32 (job ${job.id})`);
      await runFinetuneJob(store, jobs, job.id, {
        onEvent: (event) => {
          if (event.event === "epoch") log(`demo-s-chat epoch ${event.epoch + 1}: train ${event.trainLoss.toFixed(4)}, validation ${event.validationLoss?.toFixed(4)}`);
        },
      });
    }

    const quantize = async (model: string, type: string, name: string): Promise<void> => {
      if (await exists(name)) {
        // A fork that came with the shipped family beside a base trained in this home would ship
        // a stale file under the new base's name.
        const parent = await store.nameTarget(model);
        if (parent !== undefined && !(await store.show(name)).parents.some((edge) => edge.parent === parent)) {
          throw new Error(`${name} in ${store.home} is not a fork of this home's ${model} (it came with the shipped family): retrain a shipped size in a fresh --home`);
        }
        return;
      }
      const result = await quantizeFork(store, { model, type, name, ...threads });
      log(`${name} = ${result.import.model.digest} (${result.bitsPerWeight.toFixed(2)} bits/weight)`);
    };
    for (const size of sizes) await quantize(`demo-${size}:base`, "F16", `demo-${size}:f16`);
    await quantize("demo-s-chat:f32", "F16", "demo-s-chat:f16");
    for (const family of ["demo-s", "demo-s-chat"]) {
      await quantize(`${family}:f16`, "Q8_0", `${family}:q8_0`);
      await quantize(`${family}:f16`, "Q4_0", `${family}:q4_0`);
    }

    const evaluate = async (model: string, task: string, extra: { reference?: string; taskName?: string } = {}): Promise<void> => {
      const text = task === "perplexity" || task === "kl-divergence" ? { text: HELDOUT_TEXT } : {};
      const { result, reused } = await evaluateModel(store, results, model, { task, contextSize: 256, ...text, ...threads, ...extra });
      if (!reused) log(`${model} ${extra.taskName ?? task}: ${JSON.stringify(result.metrics)}${result.flags.length > 0 ? ` flags ${result.flags.join(",")}` : ""}`);
    };
    // The untrained same-shape models are the reference the bases must be far below.
    const built = async (names: readonly string[]): Promise<string[]> => {
      const found: string[] = [];
      for (const name of names) if (await exists(name)) found.push(name);
      return found;
    };
    // (A seeded home has no untrained model of a shipped size: its figure is in the shipped card.)
    for (const model of await built(sizes.map((size) => `demo-${size}:init`))) await evaluate(model, "perplexity");
    for (const model of await built(SHIPPED)) await evaluate(model, "perplexity");
    for (const model of ["demo-s:q8_0", "demo-s:q4_0", "demo-s-chat:q8_0", "demo-s-chat:q4_0"]) await evaluate(model, "kl-divergence");
    for (const model of await built(["demo-s:f16", "demo-m:f16", "demo-l:f16", "demo-s-chat:f16", "demo-s-chat:q8_0", "demo-s-chat:q4_0"])) {
      for (const [taskName, path] of Object.entries(tasks)) await evaluate(model, path, { taskName });
    }

    if (options.bench) {
      for (const model of await built(SHIPPED)) {
        const { result, reused } = await benchModel(store, results, model, { contextSize: 512, slots: 4, promptTokens: 128, outputTokens: 64, concurrency: [1, 4], ...threads });
        if (!reused) log(`${model} bench: ${JSON.stringify(result.metrics)}`);
      }
    }
  } finally {
    await results.close();
    await store.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

