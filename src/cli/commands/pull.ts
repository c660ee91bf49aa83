import { unlink } from "node:fs/promises";
import { byteProgress } from "../byte-progress.js";
import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import type { Digest } from "../../core/digest.js";
import { InvalidModelFileError } from "../../core/errors.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { HubClient } from "../../store/hub/hub-client.js";
import { formatHubRef, parseHubRef } from "../../store/hub/hub-ref.js";
import type { ModelCard } from "../../store/hub/model-card.js";
import { pullModel, type PullModelResult } from "../../store/hub/pull-model.js";
import { formatModelName, parseModelName, quoteUntrusted } from "../../store/model-ref.js";
import type { ImportResult, ModelListing, ModelStore } from "../../store/model-store.js";
import type { Relation } from "../../store/registry.js";
import { formatImportReport, importReport, type ImportReport } from "./import.js";
import { formatBytes } from "./inspect.js";
import { describeModel, HOME_FLAG, HOME_FLAG_HELP, withStore } from "./store-commands.js";

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

/** How the card's bases map onto the store: the parents to link and what could not be linked. */
interface CardLineage {
  bases: Digest[];
  relation: Relation | undefined;
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
            isAlreadyStored: async (sha256) => (await store.registry.getModel(`sha256:${sha256}`)) !== undefined,
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
  const { source } = pulled;
  const pinned = formatHubRef({ ...parseHubRef(source.ref), revision: source.commit ?? source.revision });
  const digest: Digest = `sha256:${pulled.sha256}`;
  if (pulled.alreadyStored) {
    if (name !== undefined) await store.tag(digest, name);
    const model = await store.resolve(digest);
    const report = await importReport(store, { model, ...(name === undefined ? {} : { name }), parents: [], created: false, blobCreated: false });
    return { ...report, source: pinned, downloadedBytes: 0, alreadyStored: true, notes: [] };
  }
  // An adapter is an adapter fork whatever its card says (cards often omit base_model_relation).
  const isAdapter = (await validateGgufFile(pulled.path).catch(() => undefined))?.adapterType !== undefined;
  const lineage = await lineageFromCard(store, isAdapter ? { ...pulled.card, relation: "adapter" } : pulled.card);
  const card: Record<string, unknown> = { source: pinned };
  if (pulled.card.baseModels.length > 0) card.base_model = [...pulled.card.baseModels];
  if (pulled.card.relation !== undefined) card.base_model_relation = pulled.card.relation;
  let result: ImportResult;
  try {
    result = await store.importFile(pulled.path, {
      mode: "move",
      expectedDigest: digest,
      card,
      ...(pulled.card.license === undefined ? {} : { license: pulled.card.license }),
      ...(name === undefined ? {} : { name }),
      ...(lineage.bases.length === 0 ? {} : { bases: lineage.bases, relation: lineage.relation }),
    });
  } catch (error) {
    // A verified download that is not a valid GGUF will never import: do not keep it for a resume.
    if (error instanceof InvalidModelFileError) await unlink(pulled.path).catch(() => undefined);
    throw error;
  }
  const report = await importReport(store, result);
  return { ...report, source: pinned, downloadedBytes: pulled.size - pulled.resumedFrom, alreadyStored: false, notes: lineage.notes };
}

/**
 * Finds each of the card's `base_model` repositories in the store: models whose card `source`
 * lies in that repository, else the model named `<repo>` or `<owner>/<repo>` (lower-cased).
 */
async function lineageFromCard(store: ModelStore, card: ModelCard): Promise<CardLineage> {
  const relation: Relation = card.relation ?? "finetune";
  const models = await store.list();
  const bases: Digest[] = [];
  const notes: string[] = [];
  for (const baseModel of card.baseModels) {
    const matches = findBase(models, baseModel);
    if (matches.length === 1) {
      if (!bases.includes(matches[0]!.digest)) bases.push(matches[0]!.digest);
    } else if (matches.length === 0) {
      notes.push(`the base model ${quoteUntrusted(baseModel)} is not in the store; it is recorded in the model's card as base_model`);
    } else {
      const candidates = matches.map((model) => describeModel(model.digest, model.names)).join(", ");
      notes.push(`the base model ${quoteUntrusted(baseModel)} matches several models in the store (${candidates}); not linked, recorded in the card as base_model`);
    }
  }
  if (bases.length > 1 && relation !== "merge") {
    notes.push(`the card names ${bases.length} base models in the store but its relation is '${relation}', not 'merge'; none linked`);
    return { bases: [], relation: undefined, notes };
  }
  return { bases, relation: bases.length === 0 ? undefined : relation, notes };
}

function findBase(models: readonly ModelListing[], baseModel: string): ModelListing[] {
  const repo = baseModel.toLowerCase();
  const bySource = models.filter((model) => typeof model.card.source === "string" && sourceRepository(model.card.source) === repo);
  if (bySource.length > 0) return bySource;
  const slash = repo.indexOf("/");
  const wanted = new Set([repo, slash === -1 ? repo : repo.slice(slash + 1)].flatMap((family) => canonicalName(family) ?? []));
  return models.filter((model) => model.names.some((name) => wanted.has(name)));
}

/** The lower-cased `OWNER/REPO` of an `hf:` source, or undefined when it is not one. */
function sourceRepository(source: string): string | undefined {
  try {
    return parseHubRef(source).repo.toLowerCase();
  } catch {
    return undefined;
  }
}

function canonicalName(text: string): string | undefined {
  try {
    return formatModelName(parseModelName(text));
  } catch {
    return undefined;
  }
}
