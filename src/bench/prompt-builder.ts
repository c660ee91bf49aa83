/** Plain English the prompts are cut from; any text works, the models are not judged on it. */
const PASSAGE = `
The old lighthouse keeper climbed the spiral stairs every evening before the sun went down.
He carried a small lamp, a notebook and a flask of tea, and he counted the steps out loud
because his father had done the same. From the gallery he could see the harbour, the fishing
boats coming home, the gulls circling over the market and the long grey line of the sea wall.
He wrote down the wind, the colour of the water, the names of the boats and anything else
that seemed worth remembering. Over forty years the notebooks filled three shelves in the
kitchen below. Visitors sometimes asked what he was looking for in all those pages, and he
told them that a place only shows you its patterns if you watch it long enough. Storms came
from the west in autumn and from the north in late winter; the herring arrived a week after
the first warm rain; the baker's boy always ran when the church bell struck seven. None of
it was secret, yet nobody else had noticed, because nobody else had written it down.
`
  .trim()
  .split(/\s+/);

/** How close a calibrated prompt must come to its target length. */
const TOLERANCE = 0.05;

/**
 * Builds raw prompts of a chosen length in tokens, each one unique: it opens with the
 * request number and starts the passage at a different word, so no prefix cache on either
 * server can reuse more than a token or two of an earlier request.
 *
 * @example
 * const builder = await PromptBuilder.calibrate(32, (prompt) => countPromptTokens(url, model, prompt));
 * builder.prompt(7); // "[7] boats coming home, the gulls …"
 */
export class PromptBuilder {
  /**
   * @param wordCount words of passage after the request number.
   * @param measuredTokens tokens the calibration request counted, for the report.
   */
  constructor(
    readonly wordCount: number,
    readonly measuredTokens: number,
  ) {
    if (!Number.isInteger(wordCount) || wordCount < 1) throw new RangeError(`wordCount must be a positive integer, got ${wordCount}`);
  }

  /** The prompt of request number `requestNumber`; equal numbers give equal prompts. */
  prompt(requestNumber: number): string {
    const start = (requestNumber * 17) % PASSAGE.length;
    const words: string[] = [];
    for (let index = 0; index < this.wordCount; index++) words.push(PASSAGE[(start + index) % PASSAGE.length]!);
    return `[${requestNumber}] ${words.join(" ")}`;
  }

  /**
   * Finds the word count whose prompt the server tokenizes to about `targetTokens` tokens
   * (within 5 %), asking `countTokens` a few times. Both servers read the same GGUF
   * vocabulary, so a count taken on one holds for the other; the report shows each
   * server's own `prompt_tokens` to confirm it.
   */
  static async calibrate(targetTokens: number, countTokens: (prompt: string) => Promise<number>): Promise<PromptBuilder> {
    let wordCount = Math.max(1, Math.round(targetTokens * 0.75));
    let best: PromptBuilder | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const candidate = new PromptBuilder(wordCount, 0);
      const tokens = await countTokens(candidate.prompt(0));
      const measured = new PromptBuilder(wordCount, tokens);
      if (!best || Math.abs(tokens - targetTokens) < Math.abs(best.measuredTokens - targetTokens)) best = measured;
      if (Math.abs(tokens - targetTokens) <= Math.max(2, targetTokens * TOLERANCE)) break;
      const next = Math.max(1, Math.round((wordCount * targetTokens) / tokens));
      wordCount = next === wordCount ? wordCount + Math.sign(targetTokens - tokens) : next;
      if (wordCount < 1) break;
    }
    return best!;
  }
}
