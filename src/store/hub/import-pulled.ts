import { unlink } from "node:fs/promises";
import type { Digest } from "../../core/digest.js";
import { InvalidModelFileError } from "../../core/errors.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { formatModelName, parseModelName, quoteUntrusted } from "../model-ref.js";
import type { ImportResult, ModelListing, ModelStore } from "../model-store.js";
import type { Relation } from "../registry.js";
import { formatHubRef, parseHubRef } from "./hub-ref.js";
import type { ModelCard } from "./model-card.js";
import type { PullModelResult } from "./pull-model.js";

/** What {@link importPulledModel} did with a pull. */
export interface ImportPulledResult {
  /** The import (for a file the store already had: the stored record, `created: false`). */
  readonly result: ImportResult;
  /** Where it came from, pinned to the commit: `hf:OWNER/REPO/FILE@COMMIT`. */
  readonly source: string;
  /** Bytes fetched by this pull (0 when the store already had the file). */
  readonly downloadedBytes: number;
  /** True when the store already had the file and nothing was downloaded. */
  readonly alreadyStored: boolean;
  /** What the model card said that the store could not act on (bases not in the store). */
  readonly notes: string[];
}

/** How the card's bases map onto the store: the parents to link and what could not be linked. */
interface CardLineage {
  bases: Digest[];
  relation: Relation | undefined;
  notes: string[];
}

/**
 * Imports what `pullModel` fetched (moving the file into the store) with its pinned source and
 * the card's lineage, or only tags a file the store already had. Shared by `grove pull` and the
 * server's `/api/pull`.
 *
 * Lineage: each `base_model` of the card is looked up in the store — a model whose card
 * `source` is in that repository, else one named `<repo>` or `<owner>/<repo>` (lower-cased,
 * tag `latest`). One match is linked with the card's `base_model_relation` (`finetune` when the
 * card names none); otherwise the base stays in the model's card and a note says so.
 *
 * @param name canonical `family:tag` to point at the model, if any.
 * @throws InvalidModelFileError when the verified download is not a valid GGUF (the file is removed).
 */
export async function importPulledModel(store: ModelStore, pulled: PullModelResult, name: string | undefined): Promise<ImportPulledResult> {
  const { source } = pulled;
  const pinned = formatHubRef({ ...parseHubRef(source.ref), revision: source.commit ?? source.revision });
  const digest: Digest = `sha256:${pulled.sha256}`;
  if (pulled.alreadyStored) {
    if (name !== undefined) await store.tag(digest, name);
    const model = await store.resolve(digest);
    const result: ImportResult = { model, ...(name === undefined ? {} : { name }), parents: [], created: false, blobCreated: false };
    return { result, source: pinned, downloadedBytes: 0, alreadyStored: true, notes: [] };
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
      // Without a name, the hub path names it (Ollama's `hf.co/owner/repo`), as `/api/pull` does.
      ...(name === undefined ? { defaultName: `${parseHubRef(source.ref).owner}/${parseHubRef(source.ref).name}:latest` } : { name }),
      ...(lineage.bases.length === 0 ? {} : { bases: lineage.bases, relation: lineage.relation }),
    });
  } catch (error) {
    // A verified download that is not a valid GGUF will never import: do not keep it for a resume.
    if (error instanceof InvalidModelFileError) await unlink(pulled.path).catch(() => undefined);
    throw error;
  }
  return { result, source: pinned, downloadedBytes: pulled.size - pulled.resumedFrom, alreadyStored: false, notes: lineage.notes };
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
      const candidates = matches.map((model) => describeListing(model)).join(", ");
      notes.push(`the base model ${quoteUntrusted(baseModel)} matches several models in the store (${candidates}); not linked, recorded in the card as base_model`);
    }
  }
  if (bases.length > 1 && relation !== "merge") {
    notes.push(`the card names ${bases.length} base models in the store but its relation is '${relation}', not 'merge'; none linked`);
    return { bases: [], relation: undefined, notes };
  }
  return { bases, relation: bases.length === 0 ? undefined : relation, notes };
}

/** `name, name (sha256:0123456789ab…)`, as the CLI describes a model. */
function describeListing(model: ModelListing): string {
  const short = `${model.digest.slice(0, 19)}…`;
  return model.names.length > 0 ? `${model.names.join(", ")} (${short})` : short;
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
