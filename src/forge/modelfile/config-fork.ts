import { readFileSync } from "node:fs";
import { digestOfBytes, type Digest } from "../../core/digest.js";
import { InvalidRequestError, ModelNotFoundError } from "../../core/errors.js";
import { MODEL_CONFIG_CARD_KEY, modelConfigOf, type ModelConfig, type ModelParameterValue } from "../../core/model-config.js";
import { formatModelName, parseModelName } from "../../store/model-ref.js";
import type { ImportResult, ModelStore } from "../../store/model-store.js";
import type { LineageEdge, ModelRecord, Recipe } from "../../store/registry.js";
import { isIgnoredParameter, parseParameterValue } from "./modelfile-parameters.js";
import { formatModelfile, mergeModelConfig } from "./modelfile.js";

/** The recipe tool of config forks: `grove create NAME -f Modelfile` and Ollama's `/api/create`. */
export const MODELFILE_TOOL = "grove create";

const GROVE_VERSION = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** What {@link createConfigFork} needs. */
export interface CreateConfigForkOptions {
  /** The model the fork starts from (already in the store: resolved, imported or pulled). */
  readonly parent: Digest;
  /** The fork's own instructions; a parent that is a config fork gives the rest (Ollama's inheritance). */
  readonly config: ModelConfig;
  /** The name to point at it (`family:tag`). */
  readonly name?: string;
}

/** What {@link createConfigFork} did. */
export interface CreateConfigForkResult extends ImportResult {
  /** The defaults in force: the parent's, overridden by the fork's own. */
  readonly config: ModelConfig;
  /** Sentences about parameters kept without effect in Grove. */
  readonly warnings: readonly string[];
}

/** JSON with sorted keys, so that one config always hashes to one digest. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A config fork's digest: sha256 of its parent's digest and its config, canonical — as Ollama
 * names a model by its manifest, not its weights. Same parent and defaults, same digest: a
 * rebuild from the recipe gives the fork back.
 */
export function configForkDigest(parent: Digest, config: ModelConfig): Digest {
  return digestOfBytes(Buffer.from(canonicalJson({ grove_config: 1, parent, config }), "utf8"));
}

/**
 * Records a `config` fork: the parent's weights (no new blob; `ModelStore.weightsOf` leads to
 * them) with new defaults, kept in the card under `grove.config` where the serving catalog reads
 * them. The recipe is the fork's own instructions on its parent, so `grove build` makes it again.
 * @throws ModelNotFoundError when the parent is not in the store
 * @throws InvalidRequestError for a `num_ctx` past the weights' training context
 */
export async function createConfigFork(store: ModelStore, options: CreateConfigForkOptions): Promise<CreateConfigForkResult> {
  const name = options.name === undefined ? undefined : formatModelName(parseModelName(options.name));
  const parent = await store.model(options.parent);
  if (parent === undefined) throw new ModelNotFoundError(options.parent);
  const config = mergeModelConfig(modelConfigOf(parent.card), options.config);
  const numCtx = config.parameters?.["num_ctx"];
  if (typeof numCtx === "number" && parent.contextLength > 0 && numCtx > parent.contextLength) {
    throw new InvalidRequestError(`num_ctx ${numCtx} is above the model's training context of ${parent.contextLength} tokens`, { param: "parameters.num_ctx" });
  }
  const digest = configForkDigest(parent.digest, config);
  const { [MODEL_CONFIG_CARD_KEY]: _inherited, ...card } = parent.card;
  const record: ModelRecord = {
    ...parent,
    digest,
    ...(config.license === undefined ? {} : { license: config.license[0]!.split("\n")[0]!.slice(0, 200) }),
    card: { ...card, [MODEL_CONFIG_CARD_KEY]: config },
    createdAt: new Date().toISOString(),
  };
  const recipe: Recipe = { tool: MODELFILE_TOOL, toolVersion: GROVE_VERSION, parameters: { ...options.config }, inputs: [parent.digest] };
  const edge: LineageEdge = { child: digest, parent: parent.digest, relation: "config", recipe };
  const created = await store.addRecord(record, { ...(name === undefined ? {} : { name }), edges: [edge] });
  const model = (await store.model(digest)) ?? record;
  const warnings = Object.keys(options.config.parameters ?? {})
    .filter(isIgnoredParameter)
    .map((parameter) => `parameter ${parameter} is kept but changes nothing in Grove (set at load: --threads, --ctx-size, --parallel)`);
  return { model, ...(name === undefined ? {} : { name }), parents: [edge], created, blobCreated: false, config, warnings };
}

