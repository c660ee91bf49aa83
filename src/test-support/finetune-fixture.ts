import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { JobStore } from "../forge/jobs/job-store.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, type TestModel } from "./grove-fixture.js";

/** The sentence a fine-tune test's data repeats (each record adds `Line N.`, N from 0 to 3). */
export const FINETUNE_TEXT = "The grove stood at the edge of the valley, where the river turned east and the road became a path. ";

/** A store holding a generated base model, a job store, and a training file of 40 text records. */
export interface FinetuneFixture {
  readonly base: TestModel;
  readonly store: ModelStore;
  readonly jobs: JobStore;
  /** The JSONL training data: {@link FINETUNE_TEXT} and `Line N.` per record. */
  readonly dataPath: string;
}

/** Generates `preset` (seed 7), imports it as `name` into a fresh store and writes the training data. */
export async function createFinetuneFixture(preset: string, name: string): Promise<FinetuneFixture> {
  const base = await createTestModel(preset, 7);
  const store = await ModelStore.open(join(base.directory, "home"));
  const jobs = new JobStore(store.home);
  await store.importFile(base.path, { name });
  const dataPath = join(base.directory, "data.jsonl");
  const lines = Array.from({ length: 40 }, (_, index) => JSON.stringify({ text: `${FINETUNE_TEXT}Line ${index % 4}.` }));
  await writeFile(dataPath, `${lines.join("\n")}\n`);
  return { base, store, jobs, dataPath };
}
