import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import type { Digest } from "../../core/digest.js";
import { DigestMismatchError, InvalidRequestError, ModelNotFoundError } from "../../core/errors.js";
import { digestOfFile } from "../../store/file-digest.js";
import type { ImportResult, ModelStore } from "../../store/model-store.js";
import { MERGE_TOOL } from "../merge/merge-fork.js";
import { bakeAdapter } from "../merge/bake-adapter.js";
import { mergeModels, MERGE_METHODS, type MergeMethod } from "../merge/merge-models.js";
import { QUANTIZE_TOOL } from "../quantize/quantize-fork.js";
import { quantizeModel, quantizerVersion } from "../quantize/quantize-model.js";
import { parseQuantizeType } from "../quantize/quantize-types.js";
import { modelConfigOf } from "../../core/model-config.js";
import { configForkDigest, createConfigFork, MODELFILE_TOOL, modelConfigFromFields } from "../modelfile/config-fork.js";
import { mergeModelConfig } from "../modelfile/modelfile.js";
import { storedRecipe, type RecipeDocument } from "./recipe.js";

/** What a {@link Rebuilder} gets besides the store and the recipe: every input, already checked. */
export interface RebuildContext {
  /** Blob paths of the `model` inputs, by digest. */
  models: ReadonlyMap<Digest, string>;
  /** Files of the `data` inputs, by digest; each one's sha256 was checked against its digest. */
  data: ReadonlyMap<Digest, string>;
  /** Where to write the output: a temp path in the store, removed by the caller after import. */
  output: string;
  /** Threads for tools that take them. @default the tool's default */
  threads?: number;
  /** Aborting stops the tool; nothing is stored. */
  signal?: AbortSignal;
}

/** Re-creates the output of one recipe tool. */
export interface Rebuilder {
  /** The version this Grove records for the tool now; a recipe with another one gets a warning. */
  version(): string;
  /**
   * Writes the output to `context.output`. Throws InvalidRequestError for parameters it cannot
   * honour (an unknown one included: a silently ignored parameter would make another model).
   */
  rebuild(store: ModelStore, recipe: RecipeDocument, context: RebuildContext): Promise<void>;
}

const rebuilders = new Map<string, Rebuilder>();

/**
 * Registers how to rebuild the forks of a recipe tool (replacing any earlier one for `tool`).
 * The built-in tools (quantize, merge) are registered below; a tool elsewhere in `forge/` (the
 * fine-tune) registers itself from its module, which the CLI imports.
 *
 * @example
 * registerRebuilder(FINETUNE_TOOL, { version: finetuneVersion, rebuild: async (store, recipe, context) => … });
 */
export function registerRebuilder(tool: string, rebuilder: Rebuilder): void {
  rebuilders.set(tool, rebuilder);
}

/** The tools that can be rebuilt, sorted. */
export function rebuildableTools(): string[] {
  return [...rebuilders.keys()].sort();
}

/** What {@link rebuildFork} needs besides the recipe. */
export interface RebuildForkOptions {
  /** Name to point at the rebuilt fork. @default the recipe's output name, when it matches and the name is free */
  name?: string;
  /** Files for the recipe's `data` inputs, matched to them by sha256. */
  data?: readonly string[];
  /** Threads for tools that take them. */
  threads?: number;
  signal?: AbortSignal;
  /** Told about things that may make the digest differ (another tool version). */
  onWarning?: (message: string) => void;
}

/** What {@link rebuildFork} did. */
export interface RebuildForkResult {
  import: ImportResult;
  /** The digest the recipe promised. */
  expected: Digest;
  /** True when the rebuilt fork has the recipe's digest. */
  matches: boolean;
  /** Warnings given (also passed to `onWarning`). */
  warnings: string[];
}

/**
 * Rebuilds a recipe's fork and imports it with the recipe's lineage (one edge per model input,
 * the recipe's relation) and recipe. Everything is checked before anything is written: the tool
 * is known, every model input is in the store, every data input is supplied with the right
 * digest. When the result differs from the recipe's output digest it is stored anyway (for
 * `grove diff`), unnamed unless `name` is given, and recorded with the tool version that made it.
 *
 * @throws InvalidRequestError for an unknown tool, a missing or extra data file, or parameters
 *   the tool cannot honour, or a model input that is not in the store (caused by ModelNotFoundError)
 * @throws DigestMismatchError when a data file's digest is not the input's
 */
