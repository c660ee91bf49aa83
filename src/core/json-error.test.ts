import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jsonLines } from "./json-error.js";

describe("jsonLines", () => {
  test("one value per non-blank line, each with its line number", () => {
    assert.deepEqual([...jsonLines('{"a":1}\n\n  [2]  \n', "f.jsonl", "data")], [
      { value: { a: 1 }, where: "f.jsonl line 1" },
      { value: [2], where: "f.jsonl line 3" },
    ]);
  });

  test("a bad line is an invalid_request naming the line and param, never quoting the text", () => {
    assert.throws(
      () => [...jsonLines('{"a":1}\nroot:secret\n', "f.jsonl", "task")],
      (error: Error & { param?: string }) => /^f\.jsonl line 2 is not valid JSON/.test(error.message) && !error.message.includes("secret") && error.param === "task",
    );
  });
});
