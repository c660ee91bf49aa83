/**
 * Standard errors of stored scores and the paired comparison of two results.
 *
 * The significance rule, used by every listing: two scores differ when the absolute mean
 * difference exceeds {@link SIGNIFICANCE_Z} (1.96) standard errors of that difference — a
 * two-sided test at the 95 % level under the normal approximation. When both results hold
 * per-unit values on the same units (the same chunks of the same text, the same items of the
 * same task) the test is paired: the difference is taken per chunk or per item and its standard
 * error is that of the mean of those differences, which cancels what the two models share (the
 * hard chunks, the easy items). Otherwise it falls back to the unpaired error √(SE_a² + SE_b²),
 * which is larger; with either error unknown (results stored before errors were kept) the
 * difference is neither called significant nor not: `significant` is null.
 *
 * Perplexity is compared on its logarithm, the mean negative log-likelihood per token (the
 * per-chunk values are mean NLLs); its standard error is carried to perplexity by the delta
 * method (SE(ppl) = ppl · SE(mean NLL)). Chunk, not token, is the unit: neighbouring tokens are
 * correlated, so the per-token error llama-perplexity prints is too small.
 */

import type { Comparison, ResultSamples } from "../core/wire.js";

export type { Comparison, ResultSamples } from "../core/wire.js";

/** z of the two-sided 95 % level. */
export const SIGNIFICANCE_Z = 1.96;

/** The rule in words, for notes and documentation. */
export const SIGNIFICANCE_RULE = "differences within 1.96 standard errors (95 %, paired per chunk or item where both were measured on the same ones) are within noise";


/** How a metric is read from per-unit values: the mean of `sample`, passed through `transform`. */
interface SampleMapping {
  sample: string;
  /** Metric from the mean of the sample. */
  transform: (mean: number) => number;
  /** Derivative of `transform` at the mean (the delta method). */
  slope: (mean: number) => number;
}

const identity: Omit<SampleMapping, "sample"> = { transform: (mean) => mean, slope: () => 1 };

/** Metrics with per-unit values, and how they map. */
const SAMPLE_MAPPINGS: Readonly<Record<string, SampleMapping>> = {
  perplexity: { sample: "nll", transform: Math.exp, slope: Math.exp },
  klDivergence: { sample: "klDivergence", ...identity },
  top1Agreement: { sample: "top1Agreement", ...identity },
  acc: { sample: "acc", ...identity },
  accNorm: { sample: "accNorm", ...identity },
  exactMatch: { sample: "exactMatch", ...identity },
  accGreedy: { sample: "accGreedy", ...identity },
};

/** Mean of values. */
export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/**
 * Standard error of the mean: sample standard deviation (n − 1) over √n; null with fewer than
 * two values.
 */
export function standardErrorOfMean(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const average = mean(values);
  const variance = values.reduce((sum, value) => sum + (value - average) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance / values.length);
}

/**
 * Standard errors of a result's metrics from its per-unit values: each metric that has a
 * mapping gets SE(mean) carried through the delta method; `bitsPerByte` (proportional to the
 * mean NLL) gets the mean NLL's relative error. Metrics without per-unit values are left out.
 */
export function standardErrorsFromSamples(metrics: Record<string, number | null>, samples: ResultSamples): Record<string, number | null> {
  const errors: Record<string, number | null> = {};
  for (const name of Object.keys(metrics)) {
    const mapping = SAMPLE_MAPPINGS[name];
    const values = mapping === undefined ? undefined : samples.values[mapping.sample];
    if (mapping === undefined || values === undefined || values.length === 0) continue;
    const error = standardErrorOfMean(values);
    errors[name] = error === null ? null : Math.abs(mapping.slope(mean(values))) * error;
  }
  const nll = samples.values.nll;
  const bitsPerByte = metrics.bitsPerByte;
  if (nll !== undefined && nll.length > 1 && typeof bitsPerByte === "number") {
    const error = standardErrorOfMean(nll)!;
    const average = mean(nll);
    errors.bitsPerByte = average > 0 ? (bitsPerByte * error) / average : null;
  }
  return errors;
}


/** What {@link compareScores} needs of a result. */
export interface ComparableScore {
  metrics: Record<string, number | null>;
  standardErrors?: Record<string, number | null> | undefined;
  samples?: ResultSamples | null | undefined;
}

/**
 * Compares `metric` of two results (b against a). Paired when both hold per-unit values of the
 * metric with the same unit and count — the caller has checked that they were measured on the
 * same text or task with the same settings (see `comparabilityKey`). Null when either value is
 * missing.
 */
export function compareScores(a: ComparableScore, b: ComparableScore, metric: string): Comparison | null {
  const valueA = a.metrics[metric];
  const valueB = b.metrics[metric];
  if (typeof valueA !== "number" || typeof valueB !== "number" || !Number.isFinite(valueA) || !Number.isFinite(valueB)) return null;
  const difference = valueB - valueA;
  const mapping = SAMPLE_MAPPINGS[metric];
  const unitsA = mapping === undefined ? undefined : a.samples?.values[mapping.sample];
  const unitsB = mapping === undefined ? undefined : b.samples?.values[mapping.sample];
  if (unitsA !== undefined && unitsB !== undefined && unitsA.length === unitsB.length && unitsA.length >= 2 && a.samples!.unit === b.samples!.unit) {
    const differences = unitsB.map((value, index) => value - unitsA[index]!);
    const error = standardErrorOfMean(differences)!;
    const meanDifference = mean(differences);
    return { metric, difference, standardError: error, paired: true, units: differences.length, ...verdict(meanDifference, error) };
  }
  const errorA = a.standardErrors?.[metric];
  const errorB = b.standardErrors?.[metric];
  if (typeof errorA !== "number" || typeof errorB !== "number") return { metric, difference, standardError: null, z: null, paired: false, units: null, significant: null };
  const error = Math.sqrt(errorA ** 2 + errorB ** 2);
  return { metric, difference, standardError: error, paired: false, units: null, ...verdict(difference, error) };
}

function verdict(difference: number, error: number): { z: number | null; significant: boolean } {
  if (error === 0) return { z: difference === 0 ? 0 : null, significant: difference !== 0 };
  const z = Math.abs(difference) / error;
  return { z, significant: z > SIGNIFICANCE_Z };
}

/** `±1.23` style text of a standard error, or an empty string when unknown. */
export function formatError(error: number | null | undefined, digits: (value: number) => string): string {
  return typeof error === "number" && Number.isFinite(error) ? `±${digits(error)}` : "";
}
