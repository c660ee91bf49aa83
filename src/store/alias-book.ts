import type { Digest } from "../core/digest.js";
import { ConflictError, InvalidRequestError, NotFoundError } from "../core/errors.js";
import { formatModelName, parseModelName, parseModelRef } from "./model-ref.js";
import type { ModelStore } from "./model-store.js";
import type { AliasEvent, AliasRecord, AliasScore, AliasTarget, Registry } from "./registry.js";

/** One `MODEL[=weight]` of `grove alias set`. */
export interface AliasTargetSpec {
  /** A name, digest or unique digest prefix of a model in the store. */
  ref: string;
  /** Relative weight, > 0. @default 1 */
  weight?: number;
}

/** An alias target with the model's names and its share of the traffic. */
export interface AliasTargetView extends AliasTarget {
  names: string[];
  /** weight / sum of weights. */
  share: number;
}

/** An alias as `grove alias ls` and `GET /api/aliases` show it. */
export interface AliasView {
  name: string;
  targets: AliasTargetView[];
}

/** What a change to an alias records besides its targets (migrations fill in tasks and scores). */
export interface AliasChange {
  action: AliasEvent["action"];
  reason: string;
  tasks?: string[];
  scores?: AliasScore[];
}

/**
 * The aliases of a store and their history: every change (set, removal, migration, rollback) is
 * written together with a history entry in one registry transaction, so `rollback` can always
 * find the targets an alias had before. Reading an alias for serving (which target a request
 * gets) is the store's one resolution, `ModelResolver`, which this book's lookups share.
 */
export class AliasBook {
  constructor(private readonly store: ModelStore) {}

  /**
   * Parses `MODEL[=WEIGHT]`.
   * @example AliasBook.parseTarget("small:q8=10") // { ref: "small:q8", weight: 10 }
   */
  static parseTarget(text: string): AliasTargetSpec {
    const at = text.lastIndexOf("=");
    if (at < 0) return { ref: text };
    const weightText = text.slice(at + 1).trim();
    const weight = Number(weightText);
    if (weightText === "" || !Number.isFinite(weight) || weight <= 0) {
      throw new InvalidRequestError(`The weight of '${text.slice(0, at)}' must be a positive number, got '${weightText}'`, { param: "weight" });
    }
    return { ref: text.slice(0, at), weight };
  }

  /** The canonical alias name; refuses names that read as digests (they would shadow digest prefixes). */
  static canonicalName(name: string): string {
    const canonical = formatModelName(parseModelName(name));
    let kind: string;
    try {
      kind = parseModelRef(name).kind;
    } catch {
      kind = "name";
    }
    if (kind !== "name") throw new InvalidRequestError(`The alias name '${name}' reads as a digest or digest prefix; choose a name such as chat or chat:prod`, { param: "name" });
    return canonical;
  }

  /**
   * Creates or replaces an alias.
   * @throws InvalidRequestError for a bad name, no targets, a weight that is not positive, a model listed twice
   * @throws ConflictError when a model already has that name
   * @throws ModelNotFoundError for an unknown model
   */
  async set(name: string, specs: readonly AliasTargetSpec[]): Promise<{ alias: AliasView; event: AliasEvent }> {
    const canonical = AliasBook.canonicalName(name);
    if (specs.length === 0) throw new InvalidRequestError(`The alias '${canonical}' needs at least one model`, { param: "targets" });
    const targets: AliasTarget[] = [];
    for (const spec of specs) {
      const weight = spec.weight ?? 1;
      if (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0) {
        throw new InvalidRequestError(`The weight of '${spec.ref}' must be a positive number, got ${String(weight)}`, { param: "weight" });
      }
      const digest = (await this.store.resolve(spec.ref)).digest;
      if (targets.some((target) => target.digest === digest)) throw new InvalidRequestError(`The alias '${canonical}' lists ${spec.ref} (${digest.slice(0, 19)}…) twice`, { param: "targets" });
      targets.push({ digest, weight });
    }
    const event = await this.change(canonical, targets, { action: "set", reason: "set by hand" });
    return { alias: await this.get(canonical), event };
  }

  /**
   * Points an alias at `targets` and records why, in one transaction. With `expected`, refuses
   * (ConflictError) when the alias no longer has those targets (it changed meanwhile).
   */
  async change(name: string, targets: readonly AliasTarget[], change: AliasChange, expected?: readonly AliasTarget[]): Promise<AliasEvent> {
    return this.store.registry.transaction(async (registry) => {
      const before = await this.targetsIn(registry, name);
      if (expected !== undefined && !sameTargets(before, expected)) {
        throw new ConflictError(`The alias '${name}' changed while this ran (now ${describeTargets(before)}); run it again`);
      }
      if (targets.length === 0) await registry.removeAlias(name);
      else {
        if ((await registry.getNameTarget(name)) !== undefined) {
          throw new ConflictError(`'${name}' is already a model name; an alias may not shadow it. Choose another alias name, or remove the name first`, { param: "name" });
        }
        await registry.setAlias({ name, targets: [...targets] });
      }
      return registry.recordAliasEvent({
        alias: name,
        at: new Date().toISOString(),
        action: change.action,
        from: before,
        to: [...targets],
        tasks: change.tasks ?? [],
        scores: change.scores ?? [],
        decision: "applied",
        reason: change.reason,
      });
    });
  }

