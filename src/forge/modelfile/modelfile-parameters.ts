import { InvalidRequestError } from "../../core/errors.js";
import type { ModelParameterValue } from "../../core/model-config.js";

type Kind = "float" | "int" | "bool" | "string[]";

interface ParameterSpec {
  readonly kind: Kind;
  /** Bounds Grove applies (the same as the Ollama route's `options`). */
  readonly min?: number;
  readonly max?: number;
  /** Ollama knows it; Grove keeps it (to print it back) but it changes nothing here. */
  readonly ignored?: true;
  /** Grove honours only this value (its sampler has no such stage). */
  readonly only?: number;
}

/**
 * Ollama's PARAMETER names (`api.Options` and `api.Runner` in ollama/ollama `api/types.go`) with
 * their types, as `api.FormatParams` parses them. The sampling ones reach Grove's engine
 * (`generationDefaultsOf`); the runtime ones (threads, GPU layers, batch) are fixed at load in
 * Grove and kept without effect, as the Ollama route's `options` treats them.
 */
export const MODELFILE_PARAMETERS: Readonly<Record<string, ParameterSpec>> = {
  temperature: { kind: "float", min: 0, max: 2 },
  top_p: { kind: "float", min: 0, max: 1 },
  top_k: { kind: "int", min: 0, max: 1_000_000 },
  min_p: { kind: "float", min: 0, max: 1 },
  seed: { kind: "int", min: -1, max: 2 ** 32 - 1 },
  num_predict: { kind: "int", min: -2, max: 1_048_576 },
  num_ctx: { kind: "int", min: 64, max: 1_048_576 },
  stop: { kind: "string[]" },
  repeat_penalty: { kind: "float", min: 0, max: 10 },
  presence_penalty: { kind: "float", min: -2, max: 2 },
  frequency_penalty: { kind: "float", min: -2, max: 2 },
  typical_p: { kind: "float", only: 1 },
  num_keep: { kind: "int", ignored: true },
  repeat_last_n: { kind: "int", ignored: true },
  num_batch: { kind: "int", ignored: true },
  num_gpu: { kind: "int", ignored: true },
  main_gpu: { kind: "int", ignored: true },
  use_mmap: { kind: "bool", ignored: true },
  num_thread: { kind: "int", ignored: true },
  draft_num_predict: { kind: "int", ignored: true },
};

/** Parameters Ollama's parser warns about and drops (`deprecatedParameters` in parser.go). */
export const DEPRECATED_PARAMETERS: readonly string[] = ["penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta"];

/** Whether a parameter is kept but has no effect in Grove. */
export const isIgnoredParameter = (name: string): boolean => MODELFILE_PARAMETERS[name]?.ignored === true;

/**
 * One PARAMETER value from its text (a Modelfile line) or JSON (`/api/create`'s `parameters`),
 * typed and bounded. `where` prefixes the message (`Modelfile line 4: `).
 * @throws InvalidRequestError `unknown parameter 'x'` (Ollama's words) or a bad value, naming `where`
 */
export function parseParameterValue(name: string, value: unknown, where: string): ModelParameterValue {
  const spec = MODELFILE_PARAMETERS[name];
  const fail = (problem: string): never => {
    throw new InvalidRequestError(`${where}${problem}`, { param: `parameters.${name}` });
  };
  if (spec === undefined) return fail(`unknown parameter '${name}'`);
  if (spec.kind === "string[]") {
    const items = Array.isArray(value) ? value : [value];
    if (items.length === 0 || !items.every((item) => typeof item === "string" && item.length > 0 && item.length <= 512)) fail(`${name} must be a non-empty string of at most 512 characters`);
    return items as string[];
  }
  if (spec.kind === "bool") {
    if (typeof value === "boolean") return value;
    // Go's strconv.ParseBool.
    const text = String(value);
    if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
    if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
    return fail(`invalid bool value for ${name}: '${text}'`);
  }
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  const number = spec.kind === "int" ? (/^[-+]?\d+$/.test(text) ? Number(text) : Number.NaN) : /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(number)) return fail(`invalid ${spec.kind} value for ${name}: '${String(value)}'`);
  if (spec.only !== undefined && number !== spec.only) return fail(`${name} is not supported by Grove's sampler; leave it at ${spec.only}`);
  if ((spec.min !== undefined && number < spec.min) || (spec.max !== undefined && number > spec.max)) fail(`${name} must be from ${spec.min} to ${spec.max}, got ${text}`);
  return number;
}
