import { isDigest, type Digest } from "../core/digest.js";
import { InvalidRequestError } from "../core/errors.js";
import type { PutFileMode } from "./blob-store.js";
import { parseModelRef, quoteUntrusted } from "./model-ref.js";
import { RELATIONS, type Recipe, type Relation } from "./registry.js";

/** Options of `ModelStore.importFile`. */
export interface ImportOptions {
  /** Name to point at the model, `family[:tag]`. @default one the store chooses (`nameForImport`), unless the model has one */
  name?: string;
  /** Without `name`: the name to try first for a model that has none (a pull's `owner/repo:latest`). */
  defaultName?: string;
  /** The model this one derives from (a name, digest or unique prefix); needs `relation`. */
  base?: string;
  /** Several parents (a merge); combined with `base` when both are given. */
  bases?: readonly string[];
  /** How it derives from its base(s); needs a base. Only `merge` takes several. */
  relation?: Relation;
  /** How it was made; needs a relation. Its `inputs` are digests (data included). */
  recipe?: Recipe;
  /** License identifier; overrides the file's `general.license`. */
  license?: string;
  /** Model card fields (e.g. from a hub); merged over the file's `general.*` strings. */
  card?: Record<string, unknown>;
  /** `move` consumes the file (a finished download); see `BlobStore.putFile`. @default "copy" */
  mode?: PutFileMode;
  /** The digest the file must have (a hub's declared sha256); a mismatch stores nothing. */
  expectedDigest?: Digest;
  /** Bytes copied and hashed so far, of the file's size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/**
 * Checks import options before anything is read: every base reference parsed, base, relation and
 * recipe in agreement (a relation needs a base and the reverse; only a merge has several bases; a
 * recipe needs a relation and lists digests), `expectedDigest` and `mode` well formed.
 * @throws InvalidRequestError naming the option at fault
 */
export function checkImportOptions(baseRefs: readonly string[], options: ImportOptions): void {
  for (const ref of baseRefs) parseModelRef(ref);
  if (options.expectedDigest !== undefined && (typeof options.expectedDigest !== "string" || !isDigest(options.expectedDigest))) {
    throw new InvalidRequestError(`${quoteUntrusted(String(options.expectedDigest))} is not a digest`, { param: "digest" });
  }
  if (options.mode !== undefined && options.mode !== "copy" && options.mode !== "move") {
    throw new InvalidRequestError(`Unknown import mode ${quoteUntrusted(String(options.mode))}; valid: copy, move`, { param: "mode" });
  }
  const { relation, recipe } = options;
  if (relation !== undefined && !RELATIONS.includes(relation)) {
    throw new InvalidRequestError(`Unknown relation ${quoteUntrusted(String(relation))}; valid: ${RELATIONS.join(", ")}`, { param: "relation" });
  }
  if (relation === "config") {
    throw new InvalidRequestError("A 'config' fork has no file of its own: make it from a Modelfile with grove create NAME -f Modelfile", { param: "relation" });
  }
  if (relation !== undefined && baseRefs.length === 0) throw new InvalidRequestError(`A '${relation}' relation needs a base model`, { param: "base" });
  if (relation === undefined && baseRefs.length > 0) throw new InvalidRequestError(`A base model needs a relation (${RELATIONS.join(", ")})`, { param: "relation" });
  if (baseRefs.length > 1 && relation !== "merge") throw new InvalidRequestError(`Only a merge has several bases; '${relation}' takes one`, { param: "base" });
  if (recipe !== undefined) {
    if (relation === undefined) throw new InvalidRequestError("A recipe needs a base and a relation", { param: "recipe" });
    checkRecipe(recipe);
  }
}

function checkRecipe(recipe: Recipe): void {
  const fail = (problem: string): never => {
    throw new InvalidRequestError(`Invalid recipe: ${problem}`, { param: "recipe" });
  };
  if (typeof recipe !== "object" || recipe === null) fail("expected an object");
  if (typeof recipe.tool !== "string" || recipe.tool.length === 0) fail("'tool' must be a non-empty string");
  if (typeof recipe.toolVersion !== "string") fail("'toolVersion' must be a string");
  if (typeof recipe.parameters !== "object" || recipe.parameters === null || Array.isArray(recipe.parameters)) fail("'parameters' must be an object");
  if (!Array.isArray(recipe.inputs)) fail("'inputs' must be an array of digests");
  for (const input of recipe.inputs) if (typeof input !== "string" || !isDigest(input)) fail(`input ${quoteUntrusted(String(input))} is not a digest`);
}
