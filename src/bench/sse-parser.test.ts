import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SseParser } from "./sse-parser.js";

/** Feeds `pieces` one by one and collects every payload. */
function parseAll(pieces: readonly string[]): string[] {
  const parser = new SseParser();
  const events = pieces.flatMap((piece) => parser.push(piece));
  parser.finish();
  return events;
}

describe("SseParser", () => {
  test("returns the data of each event, in order", () => {
    assert.deepEqual(parseAll(['data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n']), ['{"a":1}', '{"b":2}', "[DONE]"]);
  });

  test("holds an event split anywhere until its blank line arrives", () => {
    const text = 'data: {"text":"héllo"}\n\ndata: [DONE]\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      assert.deepEqual(parseAll([text.slice(0, cut), text.slice(cut)]), ['{"text":"héllo"}', "[DONE]"], `cut at ${cut}`);
    }
    assert.deepEqual(parseAll([...text]), ['{"text":"héllo"}', "[DONE]"], "one character at a time");
  });

  test("accepts CRLF and CR line ends, including a CRLF split between pieces", () => {
    assert.deepEqual(parseAll(["data: one\r\n\r\ndata: two\r\r"]), ["one", "two"]);
    assert.deepEqual(parseAll(["data: one\r", "\n\r", "\ndata: two\r\n\r\n"]), ["one", "two"]);
  });

  test("joins multi-line data with newlines and strips one leading space only", () => {
    assert.deepEqual(parseAll(["data: first\ndata:  second\ndata:third\n\n"]), ["first\n second\nthird"]);
  });

  test("ignores comments, other fields and blank lines outside events", () => {
    assert.deepEqual(parseAll([": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\n\n\n"]), ["x"]);
  });

  test("a field without a colon is a field with an empty value", () => {
    assert.deepEqual(parseAll(["data\n\n"]), [""]);
  });

  test("drops an event the stream ends before closing", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push("data: complete\n\ndata: cut off"), ["complete"]);
    parser.finish();
    assert.deepEqual(parser.push("\n\n"), []);
  });
});
