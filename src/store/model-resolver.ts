import { randomInt } from "node:crypto";
import type { Digest } from "../core/digest.js";
import { GroveError, ModelNotFoundError, ModelNotLocalError } from "../core/errors.js";
import { modelConfigOf, type ModelConfig } from "../core/model-config.js";
import type { BlobStore } from "./blob-store.js";
import { formatModelName, parseModelName, parseModelRef } from "./model-ref.js";
import type { AliasRecord, AliasTarget, ModelRecord, Registry } from "./registry.js";

/** What a served name means ({@link ModelResolver.resolveServed}). */
export interface ServedModel {
  /** The model: for an alias, the target drawn by weight for this request. */
  readonly digest: Digest;
  /** The alias's canonical name, when the name was one. */
  readonly alias?: string;
  /** A config fork's defaults (its card's `grove.config`), absent for any other model. */
  readonly config?: ModelConfig;
}

/** The files a model runs on ({@link ModelResolver.filesOf}). */
export interface ModelFiles {
  readonly digest: Digest;
  /** The file to load: the model's weights, or for an adapter fork its base's. */
  readonly path: string;
  /**
   * For an adapter fork: its adapter file, the scale its card asks for (`adapter_scale`, default
   * 1) and the base it runs on.
   */
  readonly adapter?: { readonly path: string; readonly scale: number; readonly base: Digest };
}

/** Options of {@link ModelResolver.resolveServed}. */
export interface ResolveServedOptions {
  /**
   * Draws the number in [0, 1) that picks an alias's target; tests pass a seeded generator.
   * @default crypto-random, independently per call
   */
  readonly random?: () => number;
}

/**
 * The one resolution of a model name, for serving, the CLI and the web API: a name, digest or
 * unique digest prefix → the model ({@link resolve}); an alias → one target drawn by weight
 * ({@link resolveServed}); a config fork → the model holding its weights ({@link weightsOf}); an
 * adapter fork → its base and scale ({@link filesOf}). Reads the registry only.
 */
export class ModelResolver {
  constructor(
    private readonly registry: Registry,
    private readonly blobs: BlobStore,
  ) {}

  /**
   * The model a reference means: a name (`family[:tag]`), a digest, or a unique digest prefix.
   * A bare hex reference that is also a name is tried as a name first. Aliases are not models.
   * @throws InvalidRequestError for a malformed reference
   * @throws ModelNotFoundError when nothing matches
   * @throws AmbiguousModelError listing candidates when a prefix matches several
   */
  async resolve(ref: string): Promise<ModelRecord> {
    const parsed = parseModelRef(ref);
    if (parsed.kind === "digest") {
      const model = await this.registry.getModel(parsed.digest);
      if (model === undefined) throw new ModelNotFoundError(parsed.digest);
      return model;
    }
    const name = parsed.kind === "name" ? parsed : parsed.name;
    if (name !== undefined) {
      const digest = await this.registry.getNameTarget(formatModelName(name));
      if (digest !== undefined) return (await this.registry.getModel(digest)) ?? missingRow(digest);
      if (parsed.kind === "name") throw new ModelNotFoundError(formatModelName(name));
    }
    try {
      return await this.registry.findByPrefix((parsed as { prefix: string }).prefix);
    } catch (error) {
      // Name the reference as the user wrote it when it could have been a name too.
      if (error instanceof ModelNotFoundError && name !== undefined) throw new ModelNotFoundError(ref, { cause: error });
      throw error;
    }
  }

  /**
   * The alias a name is (`chat` reads as `chat:latest`), or undefined: for a name that is no
   * alias, one that is not a valid name, or an alias left without targets.
   */
  async alias(name: string): Promise<AliasRecord | undefined> {
    try {
      const alias = await this.registry.getAlias(formatModelName(parseModelName(name)));
      return alias === undefined || alias.targets.length === 0 ? undefined : alias;
    } catch (error) {
      if (!(error instanceof GroveError)) throw error;
      return undefined;
    }
  }

