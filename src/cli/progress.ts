import { SingleBar } from "cli-progress";

/**
 * The CLI's progress displays, on stderr and only when stderr is a terminal: output piped to a
 * file or another program gets no escape codes (STYLE: results on stdout, progress on stderr).
 * Every long command (pull, import, quantize, merge, fine-tune, eval, bench, generate, diff,
 * loading a model for `grove run`) draws one of these.
 */

/** How a bar shows its amounts. */
export type ProgressUnit = "bytes" | "count" | "percent";

/** Options of {@link progressBar}. */
export interface ProgressBarOptions {
  /** How amounts are shown: megabytes, `done/total`, or a percentage alone. @default "count" */
  unit?: ProgressUnit;
  /** Totals below this finish fast enough to need no bar. @default 0 */
  minTotal?: number;
  /** Where to draw; drawn only when it is a terminal. @default process.stderr */
  stream?: NodeJS.WriteStream;
}

/** A bar started at the first update. */
export interface ProgressBar {
  /** Reports `done` of `total`, with an optional note after the bar (a loss, a perplexity). */
  update(done: number, total: number, note?: string): void;
  /** Whether anything is drawn (stderr is a terminal): callers may print plain lines otherwise. */
  readonly drawn: boolean;
  /** Ends the bar, if it was started. */
  stop(): void;
}

const FORMATS: Record<ProgressUnit, string> = {
  bytes: "{value}/{total} MB | ETA {eta}s",
  count: "{value}/{total}",
  percent: "ETA {eta}s",
};

/**
 * A progress bar: `quantizing {bar} 42% | 120/291 {note}`.
 * @example
 * const bar = progressBar("quantizing", { unit: "count" });
 * try { await quantize({ onProgress: (done, total) => bar.update(done, total) }); } finally { bar.stop(); }
 */
export function progressBar(label: string, options: ProgressBarOptions = {}): ProgressBar {
  const unit = options.unit ?? "count";
  const stream = options.stream ?? process.stderr;
  const bar = stream.isTTY
    ? new SingleBar({ format: `${label} {bar} {percentage}% | ${FORMATS[unit]} {note}`, stream, hideCursor: true, etaBuffer: 20 })
    : undefined;
  const scale = (amount: number) => (unit === "bytes" ? Math.floor(amount / 1e6) : unit === "percent" ? Math.round(amount * 1000) : amount);
  let started = false;
  return {
    drawn: bar !== undefined,
    update(done, total, note = "") {
      if (!bar || total < (options.minTotal ?? 0) || total <= 0) return;
      const ceiling = unit === "bytes" ? Math.max(1, Math.ceil(total / 1e6)) : unit === "percent" ? 1000 : total;
      if (!started) {
        bar.start(ceiling, 0, { note });
        started = true;
      }
      if (bar.getTotal() !== ceiling) bar.setTotal(ceiling);
      const value = done >= total ? ceiling : unit === "percent" ? scale(done / total) : scale(done);
      bar.update(value, { note });
    },
    stop() {
      if (started) bar?.stop();
      started = false;
    },
  };
}

/** A byte-count bar whose total may be unknown (a download without Content-Length draws nothing). */
export interface ByteProgress {
  /** Reports progress; an unknown total draws nothing. */
  readonly onProgress: (done: number, total: number | undefined) => void;
  /** Ends the bar, if it was started. */
  stop(): void;
}

/**
 * The bar of jobs that write, hash or download bytes, in megabytes.
 * @param label what is happening, e.g. `downloading`
 * @param minBytes jobs smaller than this finish fast enough to need no bar
 */
export function byteProgress(label: string, minBytes = 0): ByteProgress {
  const bar = progressBar(label, { unit: "bytes", minTotal: minBytes });
  return {
    onProgress: (done, total) => {
      if (total !== undefined) bar.update(done, total);
    },
    stop: () => bar.stop(),
  };
}

/** A spinner for work with no measurable progress (loading a model). */
export interface Spinner {
  /** Says what is happening now (a bench's phase). */
  update(label: string): void;
  /** Clears the spinner's line. Safe to call twice. */
  stop(): void;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * `⠙ loading demo-s-chat:f16` redrawn every 100 ms on a terminal, nothing elsewhere; the line is
 * erased on stop so what follows starts clean.
 * @param delayMs draw only once the work has lasted this long (a fast load shows nothing). @default 0
 */
export function spinner(label: string, options: { stream?: NodeJS.WriteStream; delayMs?: number } = {}): Spinner {
  const stream = options.stream ?? process.stderr;
  if (!stream.isTTY) return { update() {}, stop() {} };
  let frame = 0;
  let drawn = false;
  let shown = label;
  const began = Date.now();
  const draw = () => {
    const seconds = Math.floor((Date.now() - began) / 1000);
    stream.write(`\r${FRAMES[frame++ % FRAMES.length]} ${shown}${seconds >= 2 ? ` (${seconds}s)` : ""}\x1b[K`);
    drawn = true;
  };
  let timer: NodeJS.Timeout | undefined;
  const start = setTimeout(() => {
    draw();
    timer = setInterval(draw, 100);
  }, options.delayMs ?? 0);
  return {
    update(next) {
      shown = next;
    },
    stop() {
      clearTimeout(start);
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      if (drawn) stream.write("\r\x1b[K");
      drawn = false;
    },
  };
}

/**
 * Runs `work` with a bar; the bar stops however the work ends.
 * @example
 * await withProgress("merging", { unit: "bytes" }, (bar) => mergeFork(store, { onProgress: (w, t) => bar.update(w, t) }));
 */
export async function withProgress<T>(label: string, options: ProgressBarOptions, work: (bar: ProgressBar) => Promise<T>): Promise<T> {
  const bar = progressBar(label, options);
  try {
    return await work(bar);
  } finally {
    bar.stop();
  }
}
