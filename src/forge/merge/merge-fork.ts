import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { AbortedError } from "../../core/errors.js";
import type { ImportResult, ModelStore } from "../../store/model-store.js";
import { mergeModels, type MergeMethod } from "./merge-models.js";

/** Grove's version, recorded in merge recipes. */
const GROVE_VERSION = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The recipe tool name of a merge fork. */
export const MERGE_TOOL = "grove merge";

/** What {@link mergeFork} needs. */
export interface MergeForkOptions {
  /** Models to merge: names, digests or digest prefixes in the store. */
  models: readonly string[];
  method: MergeMethod;
  /** One weight per model. @default see mergeModels */
  weights?: readonly number[];
  /** Common ancestor for task-arithmetic. */
  base?: string;
  /** Name to point at the merged fork (also its `general.name`). */
  name?: string;
  /** Checked between chunks: aborting stops the merge; nothing is stored. */
  signal?: AbortSignal;
  /** Bytes written so far and the final size. */
  onProgress?: (writtenBytes: number, totalBytes: number) => void;
}

/**
 * Merges models of the store (see mergeModels) and imports the result as a `merge` fork of all
 * its inputs (and the base), with the recipe (method, weights, input digests). Shared by
 * `grove merge` and the server's forge jobs.
 *
 * @throws ModelNotFoundError for an unknown model, InvalidRequestError when the models cannot be
 *   merged, AbortedError when `signal` aborts
 */
export async function mergeFork(store: ModelStore, options: MergeForkOptions): Promise<ImportResult> {
  const inputs = await Promise.all(options.models.map((ref) => store.show(ref)));
  const base = options.base === undefined ? undefined : await store.show(options.base);
  const outPath = await store.blobs.createTempPath();
  const { signal, onProgress } = options;
  try {
    const merged = await mergeModels({
      inputs: inputs.map((input) => input.path),
      method: options.method,
      ...(options.weights === undefined ? {} : { weights: options.weights }),
      ...(base === undefined ? {} : { base: base.path }),
      outPath,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(signal === undefined && onProgress === undefined
        ? {}
        : {
            onProgress: (written: number, total: number) => {
              if (signal?.aborted) throw new AbortedError("Merge cancelled");
              onProgress?.(written, total);
            },
          }),
    });
    if (signal?.aborted) throw new AbortedError("Merge cancelled");
    const parents = [...new Set([...inputs.map((input) => input.model.digest), ...(base === undefined ? [] : [base.model.digest])])];
    return await store.importFile(outPath, {
      ...(options.name === undefined ? {} : { name: options.name }),
      bases: parents,
      relation: "merge",
      recipe: {
        tool: MERGE_TOOL,
        toolVersion: GROVE_VERSION,
        parameters: { method: options.method, weights: merged.weights, ...(base === undefined ? {} : { base: base.model.digest }) },
        inputs: parents,
      },
      mode: "move",
    });
  } finally {
    await rm(outPath, { force: true });
  }
}
