/** Which way each axis of a front is better. */
export interface FrontAxes {
  /** True for accuracy-like quality, false for perplexity or KL divergence. */
  qualityHigherIsBetter: boolean;
  /** True for a speed (decode tokens/s), false for a size or a memory peak. */
  costHigherIsBetter: boolean;
}

/** A point of a front: an item with its quality and its cost. */
export interface FrontPoint<T> {
  item: T;
  quality: number;
  cost: number;
}

/** A point, and whether it is on the front or which points dominate it. */
export interface FrontMembership<T> extends FrontPoint<T> {
  onFront: boolean;
  /** Indices (in the input) of the points that dominate this one; empty on the front. */
  dominatedBy: number[];
}

/**
 * True when `a` dominates `b`: at least as good on both quality and cost, and strictly better on
 * one. Equal points do not dominate each other.
 */
export function dominates(a: FrontPoint<unknown>, b: FrontPoint<unknown>, axes: FrontAxes): boolean {
  const qualityAtLeast = axes.qualityHigherIsBetter ? a.quality >= b.quality : a.quality <= b.quality;
  const costAtLeast = axes.costHigherIsBetter ? a.cost >= b.cost : a.cost <= b.cost;
  return qualityAtLeast && costAtLeast && (a.quality !== b.quality || a.cost !== b.cost);
}

/**
 * The Pareto front of quality versus cost: every point, in input order, marked on the front
 * (no other point dominates it) or with the points that dominate it. Ties stay on the front
 * together. Quadratic, which is fine for the models of one store.
 */
export function paretoFront<T>(points: readonly FrontPoint<T>[], axes: FrontAxes): FrontMembership<T>[] {
  return points.map((point, index) => {
    const dominatedBy = points.flatMap((other, otherIndex) => (otherIndex !== index && dominates(other, point, axes) ? [otherIndex] : []));
    return { ...point, onFront: dominatedBy.length === 0, dominatedBy };
  });
}
