/**
 * The `p`-th percentile of `values` with linear interpolation between the two nearest
 * ranks (the "R-7" definition used by numpy and spreadsheets), so the 50th percentile of
 * an even-sized sample is the mean of its two middle values.
 *
 * @param values samples in any order; not modified. Non-finite values are an error.
 * @param p percentile in [0, 100].
 * @returns `undefined` for an empty sample, so a scenario without valid samples reports
 * "no value" instead of a made-up number.
 * @example percentile([1, 2, 3, 4], 50) // 2.5
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (values.length === 0) return undefined;
  if (values.some((value) => !Number.isFinite(value))) throw new RangeError("percentile of a non-finite value");
  const sorted = [...values].sort((left, right) => left - right);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (rank - lower);
}

/**
 * The median (50th percentile) of `values`; `undefined` for an empty sample.
 * @example median([5, 1, 3]) // 3
 */
export function median(values: readonly number[]): number | undefined {
  return percentile(values, 50);
}
