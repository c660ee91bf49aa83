/**
 * Where `JSON.parse` failed, without the text itself: V8's messages quote the input
 * (`Unexpected token 'r', "root:*:202"... is not valid JSON`), and a file a request pointed at
 * must not leak through an error.
 */
export function jsonErrorPosition(error: unknown): string {
  const position = /position (\d+)/.exec(error instanceof Error ? error.message : "");
  return position === null ? "" : ` (at character ${position[1]})`;
}
