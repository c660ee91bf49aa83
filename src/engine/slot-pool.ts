import { AbortedError, OverloadedError } from "../core/errors.js";

interface Waiter<T, P> {
  readonly prompt: P;
  readonly count: number;
  readonly resolve: (slots: T[]) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** `P` is what a request brings to match against a slot's cache: its prompt tokens by default. */
export interface SlotPoolOptions<T, P = readonly number[]> {
  readonly slots: readonly T[];
  /** Requests allowed to wait when every slot is busy; the next gets OverloadedError. */
  readonly queueLimit: number;
  /** Length of the prompt prefix a slot already holds in its cache. */
  readonly cachedPrefixLength: (slot: T, prompt: P) => number;
}

/**
 * Hands out a fixed set of slots (sequences of one context). A free slot whose cache shares
 * the longest prefix with the prompt wins, as in llama.cpp's server, so repeated system
 * prompts and multi-turn chats skip re-evaluation. When all are busy, callers wait in FIFO
 * order in a bounded queue.
 */
export class SlotPool<T, P = readonly number[]> {
  private readonly free: T[];
  private readonly waiters: Waiter<T, P>[] = [];
  private readonly total: number;

  constructor(private readonly options: SlotPoolOptions<T, P>) {
    this.free = [...options.slots];
    this.total = options.slots.length;
  }

  get busy(): number {
    return this.total - this.free.length;
  }

  get size(): number {
    return this.total;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves with a slot; the caller must `release` it exactly once. */
  async acquire(prompt: P, signal?: AbortSignal): Promise<T> {
    return (await this.acquireMany(prompt, 1, signal))[0]!;
  }

  /**
   * Resolves with `count` slots at once (n choices of one prompt), the first the one sharing the
   * longest prefix with the prompt; the caller releases each exactly once. Taking them together
   * means two requests can never each hold part of what they need and wait for the rest.
   */
  acquireMany(prompt: P, count: number, signal?: AbortSignal): Promise<T[]> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    if (count < 1 || count > this.total) return Promise.reject(new RangeError(`Cannot take ${count} of ${this.total} slots`));
    if (this.waiters.length === 0 && this.free.length >= count) return Promise.resolve(this.takeBest(prompt, count));
    if (this.waiters.length >= this.options.queueLimit) {
      return Promise.reject(
        new OverloadedError(
          `All ${this.total} slots are busy and ${this.waiters.length} requests are already waiting; retry later`,
        ),
      );
    }
    return new Promise<T[]>((resolve, reject) => {
      const waiter: Waiter<T, P> = {
        prompt,
        count,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(new AbortedError());
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Returns a slot; the oldest waiter gets slots as soon as there are as many free as it needs. */
  release(slot: T): void {
    this.free.push(slot);
    for (let waiter = this.waiters[0]; waiter !== undefined && this.free.length >= waiter.count; waiter = this.waiters[0]) {
      this.waiters.shift();
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      // The slot just freed (or the best-matching one) goes to the waiter.
      waiter.resolve(waiter.count === 1 && this.free.length === 1 ? this.free.splice(0, 1) : this.takeBest(waiter.prompt, waiter.count));
    }
  }

  private takeBest(prompt: P, count: number): T[] {
    let bestIndex = 0;
    let bestLength = -1;
    for (let index = 0; index < this.free.length; index++) {
      const length = this.options.cachedPrefixLength(this.free[index]!, prompt);
      if (length > bestLength) {
        bestLength = length;
        bestIndex = index;
      }
    }
    const best = this.free.splice(bestIndex, 1);
    return [...best, ...this.free.splice(0, count - 1)];
  }
}
