/**
 * An incremental parser for `text/event-stream` bodies (the WHATWG server-sent events
 * format), reduced to what an OpenAI-style stream uses: the `data` field of each event.
 * Text arrives in arbitrary pieces — a network read may end inside a line, inside a
 * `\r\n` pair or hold several events — so the parser keeps the unfinished tail between
 * calls to {@link SseParser.push}.
 *
 * @example
 * const parser = new SseParser();
 * for (const data of parser.push('data: {"a":1}\n\ndata: [DO')) console.log(data); // '{"a":1}'
 * parser.push("NE]\n\n"); // ["[DONE]"]
 */
export class SseParser {
  private buffer = "";
  private dataLines: string[] = [];
  private sawData = false;
  /** A `\r` ended the previous piece: a `\n` opening the next one belongs to it. */
  private pendingCarriageReturn = false;

  /** Feeds decoded text; returns the `data` payloads of the events it completed, in order. */
  push(text: string): string[] {
    if (this.pendingCarriageReturn && text.startsWith("\n")) text = text.slice(1);
    this.pendingCarriageReturn = false;
    this.buffer += text;
    const events: string[] = [];
    let lineStart = 0;
    for (let index = 0; index < this.buffer.length; index++) {
      const character = this.buffer[index];
      if (character !== "\n" && character !== "\r") continue;
      const line = this.buffer.slice(lineStart, index);
      if (character === "\r") {
        if (index + 1 === this.buffer.length) this.pendingCarriageReturn = true;
        else if (this.buffer[index + 1] === "\n") index++;
      }
      lineStart = index + 1;
      const data = this.takeLine(line);
      if (data !== undefined) events.push(data);
    }
    this.buffer = this.buffer.slice(lineStart);
    return events;
  }

  /**
   * Ends the stream. An event not yet closed by a blank line is discarded, as the
   * specification says; a stream cut off mid-event therefore loses that event.
   */
  finish(): void {
    this.buffer = "";
    this.dataLines = [];
    this.sawData = false;
    this.pendingCarriageReturn = false;
  }

  /** Handles one complete line; returns the event's data when the line is the blank one that ends it. */
  private takeLine(line: string): string | undefined {
    if (line === "") {
      if (!this.sawData) return undefined;
      const data = this.dataLines.join("\n");
      this.dataLines = [];
      this.sawData = false;
      return data;
    }
    // A line starting with ':' is a comment (servers use them as keep-alives).
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== "data") return undefined;
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.dataLines.push(value);
    this.sawData = true;
    return undefined;
  }
}
