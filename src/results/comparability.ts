import { canonicalJson } from "../core/canonical-json.js";
import { describeMachine, sameMachine } from "./machine.js";
import type { ResultRecord } from "./result-record.js";

/**
 * Which results may stand side by side in a ranking, a front or a plan: quality results measured
 * on the same text or task file (task digest) with the same settings (the KL reference aside:
 * each fork is compared with its own parent), cost results with the same workload and settings
 * on the same known machine. Each result stored before machines were recorded is alone.
 */
export function comparabilityKey(result: ResultRecord): string {
  const { reference: _reference, ...settings } = result.settings;
  const base = `${result.kind}|${result.task}|${result.taskDigest}|${canonicalJson(settings)}`;
  if (result.kind === "quality") return base;
  return result.machine == null ? `${base}|unknown:${result.modelDigest}:${result.createdAt}` : `${base}|${result.machine.fingerprint}`;
}

/** Why `other` is not compared with `main` (results of one task): text, settings or machine; null when comparable. */
export function whyApart(main: ResultRecord, other: ResultRecord): string | null {
  if (comparabilityKey(main) === comparabilityKey(other)) return null;
  if (main.taskDigest !== other.taskDigest) {
    return `measured on another ${main.kind === "cost" ? "workload" : "text or task file"} (${other.taskDigest.slice(0, 19)}…, the ranked ones on ${main.taskDigest.slice(0, 19)}…)`;
  }
  const { reference: _a, ...mainSettings } = main.settings;
  const { reference: _b, ...otherSettings } = other.settings;
  if (canonicalJson(mainSettings) !== canonicalJson(otherSettings)) return `measured with other settings (${canonicalJson(otherSettings)}, the ranked ones with ${canonicalJson(mainSettings)})`;
  if (!sameMachine(main.machine, other.machine)) return `measured on ${describeMachine(other.machine)}, the ranked ones on ${describeMachine(main.machine)}`;
  return null;
}

/**
 * The group of comparable results to rank: the one holding `preferred` results where any does
 * (this machine's, for cost), else the one covering the most models, ties to the newest.
 * `results` newest first, as the store lists them.
 */
export function mainGroup(results: readonly ResultRecord[], preferred?: (result: ResultRecord) => boolean): string | undefined {
  const groups = new Map<string, { models: Set<string>; preferred: boolean; order: number }>();
  results.forEach((result, order) => {
    const key = comparabilityKey(result);
    const group = groups.get(key) ?? { models: new Set(), preferred: false, order };
    group.models.add(result.modelDigest);
    group.preferred ||= preferred?.(result) ?? false;
    groups.set(key, group);
  });
  return [...groups.entries()].sort(([, a], [, b]) => Number(b.preferred) - Number(a.preferred) || b.models.size - a.models.size || a.order - b.order)[0]?.[0];
}
