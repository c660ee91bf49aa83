// `npm run demo:ship [-- --home DIR]`: after demo:train and demo:build, writes the shipped demo
// family to data/demo/models/ — the GGUF files, and a manifest with lineage, recipes, results
// and a model card per model (data, licence, size, training curve, held-out perplexity beside
// the perplexity of the same shape untrained) — and the recipes to data/demo/recipes/.
import { mkdir, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { openResults } from "../results/open-results.js";
import type { ResultRecord } from "../results/result-store.js";
import { JobStore } from "../forge/jobs/job-store.js";
import { formatRecipe, recipeOf } from "../forge/recipe/recipe.js";
import { ModelStore } from "../store/model-store.js";
import { DEFAULT_NAME, DEMO_DIR, SHIPPED } from "./build-family.js";
import { SHIPPED_FAMILY_DIR } from "./embedded.js";
import { exportFamily, fileNameOf } from "./ship.js";

const LICENSE_NOTE = "Weights trained by Grove on WordNet 3.0 text (Princeton University, WordNet 3.0 licence; see data/demo/corpus/SOURCE.md)";

/** A question of the chat fine-tune's task, about a word its chat data never asks about. */
const EXAMPLE_PROMPT = "What part of speech is gladness?";

const DESCRIPTIONS: Record<string, string> = {
  "demo-s": "Grove's demo base model, small: a Llama-architecture transformer trained from scratch on WordNet 3.0 glosses and examples",
  "demo-m": "Grove's demo base model, medium: a Llama-architecture transformer trained from scratch on WordNet 3.0 glosses and examples",
  "demo-l": "Grove's demo base model, large: a Llama-architecture transformer trained from scratch on WordNet 3.0 glosses and examples",
  "demo-s-chat": "demo-s fine-tuned on two chat instructions (ChatML): 'What does X mean?', answered with the word's WordNet definition, and 'What part of speech is X?', answered noun, verb, adjective or adverb",
};

function options(argv: string[]): { home: string } {
  let home = join(homedir(), ".cache", "grove", "demo-home");
  for (let index = 0; index < argv.length; index += 2) {
    if (argv[index] === "--home" && argv[index + 1] !== undefined) home = resolve(argv[index + 1]!);
    else throw new Error(`Unknown option ${argv[index]}; see the header of src/demo/ship-family.ts`);
  }
  return { home };
}

const round = (value: number, digits = 4): number => Number(value.toPrecision(digits));

async function main(): Promise<void> {
  const { home } = options(process.argv.slice(2));
  const store = await ModelStore.open(home);
  const results = await openResults({ home, database: "" });
  const jobs = new JobStore(home);
  try {
    const all = await results.list();
    const perplexityOf = (digest: string): number | undefined => {
      const row = all.find((result: ResultRecord) => result.modelDigest === digest && result.task === "perplexity" && result.flags.length === 0);
      return typeof row?.metrics.perplexity === "number" ? round(row.metrics.perplexity) : undefined;
    };
    const finished = (await jobs.list()).filter((job) => job.kind === "finetune" && job.status === "succeeded");
    const roots: Record<string, { card: Record<string, unknown> }> = {};
    // What is built so far: a size still training ships later (run demo:build and demo:ship again).
    const names: string[] = [];
    for (const name of SHIPPED) {
      if ((await store.nameTarget(name)) !== undefined) names.push(name);
      else process.stderr.write(`${name} is not built yet: not shipped\n`);
    }
    if (!names.includes(DEFAULT_NAME)) throw new Error(`${DEFAULT_NAME} is not built yet: run npm run demo:build first`);
    for (const name of names) {
      const family = name.split(":")[0]!;
      const details = await store.show(name);
      const card: Record<string, unknown> = { description: DESCRIPTIONS[family], license_note: LICENSE_NOTE, parameters: details.model.parameterCount };
      // What `grove serve` prints for the user to try: the chat models' task, which they were taught.
      if (family === "demo-s-chat") card.example_prompt = EXAMPLE_PROMPT;
      const heldOut = perplexityOf(details.model.digest);
      if (heldOut !== undefined) card.heldout_perplexity = heldOut;
      if (name.endsWith(":f16")) {
        // The trained F32 model this F16 file converts, and the job that trained it.
        const trainedName = family === "demo-s-chat" ? "demo-s-chat:f32" : `${family}:base`;
        const job = finished.find((record) => record.parameters.name === trainedName);
        if (job !== undefined) {
          const steps = (job.steps ?? []).filter((step) => !step.validation);
          const every = Math.max(1, Math.floor(steps.length / 40));
          card.training = {
            data: family === "demo-s-chat" ? "20,000 WordNet definitions and 9,136 part-of-speech questions (2,284 per part of speech) as chat turns (src/demo/chat-task.ts)" : "WordNet 3.0 training split, one record per synset, shuffled (npm run demo:corpus)",
            data_digest: job.parameters.dataDigest,
            tokens: job.parameters.tokens,
            epochs: job.parameters.epochs,
            learning_rate: job.parameters.learningRate,
            learning_rate_min: job.parameters.learningRateMin,
            warmup_steps: job.parameters.warmupSteps,
            context: job.parameters.contextSize,
            epoch_losses: (job.epochs ?? []).map((epoch) => ({ epoch: epoch.epoch + 1, train: round(epoch.trainLoss), validation: epoch.validationLoss === null ? null : round(epoch.validationLoss) })),
            loss_curve: steps.filter((_, index) => index % every === 0 || index === steps.length - 1).map((step) => [step.step, round(step.loss)]),
          };
        }
        // (A home seeded with the shipped family has no untrained model of a shipped size: the
        // figure is kept from the card the model was imported with.)
        if (family !== "demo-s-chat" && (await store.nameTarget(`${family}:init`)) !== undefined) {
          const init = await store.show(`${family}:init`);
          const random = perplexityOf(init.model.digest);
          if (random !== undefined) card.untrained_heldout_perplexity = random;
        }
      }
      roots[name] = { card };
    }
    const outDir = SHIPPED_FAMILY_DIR;
    const { manifest } = await exportFamily(store, results, { names, outDir, defaultName: DEFAULT_NAME, roots });
    // The recipes of the shipped forks, for `grove build` (the bases' recipes are in their cards).
    // Every model of the lineage, the unshipped F32 and untrained ones included: the whole tree.
    // A recipe this home cannot compute (a model trained on another machine, whose home was
    // seeded from the shipped family) keeps its committed file.
    const recipes = join(DEMO_DIR, "recipes");
    await mkdir(recipes, { recursive: true });
    for (const name of ["demo-s:base", "demo-m:base", "demo-l:base", "demo-s-chat:f32", ...names]) {
      let document;
      try {
        document = await recipeOf(store, name);
      } catch {
        continue; // a root (the untrained models are made by generateModel, see train-family.ts)
      }
      await writeFile(join(recipes, fileNameOf(name).replace(/\.gguf$/, ".recipe.json")), formatRecipe(document));
    }
    const bytes = manifest.models.reduce((sum, model) => sum + model.bytes, 0);
    process.stderr.write(`wrote ${manifest.models.length} models (${(bytes / 2 ** 20).toFixed(1)} MiB) and ${manifest.results.length} results to ${outDir}\n`);
  } finally {
    await results.close();
    await store.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
