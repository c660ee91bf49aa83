import { InvalidRequestError } from "./errors.js";

/**
 * Where `JSON.parse` failed, without the text itself: V8's messages quote the input
 * (`Unexpected token 'r', "root:*:202"... is not valid JSON`), and a file a request pointed at
 * must not leak through an error.
 */
export function jsonErrorPosition(error: unknown): string {
  const position = /position (\d+)/.exec(error instanceof Error ? error.message : "");
  return position === null ? "" : ` (at character ${position[1]})`;
}

/**
 * The JSON values of a JSONL text, one a non-blank line, each with `where` (`source line N`) for
 * the caller's own errors.
 * @throws InvalidRequestError (with `param`) naming the line of the first value that does not parse, without quoting it
 */
export function* jsonLines(text: string, source: string, param: string): Generator<{ value: unknown; where: string }> {
  const lines = text.split("\n");
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const where = `${source} line ${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new InvalidRequestError(`${where} is not valid JSON${jsonErrorPosition(error)}`, { param });
    }
    yield { value, where };
  }
}
