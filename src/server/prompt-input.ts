import { MediaInputError } from "../core/errors.js";
import type { LoadedModel } from "../engine/engine.js";

/**
 * llama-server's prompt forms, shared by its `/completion` and the embeddings routes
 * (tools/server `tokenize_input_prompts`): one prompt is text, token ids, text and token ids
 * mixed in one list, or `{prompt_string}`; a field holds one prompt or a list of prompts.
 */

/** The JSON prompt object; `multimodal_data` (base64 media) is refused, the models read text only. */
export interface JsonPrompt {
  readonly prompt_string: string;
  readonly multimodal_data?: unknown;
}

/** One prompt. */
export type PromptInput = string | readonly (string | number)[] | JsonPrompt;

/** A `prompt` or `input` field: one prompt, or a list whose items are prompts (one mixed prompt when it holds a token id). */
export type PromptsInput = PromptInput | readonly (string | number | readonly (string | number)[] | JsonPrompt)[];

/**
 * Tokens of a mixed prompt: text pieces tokenized, token ids kept. Special tokens (BOS, and EOS
 * where the vocabulary adds one, as BERT's [CLS] … [SEP]) are added around the first piece when
 * it is text and `addSpecial` is set, as llama-server's `tokenize_mixed` adds them.
 */
export function tokenizeMixed(model: LoadedModel, content: string | readonly (string | number)[], addSpecial: boolean, parseSpecial: boolean): number[] {
  const pieces = typeof content === "string" ? [content] : content;
  const tokens: number[] = [];
  pieces.forEach((piece, index) => {
    if (typeof piece === "number") tokens.push(piece);
    else tokens.push(...model.tokenize(piece, { special: parseSpecial, addSpecial: addSpecial && index === 0 }));
  });
  return tokens;
}

/**
 * The prompts of a field, tokenized with special tokens added and parsed: one, unless it is a
 * list whose items are prompts themselves. A list holding any token id is one mixed prompt.
 */
export function promptsOf(model: LoadedModel, field: PromptsInput, param = "prompt"): number[][] {
  const one = (item: PromptInput) => {
    if (typeof item !== "object" || Array.isArray(item)) return tokenizeMixed(model, item as string | readonly (string | number)[], true, true);
    const json = item as JsonPrompt;
    // llama-server refuses the key whenever it is there and the model has no projector.
    if (json.multimodal_data !== undefined) throw new MediaInputError("media", { param });
    return tokenizeMixed(model, json.prompt_string, true, true);
  };
  if (typeof field === "string" || !Array.isArray(field)) return [one(field as PromptInput)];
  const list = field as readonly PromptInput[] | readonly (string | number)[];
  if (list.some((item) => typeof item === "number")) return [one(list as readonly (string | number)[])];
  return (list as readonly PromptInput[]).map(one);
}
