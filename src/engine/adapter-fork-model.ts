import { InvalidRequestError } from "../core/errors.js";
import { DelegatingModel } from "./delegating-model.js";
import type { EmbedResult, GenerateEvent, GenerateOptions, LoadedModel, ModelInfo } from "./engine.js";

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
export class AdapterForkModel extends DelegatingModel {
  readonly adapters: readonly AttachedAdapter[];

  constructor(info: ModelInfo, base: LoadedModel, adapters: readonly AttachedAdapter[]) {
    super(info, base);
    this.adapters = adapters;
  }

  /** The load the fork runs on. */
  get base(): LoadedModel {
    return this.inner;
  }

  override generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    return this.inner.generate({ ...options, adapters: this.adapters });
  }

  override async embed(): Promise<EmbedResult> {
    throw new InvalidRequestError(`${this.info.id} is an adapter fork; embeddings are computed without adapters, so ask its base`, { param: "model" });
  }
}
