import type { Logger } from "../logging/logger.js";
import type { ServiceStore } from "./service-store.js";

/** Options of {@link ReservationSweeper}. */
export interface ReservationSweeperOptions {
  readonly store: Pick<ServiceStore, "expireReservations">;
  /** Reservations older than this many milliseconds are released (`--reservation-ttl`); 0 turns the sweeper off. */
  readonly ttlMs: number;
  /** How often to sweep. @default min(ttlMs / 2, 60 s), at least 1 s */
  readonly intervalMs?: number;
  /** The clock, for tests. @default Date.now */
  readonly now?: () => number;
  readonly logger?: Logger;
}

/**
 * Releases budget reservations older than the TTL: a replica that crashed mid-request never
 * settles its reservations, which would otherwise hold budget until the period ends. Sweeps once
 * at start and then every `intervalMs`; each sweep is one transaction in the service store
 * ({@link ServiceStore.expireReservations}), so replicas sweeping at once release each
 * reservation once. The TTL must be longer than any request runs: a request settling after its
 * reservation was released records its usage but is not charged to the budget.
 */
export class ReservationSweeper {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;

  private constructor(private readonly options: ReservationSweeperOptions) {}

  /** Sweeps once (awaited, so startup releases what a crash left) and starts the timer. */
  static async start(options: ReservationSweeperOptions): Promise<ReservationSweeper> {
    const sweeper = new ReservationSweeper(options);
    if (options.ttlMs <= 0) return sweeper;
    await sweeper.sweep();
    const interval = options.intervalMs ?? Math.max(1000, Math.min(options.ttlMs / 2, 60_000));
    sweeper.#timer = setInterval(() => void sweeper.sweep().catch(() => undefined), interval);
    sweeper.#timer.unref();
    return sweeper;
  }

  /** Releases the reservations older than the TTL now; returns how many. Errors are logged, not thrown. */
  async sweep(): Promise<number> {
    const { store, ttlMs, logger } = this.options;
    if (ttlMs <= 0) return 0;
    if (this.#running !== undefined) return this.#running;
    const before = new Date((this.options.now ?? Date.now)() - ttlMs);
    this.#running = store
      .expireReservations(before)
      .then((released) => {
        if (released > 0) logger?.warn({ released, olderThan: before.toISOString() }, "released stale budget reservations (a replica stopped before settling them)");
        return released;
      })
      .catch((error: unknown) => {
        logger?.error({ err: error }, "releasing stale budget reservations failed");
        return 0;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /** Stops the timer and waits for a sweep in progress. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }
}
