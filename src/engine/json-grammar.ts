import type { Llama, LlamaGrammar } from "node-llama-cpp";

/** A compiled JSON constraint plus how generation must end under it. */
export interface JsonGrammar {
  readonly grammar: LlamaGrammar;
  /** Stop strings the grammar relies on (node-llama-cpp's schema grammars end in four newlines). */
  readonly stop: readonly string[];
  /** Drop trailing whitespace from the output. */
  readonly trimTrailingWhitespace: boolean;
}

const SCHEMA_EXPONENT = '([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?';
const JSON_EXPONENT = "([eE] [-+]? [0-9] [1-9]{0,15})?";
const BOUNDED_EXPONENT = "([eE] [-+]? [0-9]{1,2})?";

/**
 * node-llama-cpp's number rules allow 16-digit exponents, so a sampled "integer" such as
 * `23e6620279710861292` is valid grammar but parses to Infinity. Integers lose the exponent;
 * other numbers keep one of at most two digits, which every JSON parser reads as finite.
 */
export function boundNumberRules(gbnf: string): string {
  return gbnf
    .split("\n")
    .map((line) => {
      if (line.startsWith("integer-number-rule ::=")) return line.replace(SCHEMA_EXPONENT, "");
      return line.replace(SCHEMA_EXPONENT, BOUNDED_EXPONENT).replace(JSON_EXPONENT, BOUNDED_EXPONENT);
    })
    .join("\n");
}

/** Compiles a JSON schema (or `"json"`: any JSON object) into a grammar llama.cpp samples with. */
export async function createJsonGrammar(llama: Llama, json: object | "json"): Promise<JsonGrammar> {
  const original =
    json === "json" ? await llama.getGrammarFor("json") : await llama.createGrammarForJsonSchema(json as never);
  const stop = original.stopGenerationTriggers.map((trigger) =>
    typeof trigger === "string" ? trigger : Array.isArray(trigger) ? trigger.join("") : String(trigger),
  );
  const grammar = await llama.createGrammar({
    grammar: boundNumberRules(original.grammar),
    rootRuleName: original.rootRuleName,
    stopGenerationTriggers: original.stopGenerationTriggers,
    trimWhitespaceSuffix: original.trimWhitespaceSuffix,
  });
  return { grammar, stop, trimTrailingWhitespace: original.trimWhitespaceSuffix };
}
