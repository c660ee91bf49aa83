import { InvalidRequestError, NotSupportedError } from "../core/errors.js";
import type { GenerateOptions, LoadedModel } from "../engine/engine.js";
import type { LoraChoice, ModelCatalog } from "./model-catalog.js";


/**
 * The adapters a generation on `model` (asked for as `name`) runs with under llama-server's
 * per-request `lora: [{id, scale}]`. An id is a place in {@link ModelCatalog.adaptersOf}'s list of
 * the model's adapter forks (`GET /lora-adapters`); each fork named with a scale other than 0 is
 * loaded (its adapter attached to the base's one load, once) and joins the generation at that
 * scale — an adapter left out, or at 0, is not applied, as in llama-server; without `lora`, the
 * catalog's defaults apply ({@link ModelCatalog.defaultLora}: `--lora` files). Different mixes are
 * never batched together: the decode loop gives each set its turn.
 *
 * `checkModel` is asked for each fork applied, as for a model the request names (a key limited to
 * some models reaches no other model's adapter through `lora`).
 *
 * @throws InvalidRequestError for an unknown or repeated id, or when `name` is itself an adapter
 *   fork; NotSupportedError where the catalog has no adapters to mix (`--model FILE`); whatever
 *   `checkModel` throws
 */
export async function loraAdapters(
  catalog: ModelCatalog,
  name: string,
  model: LoadedModel,
  lora: readonly LoraChoice[] | undefined,
  checkModel: (name: string) => void,
): Promise<Pick<GenerateOptions, "adapters">> {
  if (lora === undefined) {
    // llama-server's --lora adapters apply to requests that choose none: the operator's choice
    // for the model, so a key's model list is not asked about them.
    const defaults = catalog.defaultLora?.(name) ?? [];
    return defaults.length === 0 ? {} : loraAdapters(catalog, name, model, defaults, () => {});
  }
  if (lora.length === 0) return {};
  if (model.info.base !== undefined) {
    throw new InvalidRequestError(`lora picks adapters of a base model, and ${name} is itself an adapter fork: ask its base, or drop lora`, { param: "lora" });
  }
  if (catalog.adaptersOf === undefined) {
    throw new NotSupportedError("This server has no adapters to apply per request: serve the model from the store (grove serve --model NAME), where its adapter forks are its LoRA adapters");
  }
  const listed = await catalog.adaptersOf(name);
  const seen = new Set<number>();
  const adapters: { key: string; scale: number }[] = [];
  for (const choice of lora) {
    const entry = listed[choice.id];
    if (entry === undefined) {
      throw new InvalidRequestError(`lora names adapter ${choice.id}, and ${name} has ${listed.length} (ids 0 to ${listed.length - 1}; GET /lora-adapters lists them)`, { param: "lora" });
    }
    if (seen.has(choice.id)) throw new InvalidRequestError(`lora names adapter ${choice.id} twice`, { param: "lora" });
    seen.add(choice.id);
    if (choice.scale === 0) continue;
    checkModel(entry.name);
    const fork = await catalog.get(entry.name);
    // The fork runs on the base's load; its adapters are attached there under these keys.
    if (fork.info.base !== model.info.id || fork.info.adapterKeys === undefined) {
      throw new InvalidRequestError(`${entry.name} does not run on the load of ${name} (another context size or slot count): ask it by name instead`, { param: "lora" });
    }
    for (const key of fork.info.adapterKeys) adapters.push({ key, scale: choice.scale });
  }
  return adapters.length === 0 ? {} : { adapters };
}
