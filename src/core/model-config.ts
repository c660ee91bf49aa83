/**
 * The defaults a `config` fork gives its parent's weights (an Ollama Modelfile's SYSTEM,
 * TEMPLATE, LICENSE, PARAMETER and MESSAGE lines), as the store keeps them in the fork's card
 * under {@link MODEL_CONFIG_CARD_KEY}. Requests that set a field themselves win.
 */
export interface ModelConfig {
  /** The system prompt added when a chat has no system message of its own. */
  readonly system?: string;
  /**
   * An Ollama Go template (TEMPLATE). Kept to print it back, but Grove renders the GGUF's Jinja
   * chat template and does not translate Go templates: a chat on such a fork is refused, saying so.
   */
  readonly template?: string;
  /** LICENSE texts, in order. */
  readonly license?: readonly string[];
  /** PARAMETER values by Ollama's name (`temperature`, `num_ctx`, `stop`…); `stop` is a list. */
  readonly parameters?: Readonly<Record<string, ModelParameterValue>>;
  /** MESSAGE lines: a conversation put before every chat's messages. */
  readonly messages?: readonly ModelConfigMessage[];
}

export type ModelParameterValue = number | boolean | string | readonly string[];

/** One MESSAGE line. */
export interface ModelConfigMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

/** The card key holding a config fork's {@link ModelConfig}. */
export const MODEL_CONFIG_CARD_KEY = "grove.config";

/**
 * The generation defaults of a config: Grove's engine names for the Ollama parameters it applies.
 * Parameters Ollama knows that change nothing in Grove (`num_thread`, `num_gpu`…) are absent.
 */
export interface GenerationDefaults {
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  readonly seed?: number;
  readonly stop?: readonly string[];
  readonly repeatPenalty?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  /** `num_predict`; absent for -1 and -2 (until the context is full). */
  readonly maxTokens?: number;
  /** `num_ctx`: the context each slot of the fork's load holds. */
  readonly contextSize?: number;
}

const NUMBER_FIELDS: Readonly<Record<string, keyof GenerationDefaults>> = {
  temperature: "temperature",
  top_p: "topP",
  top_k: "topK",
  min_p: "minP",
  seed: "seed",
  repeat_penalty: "repeatPenalty",
  presence_penalty: "presencePenalty",
  frequency_penalty: "frequencyPenalty",
  num_ctx: "contextSize",
};

/** The engine defaults a config's parameters give (seed -1 and num_predict < 0 give none). */
export function generationDefaultsOf(config: ModelConfig): GenerationDefaults {
  const defaults: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(config.parameters ?? {})) {
    const field = NUMBER_FIELDS[name];
    if (field !== undefined && typeof value === "number") {
      if (name === "seed" && value < 0) continue;
      defaults[field] = value;
    } else if (name === "num_predict" && typeof value === "number" && value >= 0) defaults["maxTokens"] = value;
    else if (name === "stop" && Array.isArray(value)) defaults["stop"] = [...(value as string[])];
  }
  return defaults as GenerationDefaults;
}

/** The config a card holds, or undefined for a model that is not a config fork. */
export function modelConfigOf(card: Readonly<Record<string, unknown>>): ModelConfig | undefined {
  const value = card[MODEL_CONFIG_CARD_KEY];
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as ModelConfig) : undefined;
}
