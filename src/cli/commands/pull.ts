import { byteProgress } from "../progress.js";
import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import { HubClient } from "../../store/hub/hub-client.js";
import { parseHubRef } from "../../store/hub/hub-ref.js";
import { importPulledModel } from "../../store/hub/import-pulled.js";
import { pullModel, type PullModelResult } from "../../store/hub/pull-model.js";
import { formatModelName, parseModelName } from "../../store/model-ref.js";
import type { ModelStore } from "../../store/model-store.js";
import { formatImportReport, importReport, type ImportReport } from "./import.js";
import { formatBytes } from "./inspect.js";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "./store-commands.js";

interface PullFlags {
  name?: string;
  endpoint?: string;
  home?: string;
  json?: boolean;
}

/** What `grove pull --json` prints. */
export interface PullReport extends ImportReport {
  /** Where it came from, pinned to the commit: `hf:OWNER/REPO/FILE@COMMIT`. */
  source: string;
  /** Bytes fetched by this run (0 when the store already had the file). */
  downloadedBytes: number;
  /** True when the store already had the file and nothing was downloaded. */
  alreadyStored: boolean;
  /** What the model card said that the store could not act on (bases not in the store). */
  notes: string[];
}

/**
 * Registers `grove pull hf:OWNER/REPO[/FILE.gguf][@REVISION]`: downloads a GGUF file from a
 * Hugging Face-style hub (resuming a broken download, verified against the hub's sha256) and
 * imports it with its source and the card's lineage. Pulling a file the store has downloads
 * nothing.
 *
 * Lineage: each `base_model` of the card is looked up in the store — a model whose card
 * `source` is in that repository, else one named `<repo>` or `<owner>/<repo>` (lower-cased,
 * tag `latest`). One match is linked with the card's `base_model_relation` (`finetune` when the
 * card names none); otherwise the base stays in the model's card and a note says so.
 *
 * @example
 * grove pull hf:acme/tiny-GGUF --name tiny:q8
 * HF_ENDPOINT=http://mirror.local grove pull hf:acme/tiny-GGUF/tiny.Q8_0.gguf@v1 --json
 */
export function registerPullCommand(program: Command): void {
  program
    .command("pull")
    .description("download a GGUF model from a Hugging Face-style hub into the store, with its lineage")
    .argument("<ref>", "hf:OWNER/REPO[/FILE.gguf][@REVISION]")
    .option("--name <family:tag>", "name to point at the model")
    .option("--endpoint <url>", "hub base URL (env HF_ENDPOINT; default https://huggingface.co); the token comes from HF_TOKEN")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (ref: string, flags: PullFlags) => {
      // Input is checked before the network or the store is touched.
      const hubRef = parseHubRef(ref);
      const name = flags.name === undefined ? undefined : formatModelName(parseModelName(flags.name));
      const config = loadConfig({ flags: { home: flags.home, hubEndpoint: flags.endpoint } });
      const client = new HubClient({ endpoint: config.hubEndpoint, token: config.hubToken === "" ? undefined : config.hubToken });
      const report = await withStore(config.home, async (store) => {
        const pulled = await pullWithProgress((onProgress) =>
          pullModel({
            ref: hubRef,
            client,
            partialDirectory: store.blobs.tempDirectory,
            // The registry, not the blob: a blob left by `grove rm` before `grove gc` is not a model.
            isAlreadyStored: async (sha256) => (await store.model(`sha256:${sha256}`)) !== undefined,
            onProgress,
          }),
        );
        return importPulled(store, pulled, name);
      });
      for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatPullReport(report));
    });
}

/** The human-readable report of `grove pull`: the source, then what the import printed. */
export function formatPullReport(report: PullReport): string {
  const fetched = report.alreadyStored ? "nothing downloaded" : `${formatBytes(report.downloadedBytes)} downloaded`;
  return `pulled    ${report.source} (${fetched})\n${formatImportReport(report)}`;
}

/** Runs a pull with a progress bar on stderr when it is a terminal. */
async function pullWithProgress(pull: (onProgress: (received: number, total: number | undefined) => void) => Promise<PullModelResult>): Promise<PullModelResult> {
  const progress = byteProgress("downloading");
  try {
    return await pull(progress.onProgress);
  } finally {
    progress.stop();
  }
}

/** Imports a downloaded file (moving it into the store) with its source and lineage; tags a stored one. */
async function importPulled(store: ModelStore, pulled: PullModelResult, name: string | undefined): Promise<PullReport> {
  const imported = await importPulledModel(store, pulled, name);
  const report = await importReport(store, imported.result);
  const { source, downloadedBytes, alreadyStored, notes } = imported;
  return { ...report, source, downloadedBytes, alreadyStored, notes };
}
