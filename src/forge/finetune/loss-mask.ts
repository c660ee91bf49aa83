import { readFile } from "node:fs/promises";
import { EngineError } from "../../core/errors.js";

/**
 * Which tokens of a chat record the loss is computed on: `answers`, the assistant turns only
 * (their content and end-of-turn token); `all`, every token, the template's framing and the
 * user's and system's turns included. Text records train on every token either way.
 */
export type LossOn = "answers" | "all";

/** The values of {@link LossOn}, for parsers. */
export const LOSS_ON_VALUES: readonly LossOn[] = ["answers", "all"];

/** One assistant turn of a conversation, rendered two ways with the chat template. */
export interface RenderedTurn {
  /** The conversation before the turn, ending with the template's opening of an assistant turn. */
  prompt: readonly number[];
  /** The conversation up to and including the turn's content, nothing after it. */
  withAnswer: readonly number[];
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let index = 0;
  while (index < limit && a[index] === b[index]) index++;
  return index;
}

/**
 * The label mask of one chat record: 1 for each token of `full` (the whole rendered conversation,
 * its closing EOS included) that the loss counts, 0 for the rest. The spans come from rendering
 * the conversation prefix by prefix, as trl and axolotl do: an assistant turn's content starts
 * where its `prompt` stops agreeing with `full`, and ends where its `withAnswer` does; the token
 * after the content counts too when it ends generation (ChatML's `<|im_end|>`, Llama 3's
 * `<|eot_id|>`, or the record's EOS after the last turn), so the model learns to stop.
 *
 * A token that straddles a boundary (a tokenizer merging the template's text with the answer's
 * first or last characters) counts as the answer's: it cannot be predicted without the answer.
 */
export function chatLossMask(full: readonly number[], turns: readonly RenderedTurn[], isEndOfTurn: (token: number) => boolean): Uint8Array {
  const mask = new Uint8Array(full.length);
  for (const turn of turns) {
    const start = commonPrefixLength(turn.prompt, full);
    const agreed = commonPrefixLength(turn.withAnswer, full);
    let end = agreed < turn.withAnswer.length ? Math.min(full.length, agreed + 1) : agreed;
    if (end < full.length && isEndOfTurn(full[end]!)) end++;
    mask.fill(1, start, Math.max(start, end));
  }
  return mask;
}

/**
 * Tokens of answer that the windows of a stream hold: for window `w`, the labels are the tokens
 * `w·stride + 1 … w·stride + n`, and the count is how many of them the mask keeps. A window that
 * counts 0 has nothing to learn from and is skipped.
 */
export function answerTokensPerWindow(mask: Uint8Array, n: number, stride: number, windows: number): Uint32Array {
  const before = new Uint32Array(mask.length + 1);
  for (let index = 0; index < mask.length; index++) before[index + 1] = before[index]! + mask[index]!;
  const counts = new Uint32Array(windows);
  for (let window = 0; window < windows; window++) {
    const first = window * stride + 1;
    counts[window] = before[Math.min(mask.length, first + n)]! - before[Math.min(mask.length, first)]!;
  }
  return counts;
}

/**
 * Reads a loss mask file: one byte per token of the tokens file, 1 trained, 0 not.
 * @throws EngineError when its length is not the token count or a byte is not 0 or 1
 */
export async function readLossMask(path: string, tokens: number): Promise<Uint8Array> {
  const bytes = await readFile(path);
  if (bytes.length !== tokens) throw new EngineError(`The loss mask ${path} has ${bytes.length} bytes for ${tokens} tokens`);
  const mask = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  if (mask.some((value) => value > 1)) throw new EngineError(`The loss mask ${path} holds a byte other than 0 or 1`);
  return mask;
}
