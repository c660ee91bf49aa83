// Imports a shipped model family (written by exportFamily, ship.ts) into a user's store: the
// embedded demo that the first `npm start` serves, with its lineage, recipes and results.
import { stat, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { ResultStore } from "../results/result-store.js";
import type { Digest } from "../core/digest.js";
import { DigestMismatchError, InvalidModelFileError, InvalidRequestError, NotFoundError } from "../core/errors.js";
import { formatPath, valueAtPath } from "../core/value-path.js";
import type { Logger } from "../logging/logger.js";
import { checkImportOptions } from "../store/import-options.js";
import { formatModelName, parseModelName, quoteUntrusted } from "../store/model-ref.js";
import type { ModelStore } from "../store/model-store.js";
import { RELATIONS, type Relation } from "../store/registry.js";
import { DEMO_MANIFEST_VERSION, MANIFEST_FILE, type DemoManifest, type DemoManifestModel } from "./ship.js";

/** The shipped family's directory in the repository: `npm run demo:ship` writes it, `npm start` imports it. */
export const SHIPPED_FAMILY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "data", "demo", "models");

/** What {@link importShippedFamily} did. */
export interface ImportShippedFamilyResult {
  /** The manifest's default name, to serve first. */
  defaultName: string;
  /** Names imported by this call (empty when the store already had the whole family). */
  imported: string[];
}

const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, "expected 'sha256:' and 64 lower-case hex digits");
const objectSchema = z.record(z.string(), z.unknown());
// A plain file name: no directory part, so a manifest cannot reach outside its directory.
const fileSchema = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*\.gguf$/, "expected a file name ending in .gguf, without a directory");

const modelSchema = z.object({
  name: z.string().min(1, "expected a model name"),
  file: fileSchema,
  digest: digestSchema,
  bytes: z.number().int().nonnegative(),
  relation: z.enum(RELATIONS as [Relation, ...Relation[]]).optional(),
  parents: z.array(digestSchema).min(1, "expected at least one parent").optional(),
  recipe: z.object({ tool: z.string().min(1), toolVersion: z.string(), parameters: objectSchema, inputs: z.array(digestSchema) }).optional(),
  card: objectSchema.optional(),
  license: z.string().optional(),
});

const resultSchema = z.object({
  modelDigest: digestSchema,
  kind: z.enum(["quality", "cost"]),
  task: z.string().min(1),
  taskDigest: z.string(),
  settings: objectSchema,
  engineVersion: z.string(),
  metrics: z.record(z.string(), z.number().nullable()),
  flags: z.array(z.string()),
  details: objectSchema,
  createdAt: z.string(),
  standardErrors: z.record(z.string(), z.number().nullable()).optional(),
  samples: z.object({ unit: z.enum(["chunk", "item"]), values: z.record(z.string(), z.array(z.number())) }).nullable().optional(),
  machine: z
    .object({ cpu: z.string(), cores: z.number().int().nonnegative(), memoryGib: z.number().nonnegative(), gpu: z.string().nullable(), fingerprint: z.string().min(1) })
    .nullable()
    .optional(),
});

/**
 * The machine of a shipped speed or memory result whose manifest did not record one (manifests
 * written before machines were): one machine for the whole family — its results compare with
 * each other, never with this machine's.
 */
export const SHIPPED_UNRECORDED_MACHINE = { cpu: "not recorded (the machine that built the shipped demo family)", cores: 0, memoryGib: 0, gpu: null, fingerprint: "shipped-demo-unrecorded" };

const manifestSchema = z.object({
  grove_demo: z.literal(DEMO_MANIFEST_VERSION),
  default: z.string().min(1, "expected the default model's name"),
  models: z.array(modelSchema).min(1, "expected at least one model"),
  results: z.array(resultSchema),
});

/** What to undo for one model when a later one fails. */
interface Undo {
  digest: Digest;
  name: string;
  /** True when this call added the model's row (dropping it drops its names and edges). */
  created: boolean;
  /** Where the name pointed before, if anywhere. */
  previous: Digest | undefined;
}

