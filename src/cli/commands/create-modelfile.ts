import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { loadConfig } from "../../config/config.js";
import { InvalidRequestError } from "../../core/errors.js";
import { createFromModelfile } from "../../forge/modelfile/create-from-modelfile.js";
import type { CreateConfigForkResult } from "../../forge/modelfile/config-fork.js";
import { parseModelfile } from "../../forge/modelfile/modelfile.js";
import { HubClient } from "../../store/hub/hub-client.js";
import { parseHubRef } from "../../store/hub/hub-ref.js";
import { importPulledModel } from "../../store/hub/import-pulled.js";
import { pullModel } from "../../store/hub/pull-model.js";
import { formatModelName, parseModelName } from "../../store/model-ref.js";
import { withStore } from "./store-commands.js";

/** The flags of `grove create NAME -f FILE`. */
export interface CreateModelfileFlags {
  file?: string;
  home?: string;
  database?: string;
  endpoint?: string;
}

/** A Modelfile past this is refused before it is read whole. */
const MAX_MODELFILE_BYTES = 4 * 1024 * 1024;

/**
 * `grove create NAME -f Modelfile` (Ollama's): parses the Modelfile (errors name the line), resolves
 * FROM (store name, GGUF file beside the Modelfile, or `hf:` pulled from the hub), imports an
 * ADAPTER as an adapter fork, and records the config fork under NAME.
 */
export async function runCreateFromModelfile(name: string, flags: CreateModelfileFlags): Promise<CreateConfigForkResult> {
  const storeName = formatModelName(parseModelName(name));
  const path = resolve(flags.file ?? "Modelfile");
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) {
    throw new InvalidRequestError(`${path} is not a file${flags.file === undefined ? ": name the Modelfile with -f FILE (the default is ./Modelfile)" : ""}`, { param: "--file" });
  }
  if (info.size > MAX_MODELFILE_BYTES) throw new InvalidRequestError(`${path} is ${info.size} bytes; a Modelfile holds at most ${MAX_MODELFILE_BYTES}`, { param: "--file" });
  const spec = parseModelfile(await readFile(path, "utf8"));
  for (const warning of spec.warnings) process.stderr.write(`warning: ${warning}\n`);
  const config = loadConfig({ flags: { home: flags.home, database: flags.database, hubEndpoint: flags.endpoint } });
  return withStore(flags, async (store) => {
    const result = await createFromModelfile(
      store,
      { from: spec.from, fromLine: spec.fromLine, adapters: spec.adapters, config: spec.config, name: storeName },
      {
        directory: dirname(path),
        pull: async (ref) => {
          const client = new HubClient({ endpoint: config.hubEndpoint, token: config.hubToken === "" ? undefined : config.hubToken });
          const pulled = await pullModel({
            ref: parseHubRef(ref),
            client,
            partialDirectory: store.blobs.tempDirectory,
            isAlreadyStored: async (sha256) => (await store.model(`sha256:${sha256}`)) !== undefined,
          });
          return (await importPulledModel(store, pulled, undefined)).result.model.digest;
        },
        onStatus: (status) => process.stderr.write(`${status}\n`),
      },
    );
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    return result;
  });
}
