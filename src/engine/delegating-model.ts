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

/**
 * A model served on another model's load (an adapter fork on its base, a config fork on its
 * weights): every call goes to `inner` unless a subclass changes it. One place for the
 * pass-through, so a method added to LoadedModel is forwarded by every fork kind.
 */
export abstract class DelegatingModel implements LoadedModel {
  constructor(
    readonly info: ModelInfo,
    /** The load this model runs on. */
    protected readonly inner: LoadedModel,
  ) {}

  tokenize(text: string, options?: TokenizeOptions): number[] {
    return this.inner.tokenize(text, options);
  }

  detokenize(tokens: readonly number[], options?: { special?: boolean }): string {
    return this.inner.detokenize(tokens, options);
  }

  vocabulary(): VocabularyFacts {
    return this.inner.vocabulary();
  }

  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): string {
    return this.inner.renderChat(messages, options);
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): number[] {
    return this.inner.applyChatTemplate(messages, options);
  }

  prepareJsonGrammar(json: object | "json"): Promise<void> {
    return this.inner.prepareJsonGrammar(json);
  }

  generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    return this.inner.generate(options);
  }

  embed(inputs: readonly (string | readonly number[])[], signal?: AbortSignal): Promise<EmbedResult> {
    return this.inner.embed(inputs, signal);
  }

  /** The inner load's slots and queue: a delegating model shares them. */
  stats(): ModelStats {
    return this.inner.stats();
  }
}
