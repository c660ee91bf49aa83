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

/** A sampled token and the distribution the chain drew it from ({@link SamplerChain.sampleWithCandidates}). */
export interface SampledCandidates {
  readonly token: number;
  /** The token's probability after the whole chain. */
  readonly probability: number;
  /** The most probable candidates after the chain, best first; none of probability 0. */
  readonly top: readonly { readonly token: number; readonly probability: number }[];
}

/**
 * One generation's llama.cpp sampler chain, in the order of llama.cpp's common sampler: grammar,
 * logit bias, penalties, top-k, top-p, min-p, temperature, then a seeded draw (or greedy for a
 * temperature of 0). Penalties and the grammar see the tokens this chain samples (not the prompt).
 */
export class SamplerChain {
  readonly #model: NativeModel;
  readonly #chain: unknown;
  readonly #greedy: boolean;
  /** The candidate array of {@link sampleWithCandidates}, allocated on first use (never on the common path). */
  #candidates: { pointer: unknown; ids: Int32Array; values: Float32Array } | undefined;
  #freed = false;

  constructor(model: NativeModel, settings: SamplerSettings) {
    const { fn } = model.lib;
    this.#model = model;
    this.#greedy = settings.temperature <= 0;
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

  /**
   * Samples (and accepts) a token as {@link sample} does, and also returns the distribution it was
   * drawn from: the `count` most probable candidates left after the whole chain (grammar, bias,
   * penalties, top-k, top-p, min-p, temperature), with their probabilities, as llama-server's
   * `post_sampling_probs` reports them. It applies the chain to a candidate array of its own, as
   * llama_sampler_sample does inside (same tokens, same random draws), so it costs a vocabulary-
   * sized copy per token: used only when asked for. Candidates of probability 0 are left out; a
   * greedy chain computes no probabilities, so its choice has probability 1 (llama-server's
   * temperature 0 keeps the one best token too).
   */
  sampleWithCandidates(context: NativeContext, index: number, count: number): SampledCandidates {
    const { fn, koffi } = this.#model.lib;
    const size = this.#model.vocabularySize;
    const logits = context.logitsAt(index);
    if (this.#candidates === undefined) {
      // llama_token_data is { int32 id; float logit; float p }: 12 bytes, read through two views.
      const pointer = koffi.alloc("llama_token_data", size);
      const bytes = koffi.view(pointer, size * 12) as ArrayBuffer;
      this.#candidates = { pointer, ids: new Int32Array(bytes), values: new Float32Array(bytes) };
    }
    const { pointer, ids, values } = this.#candidates;
    for (let token = 0, at = 0; token < size; token++, at += 3) {
      ids[at] = token;
      values[at + 1] = logits[token]!;
      values[at + 2] = 0;
    }
    const array = { data: pointer, size, selected: -1, sorted: false };
    fn.llama_sampler_apply!(this.#chain, array);
    const selected = Number(array.selected);
    const left = Number(array.size);
    if (selected < 0 || selected >= left) throw new EngineError("llama.cpp's sampler chain selected no token");
    const token = ids[selected * 3]!;
    fn.llama_sampler_accept!(this.#chain, token);
    if (this.#greedy) return { token, probability: 1, top: count > 0 ? [{ token, probability: 1 }] : [] };
    let probability = values[selected * 3 + 2]!;
    // The `count` most probable, best first (a partial selection: the candidates may be the whole vocabulary).
    const top: { token: number; probability: number }[] = [];
    for (let at = 0; at < left; at++) {
      const p = values[at * 3 + 2]!;
      if (!(p > 0) || (top.length === count && p <= top[count - 1]!.probability)) continue;
      let place = top.length;
      while (place > 0 && top[place - 1]!.probability < p) place--;
      top.splice(place, 0, { token: ids[at * 3]!, probability: p });
      if (top.length > count) top.pop();
    }
    if (!(probability > 0)) probability = 0;
    return { token, probability, top };
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.#model.lib.fn.llama_sampler_free!(this.#chain);
    if (this.#candidates !== undefined) this.#model.lib.koffi.free(this.#candidates.pointer);
    this.#candidates = undefined;
  }
}
