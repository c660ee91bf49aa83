// Writes a family of models of a store to a directory that ships in the repository
// (`data/demo/models/`): one GGUF per model and a `manifest.json` with their lineage, recipes and
// stored results, which `importShippedFamily` (embedded.ts) reads back into a user's store.
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { ResultRecord, ResultStore } from "../results/result-store.js";
import type { Digest } from "../core/digest.js";
import { InvalidRequestError } from "../core/errors.js";
import { digestOfFile } from "../store/file-digest.js";
import { formatModelName, parseModelName, quoteUntrusted } from "../store/model-ref.js";
import type { ModelStore } from "../store/model-store.js";
import type { Recipe, Relation } from "../store/registry.js";

/** The manifest format this Grove writes and reads (`"grove_demo": 1`). */
export const DEMO_MANIFEST_VERSION = 1;

/** The manifest's file name inside a shipped family's directory. */
export const MANIFEST_FILE = "manifest.json";

/** One model of a shipped family. */
export interface DemoManifestModel {
  /** Canonical `family:tag`, pointed at the model on import. */
  name: string;
  /** The GGUF's file name in the manifest's directory, e.g. `demo-s-base.gguf`. */
  file: string;
  /** sha256 of the file; the import refuses a file whose bytes differ. */
  digest: Digest;
  /** File size in bytes. */
  bytes: number;
  /** How it derives from `parents`; absent at a root. */
  relation?: Relation;
  /** Digests of its parents, each earlier in the manifest or already in the store; absent at a root. */
  parents?: Digest[];
  /** The stored recipe of its lineage edge, when it has one. */
  recipe?: Recipe;
  /** Model card fields, recorded over the file's own `general.*` strings. */
  card?: Record<string, unknown>;
  /** The license identifier, when the store knows one. */
  license?: string;
}

/** `manifest.json` of a shipped family. */
export interface DemoManifest {
  grove_demo: typeof DEMO_MANIFEST_VERSION;
  /** The name served by default (one of the models' names). */
  default: string;
  /** Parents first. */
  models: DemoManifestModel[];
  /** Every stored result of these models, as the result store keeps them. */
  results: ResultRecord[];
}

/** Options of {@link exportFamily}. */
export interface ExportFamilyOptions {
  /** Names of the models to ship, parents first. @example ["demo-s:base", "demo-s:q8_0"] */
  names: string[];
  /** The directory to write; replaced whole (anything else in it is lost). */
  outDir: string;
  /** The name served by default; one of `names`. */
  defaultName: string;
  /** Extra card fields per name (a description, a license link), merged over the stored card. */
  roots?: Record<string, { card?: Record<string, unknown> }>;
}

/** What {@link exportFamily} wrote. */
export interface ExportFamilyResult {
  /** The directory written (absolute). */
  outDir: string;
  manifest: DemoManifest;
}

/**
 * Writes `names` (parents first) to `outDir`: one GGUF per model, copied from its blob and
 * checked against its digest, plus `manifest.json` (see {@link DemoManifest}). The directory is
 * built beside `outDir` and renamed into place, so on any error `outDir` is left as it was.
 *
 * @example
 * await exportFamily(store, { names: ["demo-s:base", "demo-s:chat"], outDir: "data/demo/models", defaultName: "demo-s:chat" });
 * @throws InvalidRequestError naming the model when a name does not resolve, is given twice, is
 *   listed before one of its exported parents, or when `defaultName` is not among `names`
 */