  /** Records a change that was decided against (a refused migration); the alias stays as it is. */
  async refuse(name: string, proposed: readonly AliasTarget[], change: AliasChange): Promise<AliasEvent> {
    const before = await this.targetsIn(this.store.registry, name);
    return this.store.registry.recordAliasEvent({
      alias: name,
      at: new Date().toISOString(),
      action: change.action,
      from: before,
      to: [...proposed],
      tasks: change.tasks ?? [],
      scores: change.scores ?? [],
      decision: "refused",
      reason: change.reason,
    });
  }

  /**
   * Removes an alias (its history stays, so `rollback` can restore it).
   * @throws NotFoundError when there is no such alias
   */
  async remove(name: string): Promise<AliasEvent> {
    const canonical = await this.require(name);
    return this.change(canonical.name, [], { action: "remove", reason: "removed by hand" });
  }

  /**
   * Restores the targets the alias had before its last change still in effect: each rollback
   * undoes one more (set, migration or removal), newest first.
   * @throws NotFoundError when the alias has no history; ConflictError when nothing is left to undo
   */
  async rollback(name: string): Promise<AliasEvent> {
    const canonical = AliasBook.canonicalName(name);
    const history = await this.store.registry.aliasHistory(canonical);
    if (history.length === 0) throw new NotFoundError(`No alias '${canonical}' (and no history of one)`, { param: "alias" });
    const undoable: AliasEvent[] = [];
    for (const event of history) {
      if (event.decision !== "applied") continue;
      if (event.action === "rollback") undoable.pop();
      else undoable.push(event);
    }
    const last = undoable.at(-1);
    if (last === undefined || last.from.length === 0) {
      throw new ConflictError(
        `Nothing to roll back for '${canonical}': ${last === undefined ? "every change has been rolled back" : `entry #${last.id} created it`}. Remove it with grove alias rm`,
      );
    }
    const current = await this.targetsIn(this.store.registry, canonical);
    return this.change(canonical, last.from, { action: "rollback", reason: `undid entry #${last.id} (${last.action}, ${describeTargets(last.from)} → ${describeTargets(last.to)})` }, current);
  }

  /** Every alias with its targets' names and shares, sorted by name. */
  async list(): Promise<AliasView[]> {
    const names = await this.namesByDigest();
    return (await this.store.aliases()).map((alias) => view(alias, names));
  }

  /** @throws NotFoundError when there is no such alias */
  async get(name: string): Promise<AliasView> {
    return view(await this.require(name), await this.namesByDigest());
  }

  /** An alias's history, oldest first (also after it was removed). */
  async history(name: string): Promise<AliasEvent[]> {
    return this.store.registry.aliasHistory(AliasBook.canonicalName(name));
  }

  /** @throws NotFoundError when there is no such alias */
  async require(name: string): Promise<AliasRecord> {
    const canonical = AliasBook.canonicalName(name);
    // The same lookup that serving resolves a request's model by (ModelResolver.alias).
    const alias = await this.store.resolver.alias(canonical);
    if (alias === undefined) throw new NotFoundError(`No alias '${canonical}'; list them with grove alias ls`, { param: "alias" });
    return alias;
  }

  private async targetsIn(registry: Registry, name: string): Promise<AliasTarget[]> {
    return (await registry.getAlias(name))?.targets ?? [];
  }

  private async namesByDigest(): Promise<Map<Digest, string[]>> {
    return new Map((await this.store.list()).map((model) => [model.digest, model.names]));
  }
}

/** The target with the largest weight (the first by digest on a tie): what a migration compares against. */
export function primaryTarget(targets: readonly AliasTarget[]): AliasTarget {
  return targets.reduce((best, target) => (target.weight > best.weight ? target : best));
}

/** `sha256:1a2b3c4d5e6f…×90, sha256:…×10`, for messages. */
export function describeTargets(targets: readonly AliasTarget[]): string {
  if (targets.length === 0) return "nothing";
  return targets.map((target) => `${target.digest.slice(0, 19)}…${targets.length > 1 ? ` ×${target.weight}` : ""}`).join(", ");
}

function sameTargets(a: readonly AliasTarget[], b: readonly AliasTarget[]): boolean {
  const key = (targets: readonly AliasTarget[]) => JSON.stringify([...targets].sort((x, y) => (x.digest < y.digest ? -1 : 1)).map((target) => [target.digest, target.weight]));
  return key(a) === key(b);
}

function view(alias: AliasRecord, names: Map<Digest, string[]>): AliasView {
  const total = alias.targets.reduce((sum, target) => sum + target.weight, 0);
  return {
    name: alias.name,
    targets: alias.targets.map((target) => ({ ...target, names: names.get(target.digest) ?? [], share: total > 0 ? target.weight / total : 0 })),
  };
}
