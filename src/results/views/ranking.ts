import { COST_METRICS, QUALITY_METRICS } from "../metrics.js";

/**
 * Metrics a result may hold beside the primary ones, and which way is better: the secondary
 * numbers of a task (`bitsPerByte` beside `perplexity`, `accNorm` beside `acc`,
 * `top1Agreement` beside `klDivergence`).
 */
const SECONDARY_METRICS: readonly { name: string; higherIsBetter: boolean }[] = [
  { name: "accNorm", higherIsBetter: true },
  { name: "bitsPerByte", higherIsBetter: false },
  { name: "top1Agreement", higherIsBetter: true },
];

/**
 * Whether a higher value of a metric is better: true, false, or undefined for a metric Grove
 * does not know (it cannot be ranked by).
 *
 * @example metricDirection("perplexity") // false
 * @example metricDirection("aggregateDecodeTokensPerSecond.16") // true
 */
export function metricDirection(name: string): boolean | undefined {
  const known = [...QUALITY_METRICS, ...COST_METRICS, ...SECONDARY_METRICS].find((metric) => metric.name === name);
  if (known !== undefined) return known.higherIsBetter;
  if (/^aggregateDecodeTokensPerSecond\.\d+$/.test(name)) return true;
  return undefined;
}

/** What {@link rankEntries} ranks: an item, its value (null when not measured) and its flags. */
export interface RankInput<T> {
  item: T;
  /** The number ranked by; null or non-finite when it could not be measured. */
  value: number | null;
  /** Why the value must not be read as a score (`below_chance`, …): a flagged entry is never ranked. */
  flags: readonly string[];
}

/** One entry of a ranking. */
export interface RankedEntry<T> {
  item: T;
  /** 1 for the best; equal values share a rank (1, 1, 3); null for a flagged or unmeasured entry. */
  rank: number | null;
  /** The value ranked by; null for an unranked entry (a flagged number is never a score). */
  value: number | null;
  /** The entry's flags; `metric_not_measured` for an unflagged entry without a value. */
  flags: string[];
}

/** The flag of an entry that has no value and no flag of its own. */
export const NOT_MEASURED_FLAG = "metric_not_measured";

/**
 * Ranks entries best first by value: equal values share a rank (competition ranking: 1, 1, 3)
 * and keep `tieOrder` among themselves; flagged or unmeasured entries come after every ranked
 * one, with a null rank, in `tieOrder`.
 *
 * @param higherIsBetter which way the value is better
 * @param tieOrder orders entries of equal value, and the unranked ones (default: input order)
 */
export function rankEntries<T>(entries: readonly RankInput<T>[], higherIsBetter: boolean, tieOrder: (a: T, b: T) => number = () => 0): RankedEntry<T>[] {
  const scored = entries.filter((entry) => entry.flags.length === 0 && entry.value !== null && Number.isFinite(entry.value));
  const unscored = entries.filter((entry) => !scored.includes(entry));
  scored.sort((a, b) => (a.value === b.value ? tieOrder(a.item, b.item) : higherIsBetter ? b.value! - a.value! : a.value! - b.value!));
  const ranked: RankedEntry<T>[] = [];
  scored.forEach((entry, index) => {
    const previous = ranked[index - 1];
    const rank = previous !== undefined && previous.value === entry.value ? previous.rank : index + 1;
    ranked.push({ item: entry.item, rank, value: entry.value, flags: [] });
  });
  const rest = [...unscored]
    .sort((a, b) => tieOrder(a.item, b.item))
    .map((entry) => ({
      item: entry.item,
      rank: null,
      value: null,
      flags: entry.flags.length > 0 ? [...entry.flags] : [NOT_MEASURED_FLAG],
    }));
  return [...ranked, ...rest];
}