export async function exportFamily(store: ModelStore, results: ResultStore, options: ExportFamilyOptions): Promise<ExportFamilyResult> {
  const models = await describeFamily(store, options);
  const outDir = resolve(options.outDir);
  await mkdir(dirname(outDir), { recursive: true });
  const building = join(dirname(outDir), `.${basename(outDir)}.${randomUUID()}.partial`);
  try {
    await mkdir(building);
    for (const model of models) {
      const target = join(building, model.file);
      await copyFile(store.blobs.pathOf(model.digest), target);
      const actual = await digestOfFile(target);
      if (actual !== model.digest) throw new InvalidRequestError(`The blob of ${model.name} is damaged (its bytes hash to ${actual}); run grove verify`, { param: "names" });
      model.bytes = (await stat(target)).size;
    }
    const rows: ResultRecord[] = await results.list({ modelDigests: models.map((model) => model.digest) });
    const manifest: DemoManifest = { grove_demo: DEMO_MANIFEST_VERSION, default: canonicalName(options.defaultName), models, results: rows };
    await writeFile(join(building, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await swapIn(building, outDir);
    return { outDir, manifest };
  } finally {
    await rm(building, { recursive: true, force: true });
  }
}

/** The manifest entries of `options.names`, checked, in order; `bytes` still to be measured. */
async function describeFamily(store: ModelStore, options: ExportFamilyOptions): Promise<DemoManifestModel[]> {
  const names = options.names.map(canonicalName);
  if (names.length === 0) throw new InvalidRequestError("Name at least one model to export", { param: "names" });
  if (!names.includes(canonicalName(options.defaultName))) {
    throw new InvalidRequestError(`The default ${quoteUntrusted(options.defaultName)} is not one of the exported models`, { param: "defaultName" });
  }
  const extraCards = new Map<string, Record<string, unknown>>();
  for (const [name, extra] of Object.entries(options.roots ?? {})) {
    if (!names.includes(canonicalName(name))) throw new InvalidRequestError(`roots names ${quoteUntrusted(name)}, which is not exported`, { param: "roots" });
    extraCards.set(canonicalName(name), extra.card ?? {});
  }
  const digests: Digest[] = [];
  for (const name of names) {
    const digest = await store.nameTarget(name);
    if (digest === undefined) throw new InvalidRequestError(`${quoteUntrusted(name)} is not a model of the store`, { param: "names" });
    if (digests.includes(digest)) throw new InvalidRequestError(`${quoteUntrusted(name)} is the same model as ${names[digests.indexOf(digest)]}; export it once`, { param: "names" });
    digests.push(digest);
  }
  const files = new Map<string, string>();
  const models: DemoManifestModel[] = [];
  for (const [index, name] of names.entries()) {
    const details = await store.show(digests[index]!);
    const file = fileNameOf(name);
    const clash = files.get(file);
    if (clash !== undefined) throw new InvalidRequestError(`${name} and ${clash} would both be written to ${file}; rename one`, { param: "names" });
    files.set(file, name);
    const parents = details.parents.map((edge) => edge.parent);
    for (const parent of parents) {
      const position = digests.indexOf(parent);
      if (position > index) throw new InvalidRequestError(`${name} is listed before its parent ${names[position]}; list parents first`, { param: "names" });
    }
    const recipe = details.parents.find((edge) => edge.recipe !== null)?.recipe ?? undefined;
    const card: Record<string, unknown> = { ...details.model.card, ...extraCards.get(name) };
    const model: DemoManifestModel = { name, file, digest: details.model.digest, bytes: details.model.size };
    if (parents.length > 0 && parents.every((parent) => digests.includes(parent))) {
      model.relation = details.parents[0]!.relation;
      model.parents = parents;
      if (recipe !== undefined) model.recipe = recipe;
    } else if (parents.length > 0) {
      // Its parents stay behind (the demo ships `demo-s:base`, not the `demo-s:init` it was
      // trained from), and a shipped edge must point at a model the user's store will have: it
      // ships as a root and keeps its lineage as card fields only.
      card.trained_from = parents.length === 1 ? parents[0] : parents;
      if (recipe !== undefined) card.recipe = recipe;
    }
    if (Object.keys(card).length > 0) model.card = card;
    if (details.model.license !== undefined) model.license = details.model.license;
    models.push(model);
  }
  return models;
}

/** `demo-s:base` → `demo-s-base.gguf`; a namespace's `/` becomes `_`. */
export function fileNameOf(name: string): string {
  return `${canonicalName(name).replace(":", "-").replaceAll("/", "_")}.gguf`;
}

function canonicalName(name: string): string {
  return formatModelName(parseModelName(name));
}

/** Renames `building` to `target`, moving an existing `target` aside first and back if that fails. */
async function swapIn(building: string, target: string): Promise<void> {
  const previous = join(dirname(target), `.${basename(target)}.${randomUUID()}.previous`);
  const hadTarget = await stat(target).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return false;
      throw error;
    },
  );
  if (hadTarget) await rename(target, previous);
  try {
    await rename(building, target);
  } catch (error) {
    if (hadTarget) await rename(previous, target);
    throw error;
  }
  if (hadTarget) await rm(previous, { recursive: true, force: true });
}
