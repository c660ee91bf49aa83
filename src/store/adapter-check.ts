import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { isDigest, type Digest } from "../core/digest.js";
import { InvalidRequestError } from "../core/errors.js";
import { readGgufHeader } from "../gguf/gguf-header-reader.js";
import { GgufMetadataReader } from "../gguf/gguf-metadata-reader.js";
import { validateGgufHeader, type GgufSummary, type ValidatedTensor } from "../gguf/gguf-validator.js";
import { quoteUntrusted } from "./model-ref.js";
import type { Recipe, Relation } from "./registry.js";

const GROVE_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The metadata key where Grove records the digest of the base an adapter was made for. */
export const ADAPTER_BASE_DIGEST_KEY = "grove.adapter.base_digest";

/** The base an adapter is checked against. */
export interface AdapterBase {
  /** The base's GGUF file (in the store, its blob). */
  path: string;
  digest: Digest;
  /** How the user named it, for messages. @default the digest */
  label?: string;
}

/** What {@link checkAdapter} found in an adapter that fits its base. */
export interface AdapterCheckResult {
  /** `general.architecture`, equal to the base's. */
  architecture: string;
  /** `adapter.lora.alpha`; llama.cpp scales B·A by alpha / rank (0 or absent: by 1). */
  alpha: number;
  /** The rank r of the pairs (the largest, should they differ). */
  rank: number;
  /** Number of lora_a/lora_b pairs. */
  pairs: number;
  /** The base digest recorded in the adapter, when it has one (it then equals the base's). */
  recordedBaseDigest?: Digest;
}

/**
 * True when the file's header says `general.type = adapter`. Best effort: an unreadable file
 * is "not an adapter" here and is refused later by the validator with the real reason.
 */
export async function isAdapterFile(path: string): Promise<boolean> {
  try {
    const entry = (await readGgufHeader(path)).metadata.get("general.type");
    return entry?.value === "adapter";
  } catch {
    return false;
  }
}

/**
 * Checks that a LoRA adapter GGUF loads onto a base the way llama.cpp's
 * `llama_adapter_lora_init` checks it, but from the headers alone and with messages naming the
 * tensor and both shapes: `general.type = adapter`, `adapter.type = lora`, the base's
 * architecture, every tensor a `.lora_a`/`.lora_b` (or an ignored `_norm.weight`), every pair
 * complete and matching a base tensor (`base [n_in, n_out]`, `lora_a [n_in, r]`,
 * `lora_b [r, n_out]`; for `token_embd` A and B are swapped), and a base digest recorded in the
 * adapter (Grove's {@link ADAPTER_BASE_DIGEST_KEY}) equal to the base's.
 *
 * @throws InvalidRequestError (param `relation`) when the file is not an adapter, (param `base`)
 *   when the base is itself an adapter or the adapter does not fit it
 * @throws InvalidModelFileError when the adapter's header is malformed or not a LoRA
 */
export async function checkAdapter(adapterPath: string, base: AdapterBase): Promise<AdapterCheckResult> {
  const file = basename(adapterPath);
  const header = await readGgufHeader(adapterPath);
  const adapter = validateGgufHeader(header);
  const metadata = GgufMetadataReader.fromHeader(header);
  if (adapter.summary.adapterType === undefined) {
    throw new InvalidRequestError(`${file} is not an adapter (its general.type is not 'adapter'); only a LoRA adapter GGUF can be an 'adapter' fork`, { param: "relation" });
  }
  if (adapter.summary.adapterType !== "lora") metadata.fail(`adapter.type is ${quoteUntrusted(adapter.summary.adapterType)}; only 'lora' adapters are supported`);
  const alpha = metadata.float32("adapter.lora.alpha") ?? 0;
  const baseLabel = base.label ?? base.digest;
  const baseModel = validateGgufHeader(await readGgufHeader(base.path));
  const mismatch = (problem: string): never => {
    throw new InvalidRequestError(`The adapter ${file} does not fit the base ${baseLabel}: ${problem}`, { param: "base" });
  };
  if (baseModel.summary.adapterType !== undefined) mismatch("the base is itself an adapter");
  if (adapter.summary.architecture !== baseModel.summary.architecture) {
    mismatch(`the adapter is for architecture ${quoteUntrusted(adapter.summary.architecture)}, the base is ${quoteUntrusted(baseModel.summary.architecture)}`);
  }
  const recorded = metadata.string(ADAPTER_BASE_DIGEST_KEY);
  if (recorded !== undefined) {
    if (!isDigest(recorded)) metadata.fail(`${ADAPTER_BASE_DIGEST_KEY} ${quoteUntrusted(recorded)} is not a digest`);
    if (recorded !== base.digest) mismatch(`the adapter was made for ${recorded}, the base is ${base.digest}`);
  }
  const pairs = pairTensors(adapter.layout.tensors, metadata);
  if (pairs.size === 0) metadata.fail("the adapter has no lora_a/lora_b tensor pairs");
  let rank = 0;
  for (const [name, { a, b }] of pairs) {
    const target = baseModel.layout.tensors.get(name);
    if (target === undefined) mismatch(`tensor ${quoteUntrusted(name)} does not exist in the base`);
    rank = Math.max(rank, checkPairShape(name, a, b, target!, mismatch));
  }
  return { architecture: adapter.summary.architecture, alpha, rank, pairs: pairs.size, ...(recorded === undefined ? {} : { recordedBaseDigest: recorded as Digest }) };
}