/**
 * Imports the family shipped in `dir` (see {@link DemoManifest}) into `store`, parents first, with
 * names, lineage, recipes and cards, then adds its results to `<home>/results.db` (rows already
 * there are kept). Models whose name already points at their digest are skipped without reading
 * their file, so a rerun imports nothing and hashes nothing. Everything the manifest says is
 * checked before the first import; if an import still fails (a file whose bytes differ from its
 * digest), the registry rows this call wrote are removed again, so fixing the file and running
 * again succeeds. Verified blobs stay until `gc`.
 *
 * @example
 * const { defaultName } = await importShippedFamily(store, SHIPPED_FAMILY_DIR, logger);
 * @throws InvalidRequestError naming the manifest and field for bad JSON, another format version,
 *   a missing or malformed field, or a parent neither earlier in the manifest nor in the store
 * @throws NotFoundError when the manifest or a model's file is missing
 * @throws DigestMismatchError naming the file when its size or digest differs from the manifest's
 */
export async function importShippedFamily(store: ModelStore, results: ResultStore, dir: string, logger?: Logger): Promise<ImportShippedFamilyResult> {
  const manifestPath = join(dir, MANIFEST_FILE);
  const manifest = await readManifest(manifestPath);
  await checkFamily(store, manifest, dir, manifestPath);
  const pending: DemoManifestModel[] = [];
  for (const model of manifest.models) {
    const present = (await store.nameTarget(model.name)) === model.digest && (await store.model(model.digest)) !== undefined;
    if (!present) pending.push(model);
  }
  const undo: Undo[] = [];
  try {
    for (const model of pending) {
      logger?.info({ name: model.name, file: model.file }, "importing a shipped demo model (once)");
      const previous = await store.nameTarget(model.name);
      const result = await importModel(store, model, join(dir, model.file));
      undo.push({ digest: model.digest, name: model.name, created: result.created, previous });
    }
    await addResults(results, manifest);
  } catch (error) {
    await rollBack(store, undo, logger);
    throw error;
  }
  return { defaultName: manifest.default, imported: pending.map((model) => model.name) };
}

/** Reads and validates the manifest: JSON, version, then every field. */
async function readManifest(path: string): Promise<DemoManifest> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`The shipped family's manifest ${path} is missing`, { cause: error });
    throw error;
  }
  const invalid = (problem: string, cause?: unknown) => new InvalidRequestError(`Invalid shipped family manifest ${path}: ${problem}`, { param: "manifest", cause });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(`not valid JSON (${(error as Error).message})`, error);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid("expected a JSON object with a 'grove_demo' field");
  const version = (value as Record<string, unknown>).grove_demo;
  if (version === undefined) throw invalid("no 'grove_demo' field: not a Grove demo manifest");
  if (version !== DEMO_MANIFEST_VERSION) {
    const shown = typeof version === "number" ? String(version) : quoteUntrusted(typeof version === "string" ? version : JSON.stringify(version));
    throw invalid(`format version ${shown}; this Grove reads version ${DEMO_MANIFEST_VERSION}`);
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = formatPath(issue.path);
    throw invalid(`field '${field}': ${valueAtPath(value, issue.path) === undefined ? "missing" : issue.message}`);
  }
  const manifest = parsed.data as DemoManifest;
  for (const [index, model] of manifest.models.entries()) {
    try {
      model.name = formatModelName(parseModelName(model.name));
    } catch (error) {
      throw invalid(`field 'models[${index}].name': ${(error as Error).message}`, error);
    }
  }
  try {
    manifest.default = formatModelName(parseModelName(manifest.default));
  } catch (error) {
    throw invalid(`field 'default': ${(error as Error).message}`, error);
  }
  return manifest;
}

