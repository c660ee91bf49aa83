import { z } from "zod";
import type { Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { formatPath, valueAtPath } from "../../core/value-path.js";
import { GgufMetadataReader } from "../../gguf/gguf-metadata-reader.js";
import type { ModelStore } from "../../store/model-store.js";
import { RELATIONS, type LineageEdge, type Recipe, type Relation } from "../../store/registry.js";

/** The format version this Grove writes and reads (`"grove_recipe": 1`). */
export const RECIPE_FORMAT_VERSION = 1;

/** What an input of a recipe is: a model of the store, or a file the user supplies (training data). */
export type RecipeInputRole = "model" | "data";

/** One input of a recipe. */
export interface RecipeInput {
  /** sha256 of the input's bytes: a model's digest, or a data file's. */
  digest: Digest;
  /** `model`: looked up in the store by digest. `data`: supplied when building (`--data PATH`). */
  role: RecipeInputRole;
  /** A name it had when the document was written; informational only, never resolved. */
  name?: string;
  /**
   * For a `model` input that is itself a fork: the recipe that makes it (with its own inputs'
   * recipes), so that `grove build` can rebuild it first in a store that lacks it.
   */
  recipe?: RecipeDocument;
}

/** The fork a recipe makes. */
export interface RecipeOutput {
  /** The digest the recipe made: a rebuild is reproducible when it gets the same one. */
  digest: Digest;
  /** A store name (`family:tag`) it had; `grove build` points it at the rebuilt fork when free. */
  name?: string;
  /**
   * The file's `general.name`. Tools that write it from an option (`grove merge --name`) get it
   * back when rebuilding, since it is part of the bytes.
   */
  generalName?: string;
}

/**
 * A recipe document: how a fork of the store was made, portable between stores. The tool fields
 * are the stored {@link Recipe}'s, unchanged; `relation` and the input roles say how to record it.
 *
 * @example
 * {
 *   "grove_recipe": 1,
 *   "output": { "digest": "sha256:3f2a…", "name": "small:q4" },
 *   "relation": "quantized",
 *   "tool": "llama.cpp llama_model_quantize",
 *   "toolVersion": "node-llama-cpp 3.21.1 / llama.cpp b6000",
 *   "parameters": { "type": "Q4_K_M" },
 *   "inputs": [{ "digest": "sha256:91c0…", "role": "model", "name": "small:f16" }]
 * }
 */
export interface RecipeDocument {
  grove_recipe: typeof RECIPE_FORMAT_VERSION;
  output: RecipeOutput;
  /** How the output derives from its model inputs (one lineage edge per model input). */
  relation: Relation;
  /** The recipe's tool, e.g. `llama.cpp llama_model_quantize` or `grove merge`. */
  tool: string;
  /** The tool's version when the recipe was made. */
  toolVersion: string;
  /** The tool's parameters, as JSON. */
  parameters: Record<string, unknown>;
  /** Every input, in the stored recipe's order (tools may depend on it, as merge does). */
  inputs: RecipeInput[];
}

const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, "expected 'sha256:' and 64 lower-case hex digits");
const textSchema = z.string().min(1, "expected a non-empty string");

const documentSchema: z.ZodType<unknown> = z
  .object({
    grove_recipe: z.literal(RECIPE_FORMAT_VERSION, { error: `expected ${RECIPE_FORMAT_VERSION} (the recipe format this Grove reads)` }),
    output: z.strictObject({ digest: digestSchema, name: textSchema.optional(), generalName: z.string().optional() }),
    relation: z.enum(RELATIONS as [Relation, ...Relation[]]),
    tool: textSchema,
    toolVersion: z.string(),
    parameters: z.record(z.string(), z.unknown()),
    inputs: z
      .array(
        z
          .strictObject({
            digest: digestSchema,
            role: z.enum(["model", "data"]),
            name: textSchema.optional(),
            recipe: z.lazy((): z.ZodType<unknown> => documentSchema).optional(),
          })
          .refine(
            (input) => input.recipe === undefined || (input.role === "model" && (input.recipe as RecipeDocument).output.digest === input.digest),
            "an input's recipe must be a model input's and make that input (output.digest = the input's digest)",
          ),
      )
      .min(1, "expected at least one input")
      .refine((inputs) => new Set(inputs.map((input) => input.digest)).size === inputs.length, "an input digest appears twice")
      .refine((inputs) => inputs.some((input) => input.role === "model"), "expected at least one input with role 'model'"),
  })
  .strict();

