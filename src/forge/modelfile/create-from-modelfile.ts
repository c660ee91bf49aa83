import { stat } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { homedir } from "node:os";
import type { Digest } from "../../core/digest.js";
import { GroveError, InvalidRequestError, ModelNotFoundError } from "../../core/errors.js";
import type { ModelConfig } from "../../core/model-config.js";
import type { ModelStore } from "../../store/model-store.js";
import { createConfigFork, type CreateConfigForkResult } from "./config-fork.js";

/** What a config fork is made from: Modelfile lines or `/api/create`'s fields, parsed. */
export interface ConfigForkRequest {
  /** FROM: a store name or digest, a GGUF path (when `files` is allowed), or `hf:OWNER/REPO…`. */
  readonly from: string;
  /** The line of FROM, for errors (Modelfiles). */
  readonly fromLine?: number;
  /** ADAPTER paths (when `files` is allowed). */
  readonly adapters?: readonly { readonly path: string; readonly line?: number }[];
  readonly config: ModelConfig;
  readonly name: string;
}

/** How FROM and ADAPTER reach outside the store. */
export interface ConfigForkSources {
  /**
   * Whether FROM and ADAPTER may name files, resolved against this directory (the Modelfile's, as
   * Ollama does); absent over HTTP, where no request names a server path.
   */
  readonly directory?: string;
  /** Pulls an `hf:` reference into the store; absent: `hf:` is refused. */
  readonly pull?: (ref: string) => Promise<Digest>;
  /** Told of each step, for progress lines (`importing ./model.gguf`). */
  readonly onStatus?: (status: string) => void;
}

const at = (line: number | undefined) => (line === undefined ? "" : `Modelfile line ${line}: `);

/** `~/x`, absolute, or relative to `directory` (Ollama's `expandPath`, without other users' homes). */
function expandPath(path: string, directory: string): string {
  if (path === "~" || path.startsWith("~/")) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(directory, path);
}

const isFile = async (path: string) => (await stat(path).catch(() => undefined))?.isFile() === true;

/**
 * Makes the fork a Modelfile (or `/api/create`) asks for: FROM resolved — an `hf:` reference
 * pulled, an existing file imported (as Ollama reads FROM as a path when the file exists), else a
 * store name — an ADAPTER imported as an `adapter` fork of it, and the config fork on top.
 * @throws InvalidRequestError naming the line, or ModelNotFoundError for an unknown FROM model
 */
export async function createFromModelfile(store: ModelStore, request: ConfigForkRequest, sources: ConfigForkSources = {}): Promise<CreateConfigForkResult> {
  const where = at(request.fromLine);
  let parent: Digest;
  const fromPath = sources.directory === undefined ? undefined : expandPath(request.from, sources.directory);
  if (request.from.startsWith("hf:")) {
    if (sources.pull === undefined) throw new InvalidRequestError(`${where}FROM ${request.from}: pulling from a hub is not available here`, { param: "from" });
    sources.onStatus?.(`pulling ${request.from}`);
    parent = await sources.pull(request.from);
  } else if (fromPath !== undefined && (await isFile(fromPath))) {
    sources.onStatus?.(`importing ${request.from}`);
    parent = (await store.importFile(fromPath)).model.digest;
  } else {
    try {
      parent = (await store.resolve(request.from)).digest;
    } catch (error) {
      if (error instanceof ModelNotFoundError || (error instanceof GroveError && error.code.startsWith("invalid"))) {
        const hint = sources.directory === undefined ? "a model of the store" : "a model of the store, a GGUF file or an hf: reference";
        if (request.fromLine === undefined) throw new ModelNotFoundError(request.from, { cause: error, param: "from" });
        throw new InvalidRequestError(`${where}FROM ${request.from}: no such model (FROM names ${hint})`, { cause: error, param: "from" });
      }
      throw error;
    }
  }
  const adapters = request.adapters ?? [];
  if (adapters.length > 1) throw new InvalidRequestError(`${at(adapters[1]!.line)}one ADAPTER per model: merge adapters first (grove merge --adapter)`, { param: "adapters" });
  for (const adapter of adapters) {
    if (sources.directory === undefined) throw new InvalidRequestError(`${at(adapter.line)}ADAPTER names a file, which a request over HTTP cannot`, { param: "adapters" });
    const path = expandPath(adapter.path, sources.directory);
    if (!(await isFile(path))) throw new InvalidRequestError(`${at(adapter.line)}ADAPTER ${adapter.path}: no such file`, { param: "adapters" });
    sources.onStatus?.(`importing adapter ${adapter.path}`);
    parent = (await store.importFile(path, { base: parent, relation: "adapter" })).model.digest;
  }
  sources.onStatus?.("writing manifest");
  return createConfigFork(store, { parent, config: request.config, name: request.name });
}
