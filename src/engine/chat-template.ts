import { Template } from "@huggingface/jinja";
import { EngineError, InvalidRequestError } from "../core/errors.js";
import type { ChatMessage, ChatTemplateRenderOptions, ChatTool } from "./engine.js";

export type { ChatTemplateRenderOptions } from "./engine.js";
import {
  preserveReasoningVariables,
  probeCapabilities,
  reasoningEffortVariables,
  type ChatTemplateCapabilities,
} from "./chat-template-capabilities.js";
import { chatTemplateFamily, patchTemplateSource, type ChatTemplateFamily } from "./chat-template-family.js";
import { templateMessages } from "./chat-template-messages.js";
import { renderTemplate, strftime, TemplateRaisedError } from "./chat-template-runtime.js";

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
 * One of llama.cpp's built-in chat formats (`llama_chat_apply_template`): roles and text in,
 * the prompt out. Given with the format's name, it replaces Jinja for that template.
 */
export type BuiltinChatFormatter = (messages: readonly { readonly role: string; readonly content: string }[], addAssistant: boolean) => string;

/** What a built-in format reads: roles and text, no tools, no reasoning. */
const BUILTIN_CAPABILITIES: ChatTemplateCapabilities = {
  systemRole: true,
  tools: false,
  toolCalls: false,
  parallelToolCalls: false,
  objectArguments: false,
  stringContent: true,
  typedContent: false,
  preserveReasoning: false,
  reasoningEffort: false,
};

/**
 * A model's chat template (`tokenizer.chat_template`, Jinja), rendered with @huggingface/jinja
 * as llama.cpp's server renders it (`common/chat.cpp`, `common_chat_templates_apply_jinja`):
 * the same variables (`messages` with tool calls, tool results and reasoning, `tools`,
 * `add_generation_prompt`, `bos_token`, `eos_token`, `enable_thinking`, `date_string`,
 * `datetime`, `strftime_now()`, `raise_exception()`), the same capability probes and the same
 * adaptations of the messages: notably a template that ignores system messages gets the system
 * text joined to the first user turn (see `capabilities.systemRole`). A model without a template
 * gets ChatML, as in llama.cpp. A template that does not parse is an error at load, never a
 * silent substitute.
 */
export class ChatTemplate {
  /** The template as the model gives it (or ChatML). */
  readonly source: string;
  /** What the template can render, probed at load as llama.cpp probes it. */
  readonly capabilities: ChatTemplateCapabilities;
  /** The family llama.cpp has code of its own for, if any. */
  readonly family: ChatTemplateFamily | undefined;
  readonly #template: Template | undefined;
  readonly #builtin: BuiltinChatFormatter | undefined;
  readonly #tokens: ChatTemplateTokens;

  /**
   * @param source the Jinja text, or with `builtin` the name of llama.cpp's built-in format
   * @param builtin llama.cpp's formatter for the built-in format `source` names
   * @throws EngineError when the template does not parse
   */
  constructor(source: string | undefined, tokens: ChatTemplateTokens, builtin?: BuiltinChatFormatter) {
    this.source = source ?? CHATML_FALLBACK;
    this.#tokens = tokens;
    if (builtin !== undefined) {
      this.#builtin = builtin;
      this.family = undefined;
      this.capabilities = BUILTIN_CAPABILITIES;
      return;
    }
    this.family = chatTemplateFamily(this.source);
    try {
      this.#template = new Template(patchTemplateSource(this.source));
    } catch (error) {
      throw new EngineError(`The model's chat template does not parse: ${(error as Error).message}`, { cause: error });
    }
    this.capabilities = probeCapabilities(this.#template);
  }

  /**
   * The prompt text for `messages`.
   * @throws InvalidRequestError when the template refuses the conversation (raise_exception), or
   *   when tool call arguments it must read as an object are not JSON
   * @throws EngineError when the template fails for another reason
   */
  render(messages: readonly ChatMessage[], options: ChatTemplateRenderOptions = {}): string {
    if (this.#builtin !== undefined) return this.#renderBuiltin(this.#builtin, messages, options);
    const now = options.now ?? new Date();
    const variables: Record<string, unknown> = {
      messages: templateMessages(messages, this.source, this.capabilities, this.family),
      bos_token: this.#tokens.bosToken,
      eos_token: this.#tokens.eosToken,
      enable_thinking: options.enableThinking ?? true,
      tools: options.tools && options.tools.length > 0 ? options.tools.map(toTemplateTool) : undefined,
      datetime: strftime(now, "%b %d %Y"),
      date_string: strftime(now, "%d %b %Y"),
      ...options.templateArguments,
    };
    const { preserve_reasoning: preserve, reasoning_effort: effort } = variables;
    if (typeof preserve === "boolean") Object.assign(variables, preserveReasoningVariables(preserve));
    if (typeof effort === "string" && effort !== "") Object.assign(variables, reasoningEffortVariables(effort));
    const continuation = options.continuation;
    const template = this.#template!;
    try {
      if (continuation === undefined) {
        // llama.cpp sets add_generation_prompt only when true: "is defined" tests see the difference.
        if (options.addGenerationPrompt ?? true) variables.add_generation_prompt = true;
        return renderTemplate(template, variables, { now });
      }
      const before = continuation.reopen === undefined ? "" : renderTemplate(template, variables, { now });
      let prompt = renderTemplate(template, { ...variables, add_generation_prompt: true }, { now });
      const cut = continuation.reopen === undefined ? -1 : prompt.lastIndexOf(continuation.reopen);
      if (cut >= before.length && prompt.startsWith(before)) prompt = prompt.slice(0, cut);
      return prompt + continuation.text;
    } catch (error) {
      if (error instanceof TemplateRaisedError) {
        throw new InvalidRequestError(`The model's chat template refused the conversation: ${error.message}`, { param: "messages", cause: error });
      }
      throw new EngineError(`The model's chat template failed on this conversation: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * llama.cpp's legacy path (`common_chat_templates_apply_legacy`): each message's role and text
   * (`developer` as `system`; tool calls and reasoning are not part of these formats).
   */
  #renderBuiltin(format: BuiltinChatFormatter, messages: readonly ChatMessage[], options: ChatTemplateRenderOptions): string {
    const chat = messages.map((message) => ({ role: message.role === "developer" ? "system" : message.role, content: message.content }));
    if (options.continuation !== undefined) return format(chat, true) + options.continuation.text;
    return format(chat, options.addGenerationPrompt ?? true);
  }
}

/** `common_chat_tools_to_json_oaicompat`: OpenAI's shape, description and parameters filled in. */
function toTemplateTool(tool: ChatTool): Record<string, unknown> {
  return { type: "function", function: { name: tool.name, description: tool.description ?? "", parameters: tool.parameters ?? {} } };
}
