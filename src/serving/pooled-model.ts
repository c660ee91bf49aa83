import type { ChatTemplateRenderOptions } from "../engine/chat-template.js";
import type { ChatMessage, EmbedResult, GenerateEvent, GenerateOptions, LoadedModel, ModelInfo, ModelSource, ModelStats, TokenizeOptions, VocabularyFacts } from "../engine/engine.js";

/** What a {@link PooledModel} reports to its pool. */
export interface PoolTracker {
  touch(id: string): void;
  track(id: string, change: 1 | -1): void;
  isLoaded(model: LoadedModel): boolean;
  reacquire(source: ModelSource): Promise<LoadedModel>;
}

/**
 * A loaded model as the pool hands it to one request: every call marks the model in use (so the
 * pool never unloads it under a running generation), and a generation that starts after the
 * model was unloaded loads it again (within the budget) instead of touching freed memory.
 */
export class PooledModel implements LoadedModel {
  constructor(
    private inner: LoadedModel,
    private readonly source: ModelSource,
    private readonly pool: PoolTracker,
  ) {}

  get info(): ModelInfo {
    return this.inner.info;
  }

  tokenize(text: string, options?: TokenizeOptions): number[] {
    this.pool.touch(this.source.id);
    return this.inner.tokenize(text, options);
  }

  detokenize(tokens: readonly number[], options?: { special?: boolean }): string {
    this.pool.touch(this.source.id);
    return this.inner.detokenize(tokens, options);
  }

  vocabulary(): VocabularyFacts {
    this.pool.touch(this.source.id);
    return this.inner.vocabulary();
  }

  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): string {
    this.pool.touch(this.source.id);
    return this.inner.renderChat(messages, options);
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): number[] {
    this.pool.touch(this.source.id);
    return this.inner.applyChatTemplate(messages, options);
  }

  async prepareJsonGrammar(json: object | "json"): Promise<void> {
    const model = await this.current();
    this.pool.track(this.source.id, 1);
    try {
      await model.prepareJsonGrammar(json);
    } finally {
      this.pool.track(this.source.id, -1);
    }
  }

  async *generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    const model = await this.current();
    this.pool.track(this.source.id, 1);
    try {
      yield* model.generate(options);
    } finally {
      this.pool.track(this.source.id, -1);
    }
  }

  async embed(inputs: readonly (string | readonly number[])[], signal?: AbortSignal): Promise<EmbedResult> {
    const model = await this.current();
    this.pool.track(this.source.id, 1);
    try {
      return await model.embed(inputs, signal);
    } finally {
      this.pool.track(this.source.id, -1);
    }
  }

  stats(): ModelStats {
    return this.inner.stats();
  }

  /**
   * Marks the model in use while `events` runs on another load — a base's generation that applies
   * this adapter fork's adapter (llama-server's `lora`) — loading it again first when the pool
   * unloaded it, so its adapter is attached and stays so until `events` ends.
   */
  async *holding<T>(events: () => AsyncGenerator<T, void, void>): AsyncGenerator<T, void, void> {
    await this.current();
    this.pool.track(this.source.id, 1);
    try {
      yield* events();
    } finally {
      this.pool.track(this.source.id, -1);
    }
  }

  /** The loaded instance, loaded again when the pool unloaded it since this handle was made. */
  private async current(): Promise<LoadedModel> {
    if (!this.pool.isLoaded(this.inner)) this.inner = await this.pool.reacquire(this.source);
    return this.inner;
  }
}
