import { SingleBar } from "cli-progress";

/** A byte-count progress bar on stderr, drawn only when stderr is a terminal. */
export interface ByteProgress {
  /** Reports progress; an unknown total draws nothing. */
  readonly onProgress: (done: number, total: number | undefined) => void;
  /** Ends the bar, if it was started. */
  stop(): void;
}

/**
 * The progress bar every long CLI job uses (write, hash, download), in megabytes.
 * @param label what is happening, e.g. `downloading`
 * @param minBytes jobs smaller than this finish fast enough to need no bar
 */
export function byteProgress(label: string, minBytes = 0): ByteProgress {
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: `${label} {bar} {percentage}% | {value}/{total} MB | ETA {eta}s`, stream: process.stderr, hideCursor: true })
    : undefined;
  let started = false;
  return {
    onProgress(done, total) {
      if (!bar || total === undefined || total < minBytes) return;
      const megabytes = Math.max(1, Math.ceil(total / 1e6));
      if (!started) {
        bar.start(megabytes, 0);
        started = true;
      }
      bar.update(done >= total ? megabytes : Math.floor(done / 1e6));
    },
    stop() {
      if (started) bar?.stop();
      started = false;
    },
  };
}
