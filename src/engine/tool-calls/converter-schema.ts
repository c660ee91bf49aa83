/**
 * Tools' JSON schemas in the dialect node-llama-cpp's converter reads. The converter knows `type`,
 * `properties`, `items`, `const`, `enum`, `oneOf`, `$ref` into `$defs` and a few string formats;
 * a schema without a `type` would come out as `null`. Everything else is translated here: `anyOf`
 * becomes `oneOf`, a schema that says nothing becomes any JSON value, `definitions` becomes `$defs`.
 * Its objects require every property in order, so optional properties of a tool's top-level
 * arguments are handled by the tool-call grammar itself (see `argumentsObject`).
 */
import type { JsonSchema } from "./tool-call-types.js";

type Schema = Record<string, unknown>;

const SCALAR_TYPES = ["string", "number", "boolean", "null"];
const STRING_FORMATS = new Set(["date", "time", "date-time"]);
const MAX_DEPTH = 64;

/** Any JSON value. */
export const ANY_JSON: Schema = {
  oneOf: [{ type: SCALAR_TYPES }, { type: "object", additionalProperties: true }, { type: "array", items: { oneOf: [{ type: SCALAR_TYPES }, { type: "object", additionalProperties: true }] } }],
};

/** `schema` for node-llama-cpp's converter. */
export function toConverterSchema(schema: unknown, depth = 0): Schema {
  if (depth > MAX_DEPTH || schema === null || typeof schema !== "object" || Array.isArray(schema)) return ANY_JSON;
  const source = schema as Schema;
  const defs = (source.$defs ?? source.definitions) as Record<string, unknown> | undefined;
  const withDefs = (out: Schema): Schema => {
    if (defs === undefined || typeof defs !== "object") return out;
    return { ...out, $defs: Object.fromEntries(Object.entries(defs).map(([name, def]) => [name, toConverterSchema(def, depth + 1)])) };
  };
  if (typeof source.$ref === "string") return withDefs({ $ref: source.$ref.replace(/^#\/definitions\//, "#/$defs/") });
  if (source.const !== undefined) return { const: source.const };
  if (Array.isArray(source.enum)) return { enum: source.enum };
  const alternatives = (source.oneOf ?? source.anyOf) as unknown[] | undefined;
  if (Array.isArray(alternatives) && alternatives.length > 0) return withDefs({ oneOf: alternatives.map((entry) => toConverterSchema(entry, depth + 1)) });
  if (Array.isArray(source.allOf) && source.allOf.length > 0) return withDefs(toConverterSchema(mergeAll(source.allOf as unknown[]), depth + 1));
  const type = source.type ?? (source.properties !== undefined ? "object" : source.items !== undefined ? "array" : undefined);
  if (Array.isArray(type)) {
    if (type.every((entry) => entry === "integer" || (typeof entry === "string" && SCALAR_TYPES.includes(entry)))) return { type };
    return withDefs({ oneOf: type.map((entry) => toConverterSchema({ ...source, type: entry }, depth + 1)) });
  }
  switch (type) {
    case "object":
      return withDefs(objectSchema(source, depth));
    case "array":
      return withDefs(arraySchema(source, depth));
    case "string": {
      const out: Schema = { type: "string" };
      if (typeof source.format === "string" && STRING_FORMATS.has(source.format)) out.format = source.format;
      if (typeof source.minLength === "number") out.minLength = source.minLength;
      if (typeof source.maxLength === "number") out.maxLength = source.maxLength;
      return out;
    }
    case "number":
    case "integer":
    case "boolean":
    case "null":
      return { type };
    default:
      return ANY_JSON;
  }
}

function objectSchema(source: Schema, depth: number): Schema {
  const properties = (source.properties ?? {}) as Record<string, unknown>;
  const entries = Object.entries(properties);
  const out: Schema = { type: "object", properties: Object.fromEntries(entries.map(([key, value]) => [key, toConverterSchema(value, depth + 1)])) };
  const extra = source.additionalProperties;
  if (entries.length === 0 && extra !== false) out.additionalProperties = extra === undefined || extra === true ? true : toConverterSchema(extra, depth + 1);
  else if (extra !== undefined && extra !== false && extra !== true) out.additionalProperties = toConverterSchema(extra, depth + 1);
  return out;
}

function arraySchema(source: Schema, depth: number): Schema {
  const out: Schema = { type: "array", items: source.items === undefined ? ANY_JSON : toConverterSchema(source.items, depth + 1) };
  if (Array.isArray(source.prefixItems)) out.prefixItems = source.prefixItems.map((entry) => toConverterSchema(entry, depth + 1));
  if (typeof source.minItems === "number") out.minItems = source.minItems;
  if (typeof source.maxItems === "number") out.maxItems = source.maxItems;
  return out;
}

/** `allOf` as one schema: properties and required lists joined, other keys from the first that has them. */
function mergeAll(schemas: readonly unknown[]): Schema {
  const merged: Schema = {};
  const properties: Record<string, unknown> = {};
  const required = new Set<string>();
  for (const entry of schemas) {
    if (entry === null || typeof entry !== "object") continue;
    const schema = entry as Schema;
    Object.assign(properties, schema.properties ?? {});
    for (const key of (schema.required ?? []) as string[]) required.add(key);
    for (const [key, value] of Object.entries(schema)) if (!(key in merged)) merged[key] = value;
  }
  if (Object.keys(properties).length > 0) merged.properties = properties;
  if (required.size > 0) merged.required = [...required];
  return merged;
}

/** A tool's top-level arguments: its properties (each in the converter's dialect), and which are required. */
export interface ArgumentsShape {
  readonly properties: readonly { readonly key: string; readonly schema: Schema; readonly required: boolean }[];
}

/**
 * The arguments object of a tool whose `parameters` is an object schema with properties, or
 * undefined (then the whole schema goes to the converter). Without a `required` list every
 * property is required: tool authors who leave it out nearly always mean all.
 */
export function argumentsShape(parameters: JsonSchema | undefined): ArgumentsShape | undefined {
  if (parameters === undefined) return undefined;
  const type = parameters.type ?? (parameters.properties !== undefined ? "object" : undefined);
  const properties = parameters.properties as Record<string, unknown> | undefined;
  if (type !== "object" || properties === undefined || Object.keys(properties).length === 0 || parameters.$defs !== undefined || parameters.definitions !== undefined) return undefined;
  const required = Array.isArray(parameters.required) ? new Set(parameters.required as string[]) : undefined;
  return {
    properties: Object.entries(properties).map(([key, schema]) => ({ key, schema: toConverterSchema(schema), required: required === undefined || required.has(key) })),
  };
}
