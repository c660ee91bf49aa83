// `npm run demo:train [-- --home DIR --sizes s,m,l --epochs 2]`: trains the demo family's bases
// from scratch with Grove's own forge, resumably. Each step is skipped when its result exists,
// and an interrupted training job is resumed from its last finished epoch, so the script can be
// run again (even across sessions) until every size is trained:
//   1. the training synsets (npm run demo:corpus's split) as JSONL records, one per synset, in a
//      seeded shuffled order (WordNet's own order runs nouns, verbs, adjectives, adverbs: trained
//      in that order the model forgets the nouns and the held-out windows are all adverbs);
//   2. per size, a random-init model (`demo-s|m|l` preset, seed 1, F32) whose BPE merges are
//      learned from the first 3 MB of the training text, imported as demo-<size>:init;
//   3. per size, `grove finetune` over the whole training text with Grove's ggml trainer (every
//      tensor trains; llama.cpp's leaves the embeddings, keys and values at their random start):
//      ctx 256, stride 256, AdamW, gradients of 8 windows (2,048 tokens) per step, lr 1e-3
//      warmed up over 200 windows, cosine decay to 1e-4 — on one-window steps 1e-3 diverged and
//      1e-4 learned slowly; see docs/demo.md — stored as demo-<size>:base with its recipe and loss curve.
// The store lives in --home (default ~/.cache/grove/demo-home), outside the repository.
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createFinetuneJob, runFinetuneJob } from "../forge/finetune/finetune-job.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { seededShuffle } from "../forge/generate/seeded-random.js";
import { JobStore } from "../forge/jobs/job-store.js";
import { ModelStore } from "../store/model-store.js";
import { HELD_OUT_SHARE, readWordnet } from "./prepare-corpus.js";
import { isHeldOut, synsetText } from "./wordnet.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CORPUS = join(ROOT, "data", "demo", "corpus");
/** Bytes of training text the tokenizer's merges are learned from. */
const TOKENIZER_SAMPLE = 3_000_000;

interface Options {
  home: string;
  sizes: string[];
  epochs: number;
  threads: number | undefined;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { home: join(homedir(), ".cache", "grove", "demo-home"), sizes: ["s", "m", "l"], epochs: 1, threads: undefined };
  for (let index = 0; index < argv.length; index += 2) {
    const [flag, value] = [argv[index], argv[index + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--home") options.home = resolve(value);
    else if (flag === "--sizes") options.sizes = value.split(",");
    else if (flag === "--epochs") options.epochs = Number(value);
    else if (flag === "--threads") options.threads = Number(value);
    else throw new Error(`Unknown option ${flag}; see the header of src/demo/train-family.ts`);
  }
  return options;
}

function log(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const trainText = join(CORPUS, "train.txt");
  if (!existsSync(trainText)) throw new Error(`${trainText} is missing: run npm run demo:corpus first`);
  await mkdir(options.home, { recursive: true });
  const text = await readFile(trainText, "utf8");
  const data = join(options.home, "train.jsonl");
  if (!existsSync(data)) {
    // One record per training synset, exactly the text of train.txt.
    const synsets = seededShuffle((await readWordnet()).filter((synset) => !isHeldOut(synset, HELD_OUT_SHARE)), 1, "demo-shuffle");
    await writeFile(data, `${synsets.map((synset) => JSON.stringify({ text: synsetText(synset) })).join("\n")}\n`);
    log(`wrote ${data}`);
  }
  const store = await ModelStore.open(options.home);
  const jobs = new JobStore(store.home);
  try {
    for (const size of options.sizes) {
      const preset = `demo-${size}`;
      const init = `${preset}:init`;
      const base = `${preset}:base`;
      if ((await store.nameTarget(base)) !== undefined) {
        log(`${base} exists`);
        continue;
      }
      if ((await store.nameTarget(init)) === undefined) {
        const path = join(options.home, `${preset}-init.gguf`);
        await generateModel({ preset, seed: 1, dtype: "f32", outPath: path, corpus: text.slice(0, TOKENIZER_SAMPLE) });
        await store.importFile(path, { name: init, mode: "move" });
        log(`generated ${init}`);
      }
      const pending = (await jobs.list()).find((job) => job.kind === "finetune" && job.parameters.name === base && job.status !== "succeeded");
      const job =
        pending ??
        (await createFinetuneJob(store, jobs, {
          model: init,
          data,
          epochs: options.epochs,
          trainer: "ggml",
          // The shipped bases trained on the corpus in its order (their recipes have no shuffleSeed).
          shuffle: false,
          accumulate: 8,
          learningRate: 1e-3,
          learningRateMin: 1e-4,
          warmupSteps: 200,
          contextSize: 256,
          stride: 256,
          validationSplit: 0.02,
          name: base,
          ...(options.threads === undefined ? {} : { threads: options.threads }),
        }));
      log(`${pending === undefined ? "training" : "resuming"} ${base} (job ${job.id})`);
      const done = await runFinetuneJob(store, jobs, job.id, {
        onEvent: (event) => {
          if (event.event === "epoch") log(`${base} epoch ${event.epoch + 1}: train ${event.trainLoss.toFixed(4)}, validation ${event.validationLoss?.toFixed(4)}, ${Math.round(event.tokensPerSecond)} tokens/s`);
        },
      });
      log(`${base} = ${done.result?.digest}`);
    }
  } finally {
    await store.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