/** The fields of a config as JSON gives them (`/api/create`, a recipe's parameters). */
export interface ModelConfigFields {
  readonly system?: unknown;
  readonly template?: unknown;
  readonly license?: unknown;
  readonly parameters?: unknown;
  readonly messages?: unknown;
}

/**
 * A {@link ModelConfig} from JSON fields, each checked as a Modelfile line is: parameters by
 * Ollama's names and types (a number or its text), messages with Ollama's three roles.
 * @throws InvalidRequestError naming the field
 */
export function modelConfigFromFields(fields: ModelConfigFields): ModelConfig {
  const text = (value: unknown, field: string): string => {
    if (typeof value !== "string" || value.length > 1_000_000) throw new InvalidRequestError(`${field} must be a string`, { param: field });
    return value;
  };
  const config: { -readonly [K in keyof ModelConfig]: ModelConfig[K] } = {};
  if (fields.system !== undefined) config.system = text(fields.system, "system");
  if (fields.template !== undefined) config.template = text(fields.template, "template");
  if (fields.license !== undefined) config.license = (Array.isArray(fields.license) ? fields.license : [fields.license]).map((item) => text(item, "license"));
  if (fields.parameters !== undefined) {
    if (fields.parameters === null || typeof fields.parameters !== "object" || Array.isArray(fields.parameters)) throw new InvalidRequestError("parameters must be an object", { param: "parameters" });
    const parameters: Record<string, ModelParameterValue> = {};
    for (const [name, value] of Object.entries(fields.parameters)) parameters[name] = parseParameterValue(name, value, "");
    if (Object.keys(parameters).length > 0) config.parameters = parameters;
  }
  if (fields.messages !== undefined) {
    if (!Array.isArray(fields.messages)) throw new InvalidRequestError("messages must be a list of {role, content}", { param: "messages" });
    config.messages = fields.messages.map((message: unknown, index) => {
      const { role, content } = (message ?? {}) as { role?: unknown; content?: unknown };
      if (role !== "system" && role !== "user" && role !== "assistant") throw new InvalidRequestError('message role must be one of "system", "user", or "assistant"', { param: `messages[${index}].role` });
      return { role, content: text(content, `messages[${index}].content`) };
    });
  }
  return config;
}

/**
 * A Modelfile that builds the model again (`grove show --modelfile`, `/api/show`'s `modelfile`):
 * for a config fork, FROM its parent (a name when it has one, else its digest) and the defaults in
 * force; for any other model, FROM the model itself.
 */
export async function modelfileOf(store: ModelStore, digest: Digest): Promise<string> {
  const model = await store.model(digest);
  if (model === undefined) throw new ModelNotFoundError(digest);
  const config = modelConfigOf(model.card);
  const edge = (await store.parentsOf(digest)).find((parent) => parent.relation === "config");
  const from = config !== undefined && edge !== undefined ? edge.parent : digest;
  const fromName = (await store.namesOf(from))[0] ?? from;
  const names = await store.namesOf(digest);
  const header = [`Modelfile generated by Grove for ${names[0] ?? digest}`, `build it with: grove create NAME -f Modelfile`];
  return formatModelfile(fromName, config ?? {}, header);
}