/** Checks what the schema cannot: names, files, parents, results; reads no file's bytes. */
async function checkFamily(store: ModelStore, manifest: DemoManifest, dir: string, manifestPath: string): Promise<void> {
  const invalid = (problem: string, cause?: unknown) => new InvalidRequestError(`Invalid shipped family manifest ${manifestPath}: ${problem}`, { param: "manifest", cause });
  const seen = new Set<string>();
  const earlier = new Set<Digest>();
  for (const [index, model] of manifest.models.entries()) {
    const label = `models[${index}] (${model.name})`;
    for (const key of [model.name, model.file, model.digest]) {
      if (seen.has(key)) throw invalid(`${label}: ${key} appears twice`);
      seen.add(key);
    }
    const parents = model.parents ?? [];
    try {
      checkImportOptions(parents, { ...(model.relation === undefined ? {} : { relation: model.relation }), ...(model.recipe === undefined ? {} : { recipe: model.recipe }) });
    } catch (error) {
      throw invalid(`${label}: ${(error as Error).message}`, error);
    }
    for (const parent of parents) {
      if (!earlier.has(parent) && (await store.model(parent)) === undefined) {
        throw invalid(`${label}: its parent ${parent} is neither earlier in the manifest nor in the store`);
      }
    }
    const path = join(dir, model.file);
    const size = await stat(path).then(
      (stats) => (stats.isFile() ? stats.size : undefined),
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined;
        throw error;
      },
    );
    if (size === undefined) throw new NotFoundError(`${manifestPath}: ${label} is the file ${path}, which is missing`);
    if (size !== model.bytes) {
      throw new DigestMismatchError(`${path} has ${size} bytes; ${manifestPath} says ${model.bytes} for ${model.name}`, String(model.bytes), String(size));
    }
    earlier.add(model.digest);
  }
  if (!manifest.models.some((model) => model.name === manifest.default)) throw invalid(`the default ${manifest.default} is not one of its models`);
  for (const [index, result] of manifest.results.entries()) {
    if (!earlier.has(result.modelDigest)) throw invalid(`results[${index}] measures ${result.modelDigest}, which is not one of its models`);
  }
}

async function importModel(store: ModelStore, model: DemoManifestModel, path: string) {
  const parents = model.parents ?? [];
  try {
    return await store.importFile(path, {
      name: model.name,
      ...(parents.length === 1 ? { base: parents[0] } : parents.length > 1 ? { bases: parents } : {}),
      ...(model.relation === undefined ? {} : { relation: model.relation }),
      ...(model.recipe === undefined ? {} : { recipe: model.recipe }),
      ...(model.card === undefined ? {} : { card: model.card }),
      ...(model.license === undefined ? {} : { license: model.license }),
      mode: "copy",
      expectedDigest: model.digest,
    });
  } catch (error) {
    // The store's messages do not say which file of the family is at fault.
    if (error instanceof DigestMismatchError) throw new DigestMismatchError(`${path} (${model.name}): ${error.message}`, error.expected, error.actual, { cause: error });
    if (error instanceof InvalidModelFileError) throw new InvalidModelFileError(`${path} (${model.name}): ${error.message}`, { cause: error });
    throw error;
  }
}

/** Adds the manifest's results, each speed or memory result with its machine; a row already stored under the same key is kept. */
async function addResults(results: ResultStore, manifest: DemoManifest): Promise<void> {
  for (const shipped of manifest.results) {
    const result = { ...shipped, machine: shipped.machine ?? (shipped.kind === "cost" ? SHIPPED_UNRECORDED_MACHINE : null) };
    if ((await results.get(result)) === undefined) await results.put(result);
  }
}

/** Drops the rows of models this call added and points names back, newest first. */
async function rollBack(store: ModelStore, undo: readonly Undo[], logger: Logger | undefined): Promise<void> {
  try {
    await store.undoImports(undo);
  } catch (error) {
    // The import's own error is the one to report; this one only leaves rows a rerun repairs.
    logger?.warn({ err: error }, "could not undo a failed import of the shipped family");
  }
}
