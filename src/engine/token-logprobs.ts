import type { TokenLogprob } from "./engine.js";

/** The log-probability of `token` and the `top` most likely tokens, from a row of raw logits; `text` spells a token. */
export function logprobOf(logits: Float32Array, token: number, top: number, text: (token: number) => string): TokenLogprob {
  const lse = logSumExp(logits);
  const best = top > 0 ? topTokens(logits, top) : [];
  return {
    token,
    text: text(token),
    logprob: logits[token]! - lse,
    top: best.map((candidate) => ({ token: candidate, text: text(candidate), logprob: logits[candidate]! - lse })),
  };
}

/** log Σ exp over a row, stably. */
export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let index = 0; index < row.length; index++) if (row[index]! > max) max = row[index]!;
  let sum = 0;
  for (let index = 0; index < row.length; index++) sum += Math.exp(row[index]! - max);
  return max + Math.log(sum);
}

/** The indices of the `count` largest values of a row, largest first. */
export function topTokens(row: Float32Array, count: number): number[] {
  // Most of the row (llama-server's `n_probs` up to the vocabulary): one sort beats insertion.
  if (count * 8 >= row.length) {
    const order = Array.from({ length: row.length }, (_, index) => index).sort((a, b) => row[b]! - row[a]! || a - b);
    return order.slice(0, count);
  }
  const best: number[] = [];
  for (let index = 0; index < row.length; index++) {
    const value = row[index]!;
    if (best.length === count && value <= row[best[count - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && row[best[at - 1]!]! < value) at--;
    best.splice(at, 0, index);
    if (best.length > count) best.pop();
  }
  return best;
}