  /**
   * What a request's `model` serves: an alias picks one target by weight ({@link pickWeighted}),
   * anything else is {@link resolve}d; a config fork comes with its defaults. Malformed names are
   * simply unknown models.
   * @throws ModelNotFoundError naming `name` when it is no alias and no model (or malformed)
   */
  async resolveServed(name: string, options: ResolveServedOptions = {}): Promise<ServedModel> {
    const alias = await this.alias(name);
    if (alias !== undefined) {
      const digest = pickWeighted(alias.targets, (options.random ?? cryptoRandom)());
      const config = modelConfigOf((await this.registry.getModel(digest))?.card ?? {});
      return { digest, alias: alias.name, ...(config === undefined ? {} : { config }) };
    }
    let model: ModelRecord;
    try {
      model = await this.resolve(name);
    } catch (error) {
      if (error instanceof ModelNotFoundError || (error instanceof GroveError && error.code.startsWith("invalid"))) {
        throw new ModelNotFoundError(name, { cause: error });
      }
      throw error;
    }
    const config = modelConfigOf(model.card);
    return { digest: model.digest, ...(config === undefined ? {} : { config }) };
  }

  /** Every model a served name can reach: an alias's targets, else the one model. */
  async servedDigests(name: string): Promise<Digest[]> {
    const alias = await this.alias(name);
    if (alias !== undefined) return alias.targets.map((target) => target.digest);
    return [(await this.resolveServed(name)).digest];
  }

  /**
   * The model whose file holds a model's weights: itself, or for a `config` fork (new defaults on
   * its parent's weights, no file of its own) the first ancestor through config edges that has one.
   */
  async weightsOf(digest: Digest): Promise<Digest> {
    for (let depth = 0; depth < 64; depth++) {
      const edge = (await this.registry.parentsOf(digest)).find((parent) => parent.relation === "config");
      if (edge === undefined) return digest;
      digest = edge.parent;
    }
    return digest;
  }

  /**
   * The path of a model's file, for loading it.
   * @param label how the caller named the model, for the message
   * @throws ModelNotLocalError when the registry (shared with other replicas) has the model but
   *   this machine lacks its file
   */
  async localPath(digest: Digest, label: string = digest): Promise<string> {
    const weights = await this.weightsOf(digest);
    if (!(await this.blobs.has(weights))) throw new ModelNotLocalError(label, weights);
    return this.blobs.pathOf(weights);
  }

  /**
   * What to load for a model: its file, or for an adapter fork its adapter file at the card's
   * `adapter_scale` (default 1) on its base's file.
   * @param label how the caller named the model, for the message
   * @throws ModelNotLocalError when this machine lacks the file (or the base's)
   */
  async filesOf(digest: Digest, label: string = digest): Promise<ModelFiles> {
    const path = await this.localPath(digest, label);
    const edge = (await this.registry.parentsOf(digest)).find((parent) => parent.relation === "adapter");
    if (edge === undefined) return { digest, path };
    const scale = (await this.registry.getModel(digest))?.card["adapter_scale"];
    const basePath = await this.localPath(edge.parent, `${label}'s base`);
    return { digest, path: basePath, adapter: { path, scale: typeof scale === "number" && Number.isFinite(scale) ? scale : 1, base: edge.parent } };
  }
}

/**
 * Picks an alias target with probability weight / total (canary rollout): `point` in [0, 1) is
 * laid over the targets' cumulative weights, in the alias's order (by digest).
 */
export function pickWeighted(targets: readonly AliasTarget[], point: number): Digest {
  const total = targets.reduce((sum, target) => sum + target.weight, 0);
  let remaining = point * total;
  for (const target of targets) {
    remaining -= target.weight;
    if (remaining < 0) return target.digest;
  }
  return targets[targets.length - 1]!.digest;
}

/** A uniform number in [0, 1) from the operating system's generator. */
function cryptoRandom(): number {
  return randomInt(0, 2 ** 48 - 1) / 2 ** 48;
}

function missingRow(digest: Digest): never {
  throw new ModelNotFoundError(digest);
}
