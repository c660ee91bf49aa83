import { EngineError } from "../core/errors.js";
import type { NativeContext, NativeModel } from "./native-model.js";

/** The sampling settings of one generation, as llama.cpp's samplers take them. */
export interface SamplerSettings {
  /** 0 (or below) samples greedily. */
  temperature: number;
  /** 0: off. */
  topK: number;
  /** 1: off. */
  topP: number;
  /** 0: off. */
  minP: number;
  seed: number;
  /** llama.cpp's multiplicative penalty; 1: off. */
  repeatPenalty: number;
  /** OpenAI semantics (subtracted per occurrence / once); 0: off. */
  frequencyPenalty: number;
  presencePenalty: number;
  /** How many of the last accepted tokens the penalties look at. */
  penaltyWindow: number;
  /** Added to logits; -Infinity bans a token. */
  logitBias: readonly (readonly [number, number])[];
  /** A GBNF grammar and its root rule the output must match. */
  grammar?: { readonly gbnf: string; readonly root: string };
}

/**
 * One generation's llama.cpp sampler chain, in the order of llama.cpp's common sampler: grammar,
 * logit bias, penalties, top-k, top-p, min-p, temperature, then a seeded draw (or greedy for a
 * temperature of 0). Penalties and the grammar see the tokens this chain samples (not the prompt).
 */
export class SamplerChain {
  readonly #model: NativeModel;
  readonly #chain: unknown;
  #freed = false;

  constructor(model: NativeModel, settings: SamplerSettings) {
    const { fn } = model.lib;
    this.#model = model;
    this.#chain = fn.llama_sampler_chain_init!(fn.llama_sampler_chain_default_params!());
    const add = (sampler: unknown, what: string): void => {
      if (sampler === null) {
        this.free();
        throw new EngineError(`llama.cpp could not create the ${what} sampler`);
      }
      fn.llama_sampler_chain_add!(this.#chain, sampler);
    };
    if (settings.grammar !== undefined) add(fn.llama_sampler_init_grammar!(model.vocab, settings.grammar.gbnf, settings.grammar.root), "grammar");
    if (settings.logitBias.length > 0) {
      const biases = settings.logitBias.map(([token, bias]) => ({ token, bias }));
      add(fn.llama_sampler_init_logit_bias!(model.vocabularySize, biases.length, biases), "logit bias");
    }
    if (settings.repeatPenalty !== 1 || settings.frequencyPenalty !== 0 || settings.presencePenalty !== 0) {
      add(fn.llama_sampler_init_penalties!(model.vocabularySize, settings.penaltyWindow, settings.repeatPenalty, settings.frequencyPenalty, settings.presencePenalty), "penalties");
    }
    if (settings.temperature <= 0) {
      add(fn.llama_sampler_init_greedy!(), "greedy");
      return;
    }
    if (settings.topK > 0) add(fn.llama_sampler_init_top_k!(settings.topK), "top-k");
    if (settings.topP < 1) add(fn.llama_sampler_init_top_p!(settings.topP, 1), "top-p");
    if (settings.minP > 0) add(fn.llama_sampler_init_min_p!(settings.minP, 1), "min-p");
    add(fn.llama_sampler_init_temp!(settings.temperature), "temperature");
    add(fn.llama_sampler_init_dist!(settings.seed >>> 0), "dist");
  }

  /** Samples (and accepts) a token from the logits of batch index `index` of the context's last decode. */
  sample(context: NativeContext, index: number): number {
    return this.#model.lib.fn.llama_sampler_sample!(this.#chain, context.handle, index) as number;
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#model.lib.fn.llama_sampler_free!(this.#chain);
  }
}
