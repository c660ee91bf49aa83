import type { HubClientOptions } from "./hub-client.js";

/** The hub settings found in an environment: `undefined` where a variable is unset or empty. */
export interface HubSettings {
  /** From `HF_ENDPOINT`: the base URL of a Hugging Face-compatible hub or mirror. */
  readonly endpoint: string | undefined;
  /** From `HF_TOKEN`, else the older `HUGGING_FACE_HUB_TOKEN`: the hub access token. */
  readonly token: string | undefined;
}

/**
 * Reads the variables the Hugging Face tools share (`HF_ENDPOINT`, `HF_TOKEN`,
 * `HUGGING_FACE_HUB_TOKEN`) from the environment it is given, for the config layer to merge
 * with its own sources. It never reads `process.env` itself; only `config/` does that. The
 * result fits {@link HubClientOptions} directly; values are not validated here (the
 * `HubClient` constructor refuses a bad endpoint with a ConfigError).
 *
 * @example
 * const settings = hubSettingsFromEnvironment(process.env); // in config/ only
 * const client = new HubClient({ ...settings });
 */
export function hubSettingsFromEnvironment(env: Readonly<Record<string, string | undefined>>): HubSettings {
  const read = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  return Object.freeze({ endpoint: read("HF_ENDPOINT"), token: read("HF_TOKEN") ?? read("HUGGING_FACE_HUB_TOKEN") });
}
