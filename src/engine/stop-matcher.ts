/**
 * Finds stop strings in streamed text. Text that could still become a stop string is held
 * back, so a client never sees the beginning of a stop string that later completes.
 * Matching is on detokenized text, because stop strings need not fall on token boundaries.
 */
export class StopMatcher {
  private pending = "";
  private readonly longest: number;

  /**
   * @param stops strings that end the generation
   * @param trimTrailingWhitespace hold whitespace back until more text follows, and drop it at the end
   */
  constructor(
    private readonly stops: readonly string[],
    private readonly trimTrailingWhitespace = false,
  ) {
    this.longest = stops.reduce((max, stop) => Math.max(max, stop.length), 0);
  }

  /**
   * Adds text; returns what may be released now and whether a stop string was found
   * (text from the stop string on is dropped).
   */
  push(text: string): { release: string; stopped: boolean; stop?: string } {
    if (this.stops.length === 0 && !this.trimTrailingWhitespace) return { release: text, stopped: false };
    this.pending += text;
    let first = -1;
    let found = "";
    for (const stop of this.stops) {
      const index = this.pending.indexOf(stop);
      if (index >= 0 && (first < 0 || index < first)) {
        first = index;
        found = stop;
      }
    }
    if (first >= 0) {
      const release = this.pending.slice(0, first);
      this.pending = "";
      return { release: this.trimTrailingWhitespace ? release.trimEnd() : release, stopped: true, stop: found };
    }
    let hold = this.heldSuffixLength();
    if (this.trimTrailingWhitespace) {
      hold = Math.max(hold, this.pending.length - this.pending.trimEnd().length);
    }
    const release = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { release, stopped: false };
  }

  /** Releases whatever is still held (the generation ended for another reason). */
  flush(): string {
    const rest = this.trimTrailingWhitespace ? this.pending.trimEnd() : this.pending;
    this.pending = "";
    return rest;
  }

  /** Length of the longest suffix of `pending` that is a proper prefix of some stop string. */
  private heldSuffixLength(): number {
    const max = Math.min(this.longest - 1, this.pending.length);
    for (let length = max; length > 0; length--) {
      const suffix = this.pending.slice(this.pending.length - length);
      if (this.stops.some((stop) => stop.startsWith(suffix))) return length;
    }
    return 0;
  }
}
