import type { Digest } from "../core/digest.js";
import { ConflictError } from "../core/errors.js";
import { formatModelName, parseModelName } from "./model-ref.js";
import type { Registry } from "./registry.js";

/** What {@link nameForImport} reads to name a model. */
export interface ImportNaming {
  readonly digest: Digest;
  /** Its parents, first parent first. */
  readonly parents: readonly Digest[];
  readonly relation?: string | undefined;
  /** The file's type (`Q8_0`, `F16`), the suffix of a quantized fork. */
  readonly quantization?: string | undefined;
  /** The name to try first (a pull's `owner/repo:latest`). */
  readonly preferred?: string | undefined;
  /** The file's name, the last resort (`TinyLlama-1.1B.Q8_0.gguf` → `tinyllama-1.1b.q8_0:latest`). */
  readonly fileName: string;
}

/**
 * A name for a model entering the store without one, so that no model is ever nameless (`ls` shows
 * `-`, `plan` a digest otherwise). In order: a name the model already has; `preferred`; the first
 * parent's name with a suffix on its tag for the relation (`tiny:f16` → `tiny:f16-q8_0` for a
 * quantized fork, `-ft` fine-tune, `-lora` adapter, `-merge` merge); the file's name with tag
 * `latest`. `-2`, `-3`… is appended while a name is taken by another model or an alias. Call it
 * inside the transaction that sets the name, so two imports cannot take the same one.
 */
export async function nameForImport(registry: Registry, naming: ImportNaming): Promise<string> {
  const existing = await registry.namesOf(naming.digest);
  if (existing.length > 0) return existing[0]!;
  const candidates: { family: string; tag: string }[] = [];
  const tryName = (text: string | undefined) => {
    if (text === undefined) return;
    try {
      candidates.push(parseModelName(text));
    } catch {
      // not a valid name (too long, odd characters): the next candidate
    }
  };
  tryName(naming.preferred);
  const parentName = naming.parents.length === 0 ? undefined : (await registry.namesOf(naming.parents[0]!))[0];
  if (parentName !== undefined) {
    const parent = parseModelName(parentName);
    const suffix = naming.relation === "quantized" ? (naming.quantization ?? "quantized") : naming.relation === "finetune" ? "ft" : naming.relation === "adapter" ? "lora" : (naming.relation ?? "fork");
    tryName(`${parent.family}:${`${parent.tag}-${slug(suffix)}`.slice(0, 56)}`);
  }
  const file = slug(naming.fileName.replace(/^.*[/\\]/, "").replace(/\.gguf$/i, "")).slice(0, 56);
  tryName(`${file === "" ? "model" : file}:latest`);
  tryName(`model:${naming.digest.slice(7, 19)}`);
  for (const candidate of candidates) {
    for (let index = 1; index < 100; index++) {
      const name = formatModelName({ family: candidate.family, tag: index === 1 ? candidate.tag : `${candidate.tag}-${index}` });
      const taken = (await registry.getNameTarget(name)) ?? ((await registry.getAlias(name)) === undefined ? undefined : "alias");
      if (taken === undefined || taken === naming.digest) return name;
    }
  }
  throw new ConflictError(`No free name for ${naming.digest}: give one with --name`);
}

/** Lower case, runs of characters outside [a-z0-9._-] as one `-`, no separator at either end. */
function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[-._]+|[-._]+$/g, "");
}
