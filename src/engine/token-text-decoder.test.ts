import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenTextDecoder } from "./token-text-decoder.js";

// A byte-level "vocabulary": token n is byte n.
const detokenize = (tokens: readonly number[]) => Buffer.from(tokens as number[]).toString("utf8");

test("holds partial UTF-8 characters until they complete", () => {
  const decoder = new TokenTextDecoder(detokenize);
  const bytes = [...Buffer.from("a✓b", "utf8")];
  const texts = bytes.map((byte) => decoder.push(byte).text);
  assert.deepEqual(texts, ["a", "", "", "✓", "b"]);
});

test("gives up holding after four tokens and flushes the rest", () => {
  const decoder = new TokenTextDecoder(detokenize);
  assert.equal(decoder.push(0xe2).text, "");
  assert.equal(decoder.flush().text, "\uFFFD");
  assert.equal(decoder.flush().text, "");
});