export async function rebuildFork(store: ModelStore, recipe: RecipeDocument, options: RebuildForkOptions = {}): Promise<RebuildForkResult> {
  if (recipe.relation === "config") return rebuildConfigFork(store, recipe, options);
  const rebuilder = rebuilders.get(recipe.tool);
  if (rebuilder === undefined) {
    throw new InvalidRequestError(`Unknown recipe tool '${recipe.tool}'; Grove can rebuild: ${rebuildableTools().join(", ")}`, { param: "tool" });
  }
  const models = await modelInputs(store, recipe);
  const data = await dataInputs(recipe, options.data ?? []);
  const warnings: string[] = [];
  const version = rebuilder.version();
  if (version !== recipe.toolVersion) {
    warnings.push(`the recipe was made with ${recipe.tool} ${recipe.toolVersion}, this Grove has ${version}; the digest may differ`);
    options.onWarning?.(warnings.at(-1)!);
  }
  const output = await store.blobs.createTempPath();
  try {
    await rebuilder.rebuild(store, recipe, {
      models,
      data,
      output,
      ...(options.threads === undefined ? {} : { threads: options.threads }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const digest = await digestOfFile(output);
    const matches = digest === recipe.output.digest;
    const name = options.name ?? (matches ? await freeName(store, recipe.output.name, digest) : undefined);
    const result = await store.importFile(output, {
      ...(name === undefined ? {} : { name }),
      bases: [...models.keys()],
      relation: recipe.relation,
      recipe: { ...storedRecipe(recipe), ...(matches ? {} : { toolVersion: version }) },
      mode: "move",
    });
    return { import: result, expected: recipe.output.digest, matches, warnings };
  } finally {
    await rm(output, { force: true }); // left only when the rebuild or import failed
  }
}

/** What {@link rebuildWithParents} needs besides the recipe. */
export interface RebuildWithParentsOptions extends RebuildForkOptions {
  /**
   * Rebuild model inputs missing from the store from the recipes the document carries for them
   * (parents first). False refuses instead, naming them. @default true
   */
  recursive?: boolean;
  /** Told the recipes about to be built, parents first and the fork last, before any is. */
  onPlan?: (steps: readonly RecipeDocument[]) => void;
}

/** What {@link rebuildWithParents} did: the fork's result, and each parent's it rebuilt first. */
export interface RebuildWithParentsResult extends RebuildForkResult {
  /** The parents rebuilt, in the order they were built. */
  parents: RebuildForkResult[];
}

/**
 * The recipes to build for `recipe`, parents first and `recipe` last: every model input missing
 * from the store, found in the recipe the document carries for it (`inputs[].recipe`), and so on
 * down to inputs the store has. A shared ancestor is built once.
 *
 * @throws InvalidRequestError for a missing model input whose recipe the document does not carry
 */
export async function rebuildPlan(store: ModelStore, recipe: RecipeDocument): Promise<RecipeDocument[]> {
  const steps: RecipeDocument[] = [];
  const planned = new Set<Digest>();
  const visit = async (document: RecipeDocument): Promise<void> => {
    for (const input of document.inputs) {
      if (input.role !== "model" || planned.has(input.digest) || (await store.model(input.digest)) !== undefined) continue;
      if (input.recipe === undefined) {
        const label = input.name === undefined ? input.digest : `${input.digest} (${input.name})`;
        throw new InvalidRequestError(`The recipe's input ${label} is not in the store and the document has no recipe for it; pull or import it first`, { param: "inputs", cause: new ModelNotFoundError(input.digest) });
      }
      await visit(input.recipe);
      planned.add(input.digest);
      steps.push(input.recipe);
    }
  };
  await visit(recipe);
  return [...steps, recipe];
}

/**
 * {@link rebuildFork}, after rebuilding the model inputs the store lacks from the recipes the
 * document carries for them (see {@link rebuildPlan}). `data` files go to the recipes whose data
 * inputs they are. A parent that does not reproduce its digest stops the build: the fork's recipe
 * names the parent by that digest.
 *
 * @throws InvalidRequestError with `recursive: false` when a model input is missing
 * @throws DigestMismatchError when a rebuilt parent's digest differs from its recipe's
 */
export async function rebuildWithParents(store: ModelStore, recipe: RecipeDocument, options: RebuildWithParentsOptions = {}): Promise<RebuildWithParentsResult> {
  const steps = await rebuildPlan(store, recipe);
  if (steps.length > 1 && options.recursive === false) {
    const missing = recipe.inputs.filter((input) => steps.some((step) => step.output.digest === input.digest));
    const list = missing.map((input) => (input.name === undefined ? input.digest : `${input.digest} (${input.name})`)).join(", ");
    throw new InvalidRequestError(`The recipe's input ${list} is not in the store; build it first, or leave out --no-recursive to rebuild it from the recipe the document carries`, { param: "inputs" });
  }
  options.onPlan?.(steps);
  const files = options.data ?? [];
  const digests = steps.length > 1 ? await Promise.all(files.map((file) => digestOfFile(file))) : [];
  const dataFor = (step: RecipeDocument, last: boolean): string[] => {
    if (steps.length === 1) return [...files];
    const wanted = new Set(step.inputs.filter((input) => input.role === "data").map((input) => input.digest));
    // A file no step wants goes to the fork's, which names it as none of its inputs.
    const wantedAnywhere = (digest: Digest) => steps.some((each) => each.inputs.some((input) => input.role === "data" && input.digest === digest));
    return files.filter((_, index) => wanted.has(digests[index]!) || (last && !wantedAnywhere(digests[index]!)));
  };
  const { name: _name, recursive: _recursive, onPlan: _onPlan, ...shared } = options;
  const parents: RebuildForkResult[] = [];
  for (const step of steps.slice(0, -1)) {
    const result = await rebuildFork(store, step, { ...shared, data: dataFor(step, false) });
    parents.push(result);
    if (!result.matches) {
      throw new DigestMismatchError(
        `The parent ${step.output.name ?? step.output.digest} rebuilt to ${result.import.model.digest}, not its recipe's ${step.output.digest}: the fork's recipe needs the latter (stored for comparison)`,
        step.output.digest,
        result.import.model.digest,
      );
    }
  }
  return { ...(await rebuildFork(store, recipe, { ...shared, ...(options.name === undefined ? {} : { name: options.name }), data: dataFor(recipe, true) })), parents };
}

/** A config fork has no file to write: its recipe (the fork's own Modelfile instructions) is applied to its parent again. */
async function rebuildConfigFork(store: ModelStore, recipe: RecipeDocument, options: RebuildForkOptions): Promise<RebuildForkResult> {
  if (recipe.tool !== MODELFILE_TOOL) throw new InvalidRequestError(`A config fork is made by '${MODELFILE_TOOL}', not '${recipe.tool}'`, { param: "tool" });
  checkParameters(recipe, ["system", "template", "license", "parameters", "messages"]);
  onlyModelInputs(recipe, 1);
  const [parent] = (await modelInputs(store, recipe)).keys();
  const config = modelConfigFromFields(recipe.parameters);
  const digest = configForkDigest(parent!, mergeModelConfig(modelConfigOf((await store.model(parent!))!.card), config));
  const matches = digest === recipe.output.digest;
  const name = options.name ?? (matches ? await freeName(store, recipe.output.name, digest) : undefined);
  const result = await createConfigFork(store, { parent: parent!, config, ...(name === undefined ? {} : { name }) });
  return { import: result, expected: recipe.output.digest, matches, warnings: [] };
}

async function modelInputs(store: ModelStore, recipe: RecipeDocument): Promise<Map<Digest, string>> {
  const models = new Map<Digest, string>();
  for (const input of recipe.inputs.filter((each) => each.role === "model")) {
    if ((await store.model(input.digest)) === undefined) {
      const label = input.name === undefined ? input.digest : `${input.digest} (${input.name})`;
      throw new InvalidRequestError(`The recipe's input ${label} is not in the store; pull or import it first`, { param: "inputs", cause: new ModelNotFoundError(input.digest) });
    }
    models.set(input.digest, store.blobs.pathOf(input.digest));
  }
  return models;
}

async function dataInputs(recipe: RecipeDocument, files: readonly string[]): Promise<Map<Digest, string>> {
  const wanted = recipe.inputs.filter((input) => input.role === "data");
  const data = new Map<Digest, string>();
  for (const file of files) {
    const digest = await digestOfFile(file);
    if (!wanted.some((input) => input.digest === digest)) {
      const expected = wanted.map((input) => input.digest);
      const message = `--data ${file} (${digest}) is none of the recipe's data inputs${expected.length === 0 ? " (it has none)" : `: ${expected.join(", ")}`}`;
      throw new DigestMismatchError(message, expected.join(","), digest);
    }
    data.set(digest, file);
  }
  const missing = wanted.filter((input) => !data.has(input.digest));
  if (missing.length > 0) {
    const list = missing.map((input) => (input.name === undefined ? input.digest : `${input.digest} (${input.name})`)).join(", ");
    throw new InvalidRequestError(`The recipe needs data input ${list}; pass the file with --data PATH`, { param: "data" });
  }
  return data;
}

/** `name` when no other model has it. */
async function freeName(store: ModelStore, name: string | undefined, digest: Digest): Promise<string | undefined> {
  if (name === undefined) return undefined;
  const target = await store.nameTarget(name);
  return target === undefined || target === digest ? name : undefined;
}

function checkParameters(recipe: RecipeDocument, allowed: readonly string[]): void {
  const unknown = Object.keys(recipe.parameters).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new InvalidRequestError(`The ${recipe.tool} rebuilder does not know the parameter '${unknown[0]}' (it knows: ${allowed.join(", ")})`, { param: `parameters.${unknown[0]}` });
  }
}

function onlyModelInputs(recipe: RecipeDocument, count: number | undefined): void {
  const models = recipe.inputs.filter((input) => input.role === "model").length;
  if (models !== recipe.inputs.length) throw new InvalidRequestError(`A ${recipe.tool} recipe has no data inputs`, { param: "inputs" });
  if (count !== undefined && models !== count) throw new InvalidRequestError(`A ${recipe.tool} recipe has ${count} input, got ${models}`, { param: "inputs" });
}

// Built-in rebuilders: the tools of `grove quantize` and `grove merge`.

/** Grove's version, which merge-fork.ts records for merges. */
const GROVE_VERSION = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

registerRebuilder(QUANTIZE_TOOL, {
  version: quantizerVersion,
  async rebuild(_store, recipe, context) {
    checkParameters(recipe, ["type", "imatrix"]);
    const type = recipe.parameters["type"];
    if (typeof type !== "string") throw new InvalidRequestError("Invalid recipe: field 'parameters.type': expected a quantization type name", { param: "parameters.type" });
    const imatrixName = recipe.parameters["imatrix"];
    if (imatrixName === undefined) onlyModelInputs(recipe, 1);
    else if (typeof imatrixName !== "string" || context.models.size !== 1 || context.data.size !== 1) {
      throw new InvalidRequestError("A quantize recipe with an importance matrix has one model input, one data input (the matrix) and its file name in parameters.imatrix", { param: "inputs" });
    }
    const [input] = context.models.values();
    const [imatrix] = context.data.values();
    await quantizeModel({
      input: input!,
      output: context.output,
      type: parseQuantizeType(type),
      // The matrix as given with --data, recorded under the recipe's name for it: same bytes.
      ...(imatrix === undefined ? {} : { imatrix, imatrixName: imatrixName as string }),
      ...(context.threads === undefined ? {} : { threads: context.threads }),
      ...(context.signal === undefined ? {} : { signal: context.signal }),
    });
  },
});

registerRebuilder(MERGE_TOOL, {
  version: () => GROVE_VERSION,
  async rebuild(_store, recipe, context) {
    checkParameters(recipe, ["method", "weights", "base", "name", "scale"]);
    onlyModelInputs(recipe, undefined);
    const { method, weights, base } = recipe.parameters;
    if (method === "adapter") {
      // bakeAdapterFork's recipe: inputs [base, adapter].
      const [basePath, adapterPath] = [...context.models.values()];
      const scale = recipe.parameters["scale"];
      if (context.models.size !== 2 || basePath === undefined || adapterPath === undefined) throw new InvalidRequestError("An adapter bake has two model inputs: the base, then the adapter", { param: "inputs" });
      if (scale !== undefined && typeof scale !== "number") throw new InvalidRequestError("Invalid recipe: field 'parameters.scale': expected a number", { param: "parameters.scale" });
      const name = recipe.output.generalName;
      await bakeAdapter({ basePath, adapterPath, outPath: context.output, ...(scale === undefined ? {} : { scale }), ...(typeof name === "string" ? { name } : {}) });
      return;
    }
    if (typeof method !== "string" || !(MERGE_METHODS as readonly string[]).includes(method)) {
      throw new InvalidRequestError(`Invalid recipe: field 'parameters.method': expected one of ${MERGE_METHODS.join(", ")}`, { param: "parameters.method" });
    }
    if (!Array.isArray(weights) || !weights.every((weight) => typeof weight === "number")) {
      throw new InvalidRequestError("Invalid recipe: field 'parameters.weights': expected an array of numbers", { param: "parameters.weights" });
    }
    if (base !== undefined && (typeof base !== "string" || !context.models.has(base as Digest))) {
      throw new InvalidRequestError("Invalid recipe: field 'parameters.base': expected the digest of one of the inputs", { param: "parameters.base" });
    }
    // mergeFork records [...models, base] without repeats: the base is a separate last input
    // unless it was also merged (then there are as many inputs as weights).
    const digests = [...context.models.keys()];
    const merged = base !== undefined && digests.length === weights.length + 1 ? digests.filter((digest) => digest !== base) : digests;
    const name = recipe.parameters["name"] ?? recipe.output.generalName;
    await mergeModels({
      inputs: merged.map((digest) => context.models.get(digest)!),
      method: method as MergeMethod,
      weights: weights as number[],
      ...(base === undefined ? {} : { base: context.models.get(base as Digest)! }),
      outPath: context.output,
      ...(typeof name === "string" ? { name } : {}),
    });
  },
});