/**
 * Parses a recipe document (JSON; YAML is not read: no YAML parser is a dependency).
 *
 * @throws InvalidRequestError naming the bad field, e.g. `inputs[0].digest: expected 'sha256:'…`
 */
export function parseRecipe(text: string): RecipeDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidRequestError(`The recipe is not valid JSON: ${(error as Error).message}`, { param: "recipe", cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidRequestError("The recipe must be a JSON object with a 'grove_recipe' field", { param: "recipe" });
  }
  const result = documentSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = formatPath(issue.path);
    const message = issue.path.length > 0 && valueAtPath(value, issue.path) === undefined ? "missing" : issue.message;
    throw new InvalidRequestError(`Invalid recipe: ${field === "" ? "" : `field '${field}': `}${message}`, { param: field === "" ? "recipe" : field });
  }
  return result.data as RecipeDocument;
}

/** The document as `grove recipe` prints it: pretty JSON, keys in the documented order. */
export function formatRecipe(document: RecipeDocument): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** The stored recipe a document describes (what {@link RecipeDocument}'s tool fields hold). */
export function storedRecipe(document: RecipeDocument): Recipe {
  return { tool: document.tool, toolVersion: document.toolVersion, parameters: document.parameters, inputs: document.inputs.map((input) => input.digest) };
}

/**
 * The recipe document of a fork of the store, built from its lineage edges (a merge has one edge
 * per parent, all with the same recipe). Inputs that are parents are models; the others (a
 * fine-tune's training data) are data. A model input that is a fork with a recipe carries it, and
 * so on down to the roots: the document rebuilds the whole chain in a store holding only the roots.
 *
 * @throws ModelNotFoundError for an unknown reference
 * @throws InvalidRequestError when the model has no recipe (a root, or imported without one)
 */
export async function recipeOf(store: ModelStore, ref: string): Promise<RecipeDocument> {
  const details = await store.show(ref);
  const edges = details.parents.filter((edge): edge is LineageEdge & { recipe: Recipe } => edge.recipe !== null);
  const label = details.names[0] ?? details.model.digest;
  if (edges.length === 0) {
    const why = details.parents.length === 0 ? "it is a root (no parents)" : "its lineage was recorded without one";
    throw new InvalidRequestError(`${label} has no recipe: ${why}`, { param: "model" });
  }
  const recipe = edges[0]!.recipe;
  const parents = new Set(details.parents.map((edge) => edge.parent));
  const inputs: RecipeInput[] = [];
  for (const digest of recipe.inputs) {
    const role: RecipeInputRole = parents.has(digest) ? "model" : "data";
    const names = role === "model" ? await store.namesOf(digest) : [];
    const made = role === "model" ? await recipeIfAny(store, digest) : undefined;
    inputs.push({ digest, role, ...(names[0] === undefined ? {} : { name: names[0] }), ...(made === undefined ? {} : { recipe: made }) });
  }
  // From the file itself: the card may hold a hub's name instead of `general.name`.
  // A config fork has no file: its path is its parent's weights.
  const generalName = edges[0]!.relation === "config" ? undefined : await readGeneralName(details.path);
  return {
    grove_recipe: RECIPE_FORMAT_VERSION,
    output: {
      digest: details.model.digest,
      ...(details.names[0] === undefined ? {} : { name: details.names[0] }),
      ...(typeof generalName === "string" ? { generalName } : {}),
    },
    relation: edges[0]!.relation,
    tool: recipe.tool,
    toolVersion: recipe.toolVersion,
    parameters: recipe.parameters,
    inputs,
  };
}

/** The recipe of a parent that is a fork with one, for `grove build` to rebuild it; undefined for a root. */
async function recipeIfAny(store: ModelStore, digest: Digest): Promise<RecipeDocument | undefined> {
  const edges = await store.parentsOf(digest);
  if (!edges.some((edge) => edge.recipe !== null)) return undefined;
  return recipeOf(store, digest);
}

async function readGeneralName(path: string): Promise<string | undefined> {
  try {
    return (await GgufMetadataReader.open(path)).string("general.name");
  } catch {
    return undefined; // absent blob or a non-string value: the document is still useful without it
  }
}
