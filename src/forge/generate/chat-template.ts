/**
 * The ChatML chat template (Jinja) written into generated models as
 * `tokenizer.chat_template`. It is the widely used form (Qwen, OpenHermes), which
 * node-llama-cpp's `resolveChatWrapper` recognises as its built-in ChatML wrapper and
 * llama.cpp's `llama_chat_apply_template` detects by `<|im_start|>`.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
