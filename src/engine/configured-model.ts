import { NotSupportedError } from "../core/errors.js";
import { generationDefaultsOf, type ModelConfig } from "../core/model-config.js";
import type { ChatTemplateRenderOptions } from "./chat-template.js";
import { DelegatingModel } from "./delegating-model.js";
import type { ChatMessage, GenerateEvent, GenerateOptions, LoadedModel, ModelInfo } from "./engine.js";

/**
 * A config fork (`grove create NAME -f Modelfile`) served on the load of the model that holds its
 * weights: every chat gets the fork's system prompt when it has none and the fork's MESSAGE
 * conversation before its own (Ollama's `ChatHandler`: system, then the Modelfile's messages, then
 * the request's), and every generation the fork's parameters where the request set none. Wrapping
 * the model here, under every API, is what makes the defaults apply the same on all of them.
 */
export class ConfiguredModel extends DelegatingModel {
  constructor(
    inner: LoadedModel,
    /** The served identity: the fork's name and digest. */
    identity: { readonly id: string; readonly digest: ModelInfo["digest"] },
    readonly config: ModelConfig,
  ) {
    super({ ...inner.info, ...identity, defaults: generationDefaultsOf(config) }, inner);
  }

  /** The conversation the model reads: the fork's system prompt and MESSAGE lines, then the request's. */
  messagesOf(messages: readonly ChatMessage[]): ChatMessage[] {
    if (this.config.template !== undefined) {
      throw new NotSupportedError(
        `${this.info.id} was created with an Ollama TEMPLATE (a Go template); Grove renders the GGUF's own Jinja chat template and does not translate Go templates. ` +
          "Create the model again without TEMPLATE (its chat template is the file's), or use a raw completion",
      );
    }
    const first = messages[0];
    const hasSystem = first !== undefined && (first.role === "system" || first.role === "developer");
    const system: ChatMessage[] = hasSystem ? [first] : this.config.system === undefined ? [] : [{ role: "system", content: this.config.system }];
    return [...system, ...(this.config.messages ?? []), ...(hasSystem ? messages.slice(1) : messages)];
  }

  override renderChat(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): string {
    return this.inner.renderChat(this.messagesOf(messages), options);
  }

  override applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): number[] {
    return this.inner.applyChatTemplate(this.messagesOf(messages), options);
  }

  override generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    return this.inner.generate(withDefaults(options, this.info.defaults ?? {}));
  }
}

/** The request's options, with the fork's defaults where the request left a field unset (an empty stop list too). */
export function withDefaults(options: GenerateOptions, defaults: NonNullable<ModelInfo["defaults"]>): GenerateOptions {
  return {
    ...options,
    temperature: options.temperature ?? defaults.temperature,
    topP: options.topP ?? defaults.topP,
    topK: options.topK ?? defaults.topK,
    minP: options.minP ?? defaults.minP,
    seed: options.seed ?? defaults.seed,
    stop: options.stop !== undefined && options.stop.length > 0 ? options.stop : (defaults.stop ?? options.stop),
    repeatPenalty: options.repeatPenalty ?? defaults.repeatPenalty,
    presencePenalty: options.presencePenalty ?? defaults.presencePenalty,
    frequencyPenalty: options.frequencyPenalty ?? defaults.frequencyPenalty,
  };
}
