import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/** A JSON constraint as GBNF, plus how generation must end under it. */
export interface JsonGrammar {
  readonly gbnf: string;
  readonly root: string;
  /** Stop strings the grammar relies on (node-llama-cpp's JSON grammars end in four newlines). */
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

/** node-llama-cpp's package folder: its JSON-schema-to-GBNF converter and grammar files are reused, not its runtime. */
const PACKAGE_DIST = dirname(createRequire(import.meta.url).resolve("node-llama-cpp"));

type SchemaConverter = (schema: unknown) => string;
let converter: Promise<SchemaConverter> | undefined;
let anyJson: Promise<string> | undefined;

/**
 * The schema with draft-4 tuples in the form node-llama-cpp's converter reads: `items: [A, B]` is
 * `prefixItems: [A, B]` with exactly those items, and a node with `items` or `prefixItems` but no
 * `type` is an array — as llama.cpp's json-schema-to-grammar reads them. Other nodes are kept.
 */
export function withTuples(schema: unknown, isSchema = true): unknown {
  if (typeof schema !== "object" || schema === null) return schema;
  if (Array.isArray(schema)) return schema.map((item) => withTuples(item, isSchema));
  const node = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    // `properties` and `$defs` map names to schemas; `const`, `enum` and `default` hold data.
    if (key === "const" || key === "enum" || key === "default" || key === "examples") out[key] = value;
    else if (isSchema && (key === "properties" || key === "$defs" || key === "definitions") && typeof value === "object" && value !== null && !Array.isArray(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, child]) => [name, withTuples(child)]));
    } else out[key] = withTuples(value);
  }
  if (!isSchema) return out;
  if (Array.isArray(node.items)) {
    out.prefixItems = out.items;
    out.maxItems = node.items.length;
    delete out.items;
  }
  if (out.type === undefined && (out.items !== undefined || out.prefixItems !== undefined)) out.type = "array";
  return out;
}

/**
 * Compiles a JSON schema (or `"json"`: any JSON object) into GBNF for llama.cpp's grammar sampler,
 * with node-llama-cpp's converter (a pure function of the schema; its package is pinned).
 * @throws Error for a schema the converter does not support
 */
export async function createJsonGrammar(json: object | "json"): Promise<JsonGrammar> {
  let gbnf: string;
  if (json === "json") {
    anyJson ??= readFile(join(PACKAGE_DIST, "..", "llama", "grammars", "json.gbnf"), "utf8");
    gbnf = await anyJson;
  } else {
    converter ??= import(pathToFileURL(join(PACKAGE_DIST, "utils", "gbnfJson", "getGbnfGrammarForGbnfJsonSchema.js")).href).then(
      (module: { getGbnfGrammarForGbnfJsonSchema: SchemaConverter }) => module.getGbnfGrammarForGbnfJsonSchema,
    );
    gbnf = (await converter)(withTuples(json));
  }
  return { gbnf: boundNumberRules(gbnf), root: "root", stop: ["\n".repeat(4)], trimTrailingWhitespace: true };
}
