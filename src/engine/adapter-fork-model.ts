import { InvalidRequestError } from "../core/errors.js";
import type { ChatTemplateRenderOptions } from "./chat-template.js";
import type {
  ChatMessage,
  EmbedResult,
  GenerateEvent,
  GenerateOptions,
  LoadedModel,
  ModelInfo,
  ModelStats,
  TokenizeOptions,
  VocabularyFacts,
} from "./engine.js";

/** An adapter attached to the base (its key there) and the scale the fork applies it with. */
export interface AttachedAdapter {
  readonly key: string;
  readonly scale: number;
}

/**
 * An adapter fork served on its base's load (LoRAX's and vLLM's multi-LoRA serving, llama-server's
 * per-request `lora`): the base's vocabulary, template, slots and KV cache, with the fork's adapters
 * applied to each of its generations. It holds no weights or decode thread of its own; unloading
 * it detaches its adapters, unloading the base ends it.
 */
export class AdapterForkModel implements LoadedModel {
  readonly info: ModelInfo;
  readonly base: LoadedModel;
  readonly adapters: readonly AttachedAdapter[];

  constructor(info: ModelInfo, base: LoadedModel, adapters: readonly AttachedAdapter[]) {
    this.info = info;
    this.base = base;
    this.adapters = adapters;
  }

  tokenize(text: string, options?: TokenizeOptions): number[] {
    return this.base.tokenize(text, options);
  }

  detokenize(tokens: readonly number[], options?: { special?: boolean }): string {
    return this.base.detokenize(tokens, options);
  }

  vocabulary(): VocabularyFacts {
    return this.base.vocabulary();
  }

  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): string {
    return this.base.renderChat(messages, options);
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): number[] {
    return this.base.applyChatTemplate(messages, options);
  }

  prepareJsonGrammar(json: object | "json"): Promise<void> {
    return this.base.prepareJsonGrammar(json);
  }

  generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    return this.base.generate({ ...options, adapters: this.adapters });
  }

  async embed(): Promise<EmbedResult> {
    throw new InvalidRequestError(`${this.info.id} is an adapter fork; embeddings are computed without adapters, so ask its base`, { param: "model" });
  }

  /** The base's slots and queue: the fork shares them. */
  stats(): ModelStats {
    return this.base.stats();
  }
}
