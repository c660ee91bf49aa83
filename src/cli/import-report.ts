import type { ImportResult, ModelStore } from "../store/model-store.js";
import { describeModel, formatBytes } from "./format.js";
import { type EdgeView, namesByDigest } from "./store-access.js";

/** What `grove import --json` and `grove pull --json` print about the model that entered the store. */
export interface ImportReport {
  digest: ImportResult["model"]["digest"];
  /** The name pointed at it by this command, when one was given. */
  name?: string;
  /** Every name it has now. */
  names: string[];
  size: number;
  /** False when the registry already had the model. */
  created: boolean;
  /** Its parents, with relation and recipe. */
  parents: EdgeView[];
  model: ImportResult["model"];
}

/** The report of an import: the model, its names and all its parents (not only the edges this import added). */
export async function importReport(store: ModelStore, result: ImportResult): Promise<ImportReport> {
  const names = await namesByDigest(store);
  const parents = await store.parentsOf(result.model.digest);
  return {
    digest: result.model.digest,
    ...(result.name === undefined ? {} : { name: result.name }),
    names: names.get(result.model.digest) ?? [],
    size: result.model.size,
    created: result.created,
    parents: parents.map((edge) => ({ digest: edge.parent, names: names.get(edge.parent) ?? [], relation: edge.relation, recipe: edge.recipe })),
    model: result.model,
  };
}

/**
 * Two or more lines for people:
 * `imported  sha256:…  small:q8  6.2 MB` then `lineage   quantized from small:f32 (sha256:3f2a…)`.
 */
export function formatImportReport(report: ImportReport): string {
  const verb = report.created ? "imported" : "already in the store";
  const names = report.names.length > 0 ? `  ${report.names.join(", ")}` : "";
  const lines = [`${verb}  ${report.digest}${names}  ${formatBytes(report.size)}`];
  if (report.parents.length === 0) lines.push("lineage   none (a root)");
  for (const parent of report.parents) lines.push(`lineage   ${parent.relation} from ${describeModel(parent.digest, parent.names)}`);
  return `${lines.join("\n")}\n`;
}
