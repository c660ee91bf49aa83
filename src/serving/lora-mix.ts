import { InvalidRequestError, NotSupportedError } from "../core/errors.js";
import { DelegatingModel } from "../engine/delegating-model.js";
import type { GenerateEvent, GenerateOptions, LoadedModel } from "../engine/engine.js";
import type { LoraChoice, ModelCatalog } from "./model-catalog.js";
import { PooledModel } from "./pooled-model.js";

/**
 * The base with a request's mix of its adapter forks: each generation runs on the base's load
 * with the forks' adapters at the mix's scales, and holds the forks loaded while it runs (the pool
 * would otherwise see them idle, unload them, and free their adapters before a queued generation
 * starts).
 */
class LoraMixModel extends DelegatingModel {
  constructor(
    base: LoadedModel,
    private readonly forks: readonly LoadedModel[],
    private readonly adapters: NonNullable<GenerateOptions["adapters"]>,
  ) {
    super(base.info, base);
  }

  override generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    let events = (): AsyncGenerator<GenerateEvent, void, void> => this.inner.generate({ ...options, adapters: this.adapters });
    for (const fork of this.forks) {
      if (!(fork instanceof PooledModel)) continue;
      const inner = events;
      events = () => fork.holding(inner);
    }
    return events();
  }
}


/**
 * `model` (asked for as `name`) as a request's generations run it under llama-server's
 * per-request `lora: [{id, scale}]` — itself when no adapter applies, else a {@link LoraMixModel}. An id is a place in {@link ModelCatalog.adaptersOf}'s list of
 * the model's adapter forks (`GET /lora-adapters`); each fork named with a scale other than 0 is
 * loaded (its adapter attached to the base's one load, once) and joins the generation at that
 * scale — an adapter left out, or at 0, is not applied, as in llama-server; without `lora`, the
 * catalog's defaults apply ({@link ModelCatalog.defaultLora}: `--lora` files). Different mixes are
 * never batched together: the decode loop gives each set its turn.
 *
 * `applyFork` is told of each fork applied before it loads — the route checks it against the key's
 * models (a key limited to some models reaches no other model's adapter through `lora`) and prices
 * the request at least as the fork.
 *
 * @throws InvalidRequestError for an unknown or repeated id, or when `name` is itself an adapter
 *   fork; NotSupportedError where the catalog has no adapters to mix (`--model FILE`); whatever
 *   `applyFork` throws
 */
export async function withLora(
  catalog: ModelCatalog,
  name: string,
  model: LoadedModel,
  lora: readonly LoraChoice[] | undefined,
  applyFork: (fork: { readonly names: readonly string[]; readonly digest: string }) => void,
): Promise<LoadedModel> {
  if (lora === undefined) {
    // llama-server's --lora adapters apply to requests that choose none: the operator's choice
    // for the model, so a key's model list is not asked about them.
    const defaults = catalog.defaultLora?.(name) ?? [];
    return defaults.length === 0 ? model : withLora(catalog, name, model, defaults, () => {});
  }
  if (lora.length === 0) return model;
  if (model.info.base !== undefined) {
    throw new InvalidRequestError(`lora picks adapters of a base model, and ${name} is itself an adapter fork: ask its base, or drop lora`, { param: "lora" });
  }
  if (catalog.adaptersOf === undefined) {
    throw new NotSupportedError("This server has no adapters to apply per request: serve the model from the store (grove serve --model NAME), where its adapter forks are its LoRA adapters");
  }
  const listed = await catalog.adaptersOf(name);
  const seen = new Set<number>();
  const adapters: { key: string; scale: number }[] = [];
  const forks: LoadedModel[] = [];
  for (const choice of lora) {
    const entry = listed.find((candidate) => candidate.id === choice.id);
    if (entry === undefined) {
      const ids = listed.length === 0 ? "none" : `ids ${listed.map((candidate) => candidate.id).join(", ")}`;
      throw new InvalidRequestError(`lora names adapter ${choice.id}, and ${name} has ${listed.length} (${ids}; GET /lora-adapters lists them)`, { param: "lora" });
    }
    if (seen.has(choice.id)) throw new InvalidRequestError(`lora names adapter ${choice.id} twice`, { param: "lora" });
    seen.add(choice.id);
    if (choice.scale === 0) continue;
    applyFork({ names: entry.names ?? [entry.name], digest: entry.digest });
    const fork = await catalog.get(entry.name);
    // The fork runs on the base's load; its adapters are attached there under these keys.
    if (fork.info.base !== model.info.id || fork.info.adapterKeys === undefined) {
      throw new InvalidRequestError(`${entry.name} does not run on the same load as ${name} (a config fork, or another context size or slot count): ask the fork by name instead`, { param: "lora" });
    }
    for (const key of fork.info.adapterKeys) adapters.push({ key, scale: choice.scale });
    forks.push(fork);
  }
  return adapters.length === 0 ? model : new LoraMixModel(model, forks, adapters);
}
