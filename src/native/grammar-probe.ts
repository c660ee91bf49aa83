import { EngineError } from "../core/errors.js";
import type { NativeModel } from "./native-model.js";

/** What {@link probeGrammar} found. */
export interface GrammarProbeResult {
  /** llama.cpp parsed the grammar (rules defined, no left recursion). */
  readonly compiles: boolean;
  /** The grammar sampler let every token of the text through and then allows end of generation. */
  readonly accepts: boolean;
  /** The text before the first token the grammar refused (or all of it, when it could not end there). */
  readonly acceptedPrefix: string;
}

/**
 * Runs `text` through llama.cpp's grammar sampler for `gbnf`, token by token as `model`'s
 * vocabulary splits it (special-token text parsed as special tokens when `parseSpecial`): whether
 * the grammar compiles, and whether it accepts the text as a whole output. For tests and for
 * checking a grammar before generation; a vocabulary-only model is enough.
 */
export function probeGrammar(model: NativeModel, gbnf: string, root: string, text: string, parseSpecial = false): GrammarProbeResult {
  const { fn, koffi } = model.lib;
  const sampler = fn.llama_sampler_init_grammar!(model.vocab, gbnf, root);
  if (sampler === null) return { compiles: false, accepts: false, acceptedPrefix: "" };
  const cell = koffi.alloc("llama_token_data", 1);
  try {
    // A one-candidate array per token: the grammar sets a refused token's logit to -infinity.
    const allowed = (token: number): boolean => {
      koffi.encode(cell, "llama_token_data", { id: token, logit: 0, p: 0 });
      fn.llama_sampler_apply!(sampler, { data: cell, size: 1, selected: -1, sorted: false });
      return (koffi.decode(cell, "llama_token_data") as { logit: number }).logit !== -Infinity;
    };
    const tokens = model.tokenize(text, { parseSpecial });
    for (let index = 0; index < tokens.length; index++) {
      if (!allowed(tokens[index]!)) return { compiles: true, accepts: false, acceptedPrefix: model.detokenize(tokens.subarray(0, index), true) };
      fn.llama_sampler_accept!(sampler, tokens[index]!);
    }
    const end = model.eos >= 0 ? model.eos : model.eogTokens()[0];
    if (end === undefined) throw new EngineError("The vocabulary has no end-of-generation token to probe a grammar's end with");
    return { compiles: true, accepts: allowed(end), acceptedPrefix: text };
  } finally {
    koffi.free(cell);
    fn.llama_sampler_free!(sampler);
  }
}
