import type { Digest } from "../core/digest.js";
import { ConflictError, ModelNotFoundError } from "../core/errors.js";
import { formatModelName, parseModelName, parseModelRef, quoteUntrusted } from "./model-ref.js";
import type { ModelStore, RemoveResult } from "./model-store.js";
import type { Registry } from "./registry.js";

/**
 * Names as Ollama's users handle them: `cp` gives a model one more name, `rm NAME` drops one name
 * and removes the model only with its last name, and every model entering the store gets a name
 * (`forkName`). The rules live here, beside the store, so the CLI (`grove cp`, `grove rm`) and the
 * HTTP API (`/api/copy`, `/api/delete`) apply the same ones.
 */

/** What {@link copyModelName} did. */
export interface CopyResult {
  /** The destination, folded to its canonical spelling. */
  name: string;
  digest: Digest;
  /** False when the destination already named this model (nothing changed). */
  created: boolean;
}

/**
 * Points a new name at the model `source` names (a name, digest or unique prefix): Ollama's `cp`.
 * Unlike Ollama's, it never moves a name that already names another model (`grove tag` does that).
 * @throws ModelNotFoundError when `source` names nothing
 * @throws InvalidRequestError for a malformed source or destination
 * @throws ConflictError when the destination names another model or is an alias
 */
export async function copyModelName(store: ModelStore, source: string, destination: string): Promise<CopyResult> {
  const name = formatModelName(parseModelName(destination));
  const model = await store.resolve(source);
  return store.registry.transaction(async (registry) => {
    if ((await registry.getAlias(name)) !== undefined) {
      throw new ConflictError(`'${name}' is an alias; a model name may not shadow it. Choose another name`, { param: "destination" });
    }
    const current = await registry.getNameTarget(name);
    if (current === model.digest) return { name, digest: model.digest, created: false };
    if (current !== undefined) {
      throw new ConflictError(
        `'${name}' already names another model (${current.slice(0, 19)}…); remove it first (grove rm ${name}) or move it (grove tag ${quoteUntrusted(source)} ${name})`,
        { param: "destination" },
      );
    }
    await registry.setName(name, model.digest);
    return { name, digest: model.digest, created: true };
  });
}

/** Options of {@link deleteModelName}. */
export interface DeleteNameOptions {
  /** Remove the model even when forks record it as their parent (they become roots). @default false */
  readonly force?: boolean;
}

/** What {@link deleteModelName} did. */
export interface DeleteNameResult {
  digest: Digest;
  /** The name dropped, when a name was given. */
  name?: string;
  /** Names the model still has (empty when the model went). */
  remaining: string[];
  /** Present when the model itself was removed (its blob then waits for `grove gc`). */
  removed?: RemoveResult;
}

/**
 * Ollama's `rm NAME`: drops that name only; the model goes with its last name, and only when no
 * fork depends on it (its lineage would lose a parent) unless `force`. A digest or prefix removes
 * the model and every name it has, under the same rule.
 * @throws ModelNotFoundError when nothing has that name, digest or prefix
 * @throws ConflictError when the model would go while forks depend on it (without `force`), or an alias routes to it
 */
export async function deleteModelName(store: ModelStore, ref: string, options: DeleteNameOptions = {}): Promise<DeleteNameResult> {
  const parsed = parseModelRef(ref);
  const name = parsed.kind === "name" ? formatModelName(parsed) : parsed.kind === "prefix" && parsed.name !== undefined ? formatModelName(parsed.name) : undefined;
  const named = name === undefined ? undefined : await store.registry.getNameTarget(name);
  if (named === undefined && parsed.kind === "name") throw new ModelNotFoundError(name!);
  const digest = named ?? (await store.resolve(ref)).digest;
  const result = await store.registry.transaction(async (registry) => {
    const names = await registry.namesOf(digest);
    const remaining = named === undefined ? [] : names.filter((other) => other !== name);
    if (remaining.length > 0) {
      // Another name keeps the model.
      if (!(await registry.removeName(name!))) throw new ModelNotFoundError(name!);
      return { digest, name: name!, remaining };
    }
    await refuseOrphaning(registry, digest, names, options.force === true);
    return undefined;
  });
  if (result !== undefined) return result;
  const removed = await store.remove(digest, { force: options.force === true });
  return { digest, ...(named === undefined ? {} : { name: name! }), remaining: [], removed };
}

async function refuseOrphaning(registry: Registry, digest: Digest, names: readonly string[], force: boolean): Promise<void> {
  const children = await registry.childrenOf(digest);
  if (children.length === 0 || force) return;
  const forks = await Promise.all(children.map(async (edge) => label(edge.child, await registry.namesOf(edge.child))));
  throw new ConflictError(
    `${label(digest, names)} has ${children.length} fork${children.length > 1 ? "s" : ""} (${forks.join(", ")}) whose lineage records it as their parent; ` +
      "removing its last name would remove it and orphan them. Remove the forks first, give it another name first (grove cp), or force (--force; the forks become roots)",
  );
}

const label = (digest: Digest, names: readonly string[]) => (names.length > 0 ? `${names.join(", ")} (${digest.slice(0, 19)}…)` : `${digest.slice(0, 19)}…`);