/**
 * The import rule for adapters: an adapter file must be an `adapter` fork and the reverse, and an
 * adapter fork must fit its one base ({@link checkAdapter}). Returns the base and what the check
 * found for an adapter fork, `undefined` for anything else.
 * @throws InvalidRequestError naming the file: an adapter without a base or with another relation
 */
export async function checkAdapterImport(
  path: string,
  summary: GgufSummary,
  relation: Relation | undefined,
  base: AdapterBase | undefined,
): Promise<{ base: AdapterBase; result: AdapterCheckResult } | undefined> {
  const file = basename(path);
  if (summary.adapterType !== undefined && (relation === undefined || base === undefined)) {
    throw new InvalidRequestError(`${file} is a LoRA adapter, not a model: import it with the base it adapts (--base REF)`, { param: "base" });
  }
  if (summary.adapterType !== undefined && relation !== "adapter") {
    throw new InvalidRequestError(`${file} is a LoRA adapter; its relation to the base must be 'adapter', not '${relation}'`, { param: "relation" });
  }
  if (relation !== "adapter" || base === undefined) return undefined; // an adapter relation has exactly one base (checkImportOptions)
  return { base, result: await checkAdapter(path, base) };
}

/** The recipe of an adapter import: the adapter was made elsewhere, so it records what it applies to. */
export function adapterRecipe(result: AdapterCheckResult, base: Digest): Recipe {
  return {
    tool: "grove import",
    toolVersion: GROVE_VERSION,
    parameters: { adapterType: "lora", rank: result.rank, alpha: result.alpha, pairs: result.pairs },
    inputs: [base],
  };
}

/** Groups `X.lora_a` and `X.lora_b` by `X`, as llama.cpp does; `_norm.weight` tensors are ignored there too. */
function pairTensors(tensors: Map<string, ValidatedTensor>, metadata: GgufMetadataReader): Map<string, { a: ValidatedTensor; b: ValidatedTensor }> {
  const halves = new Map<string, { a?: ValidatedTensor; b?: ValidatedTensor }>();
  for (const [name, tensor] of tensors) {
    const suffix = name.endsWith(".lora_a") ? "a" : name.endsWith(".lora_b") ? "b" : undefined;
    if (suffix === undefined) {
      if (name.endsWith("_norm.weight")) continue;
      metadata.fail(`tensor ${quoteUntrusted(name)} is neither a .lora_a nor a .lora_b`);
    }
    const target = name.slice(0, -".lora_a".length);
    halves.set(target, { ...halves.get(target), [suffix!]: tensor });
  }
  const pairs = new Map<string, { a: ValidatedTensor; b: ValidatedTensor }>();
  for (const [name, { a, b }] of halves) {
    if (a === undefined || b === undefined) metadata.fail(`tensor ${quoteUntrusted(name)} has a ${a === undefined ? "lora_b without its lora_a" : "lora_a without its lora_b"}`);
    pairs.set(name, { a: a!, b: b! });
  }
  return pairs;
}

/** llama.cpp's shape rules; returns the rank. */
function checkPairShape(name: string, a: ValidatedTensor, b: ValidatedTensor, base: ValidatedTensor, mismatch: (problem: string) => never): number {
  const shapes = `base [${base.shape.join(", ")}], lora_a [${a.shape.join(", ")}], lora_b [${b.shape.join(", ")}]`;
  if (a.shape.length !== 2 || b.shape.length !== 2 || base.shape.length !== 2) mismatch(`tensor ${quoteUntrusted(name)} is not a matrix pair: ${shapes}`);
  const [aInner, aOuter] = a.shape as [number, number];
  const [bInner, bOuter] = b.shape as [number, number];
  const [inputs, outputs] = base.shape as [number, number];
  if (name.endsWith("token_embd.weight")) {
    // The embedding lookup swaps the roles of A and B (llama.cpp's llm_build_inp_embd).
    if (inputs !== bOuter || outputs !== aOuter) mismatch(`tensor ${quoteUntrusted(name)} has shapes ${shapes}; expected lora_b [r, ${inputs}] and lora_a [r, ${outputs}]`);
    return aInner;
  }
  if (inputs !== aInner || outputs !== bOuter) mismatch(`tensor ${quoteUntrusted(name)} has shapes ${shapes}; expected lora_a [${inputs}, r] and lora_b [r, ${outputs}]`);
  if (aOuter !== bInner) mismatch(`tensor ${quoteUntrusted(name)} has lora_a [${aInner}, ${aOuter}] and lora_b [${bInner}, ${bOuter}]: their ranks differ`);
  return aOuter;
}
