import type { ModelSetting } from "../config/model-settings.js";
import { defaultContextSize } from "../core/context-size.js";
import type { Digest } from "../core/digest.js";
import { ConfigError, GroveError } from "../core/errors.js";
import type { ModelSource } from "../engine/engine.js";
import { GgufMetadataReader } from "../gguf/gguf-metadata-reader.js";

/** Context and slots one model is served with. */
export interface ServingShape {
  readonly contextSize: number;
  readonly slots: number;
}

/** What {@link resolveModelSettings} needs from the store and the catalog. */
export interface ResolveModelSettingsOptions {
  readonly settings: readonly ModelSetting[];
  /** The global `--ctx-size` (absent: its default for each model's training context) and `--parallel`, for the fields a setting leaves out. */
  readonly defaults: { readonly contextSize?: number; readonly slots: number };
  /** A store name or digest → its digest (aliases are not accepted: they pick a target per request). */
  readonly resolve: (name: string) => Promise<Digest>;
  /** The file that would be loaded for a digest (the base's, for an adapter fork). */
  readonly sourceOf: (digest: Digest, name: string) => Promise<ModelSource>;
}

const FLAG = "--model-settings";
const SOURCE = `${FLAG} (GROVE_MODEL_SETTINGS)`;

/**
 * Turns `--model-settings` (by name) into the shape each model digest is loaded with, checking at
 * startup that every name is a model in the store, that its ctx does not pass the model's training
 * context (`<arch>.context_length`), and that two names of one file do not ask for different shapes
 * (they share one load).
 *
 * @throws ConfigError naming `--model-settings`
 */
export async function resolveModelSettings(options: ResolveModelSettingsOptions): Promise<Map<Digest, ServingShape>> {
  const shapes = new Map<Digest, { shape: ServingShape; name: string }>();
  for (const setting of options.settings) {
    let digest: Digest;
    let source: ModelSource;
    try {
      digest = await options.resolve(setting.name);
      source = await options.sourceOf(digest, setting.name);
    } catch (error) {
      if (!(error instanceof GroveError)) throw error;
      throw new ConfigError(`${SOURCE} names '${setting.name}', which is not a model in the store: ${error.message}`, { param: FLAG, cause: error });
    }
    if (source.base !== undefined) {
      throw new ConfigError(`${SOURCE} names '${setting.name}', an adapter fork: it runs on its base's load, so give the ctx and slots to its base`, { param: FLAG });
    }
    const metadata = await GgufMetadataReader.open(source.path);
    const architecture = metadata.string("general.architecture", true);
    const trained = metadata.uint32(`${architecture}.context_length`);
    const shape = { contextSize: setting.contextSize ?? options.defaults.contextSize ?? defaultContextSize(trained), slots: setting.slots ?? options.defaults.slots };
    if (setting.contextSize !== undefined && trained !== undefined && trained > 0 && setting.contextSize > trained) {
      throw new ConfigError(`${SOURCE}: ctx ${setting.contextSize} for '${setting.name}' is above the model's training context of ${trained} tokens`, { param: FLAG });
    }
    const earlier = shapes.get(digest);
    if (earlier !== undefined && (earlier.shape.contextSize !== shape.contextSize || earlier.shape.slots !== shape.slots)) {
      throw new ConfigError(`${SOURCE}: '${earlier.name}' and '${setting.name}' are the same model file (one load) but ask for different ctx or slots`, { param: FLAG });
    }
    shapes.set(digest, { shape, name: setting.name });
  }
  return new Map([...shapes].map(([digest, { shape }]) => [digest, shape]));
}
