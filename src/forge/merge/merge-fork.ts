import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { AbortedError, InvalidRequestError } from "../../core/errors.js";
import type { ImportResult, ModelStore } from "../../store/model-store.js";
import { bakeAdapter } from "./bake-adapter.js";
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

/** What {@link bakeAdapterFork} needs. */
export interface BakeAdapterForkOptions {
  /** The adapter fork (or any LoRA adapter model of the store). */
  adapter: string;
  /** The model to bake it into. @default the adapter fork's parent */
  base?: string;
  /** Multiplies the adapter. @default 1 */
  scale?: number;
  /** Name to point at the baked fork (also its `general.name`). */
  name?: string;
}

/**
 * Bakes a LoRA adapter into its base (see bakeAdapter) and imports the result as a `merge` fork
 * of the base and the adapter, with a recipe (`method: "adapter"`) that rebuilds it. The base
 * defaults to the adapter fork's parent; another file of the same model (its F16 original, when
 * the adapter was trained on a quantized base) may be named instead.
 *
 * @throws ModelNotFoundError for an unknown model; InvalidRequestError when the model is not an
 *   adapter, has no parent and no base is named, or does not fit the base
 */
export async function bakeAdapterFork(store: ModelStore, options: BakeAdapterForkOptions): Promise<ImportResult> {
  const adapter = await store.show(options.adapter);
  const parent = adapter.parents.find((edge) => edge.relation === "adapter")?.parent;
  if (options.base === undefined && parent === undefined) {
    throw new InvalidRequestError(`${options.adapter} is not an adapter fork of a model in the store; name the model to bake it into`, { param: "base" });
  }
  const base = await store.show(options.base ?? parent!);
  const scale = options.scale ?? 1;
  if (!Number.isFinite(scale)) throw new InvalidRequestError(`scale must be a finite number, got ${scale}`, { param: "scale" });
  const outPath = await store.blobs.createTempPath();
  try {
    await bakeAdapter({ basePath: base.path, adapterPath: adapter.path, outPath, scale, ...(options.name === undefined ? {} : { name: options.name }) });
    const parents = [base.model.digest, adapter.model.digest];
    return await store.importFile(outPath, {
      ...(options.name === undefined ? {} : { name: options.name }),
      bases: parents,
      relation: "merge",
      recipe: { tool: MERGE_TOOL, toolVersion: GROVE_VERSION, parameters: { method: "adapter", ...(scale === 1 ? {} : { scale }) }, inputs: parents },
      mode: "move",
    });
  } finally {
    await rm(outPath, { force: true });
  }
}
