import { Template } from "@huggingface/jinja";
import { EngineError, InvalidRequestError } from "../core/errors.js";
import type { ChatMessage } from "./engine.js";

/** llama.cpp's fallback when a model has no template: ChatML. */
export const CHATML_FALLBACK =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** What a template renders with besides the messages. */
export interface ChatTemplateTokens {
  readonly bosToken: string;
  readonly eosToken: string;
}

/**
 * A model's chat template (`tokenizer.chat_template`, Jinja), rendered with @huggingface/jinja
 * as llama.cpp's server renders it: the messages, `add_generation_prompt`, `bos_token` and
 * `eos_token`. A model without a template gets ChatML, as in llama.cpp. A template that does not
 * compile is an error at load, never a silent substitute.
 */
export class ChatTemplate {
  readonly source: string;
  readonly #template: Template;
  readonly #tokens: ChatTemplateTokens;

  /** @throws EngineError when the template does not parse */
  constructor(source: string | undefined, tokens: ChatTemplateTokens) {
    this.source = source ?? CHATML_FALLBACK;
    this.#tokens = tokens;
    try {
      this.#template = new Template(this.source);
    } catch (error) {
      throw new EngineError(`The model's chat template does not parse: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * The prompt text for `messages`, ready for the assistant's turn.
   * @throws InvalidRequestError when the template refuses the conversation (raise_exception)
   */
  render(messages: readonly ChatMessage[]): string {
    try {
      return this.#template.render({
        messages: messages.map((message) => ({ role: message.role, content: message.content })),
        add_generation_prompt: true,
        bos_token: this.#tokens.bosToken,
        eos_token: this.#tokens.eosToken,
      });
    } catch (error) {
      throw new InvalidRequestError(`The model's chat template refused the conversation: ${(error as Error).message}`, { param: "messages", cause: error });
    }
  }
}
