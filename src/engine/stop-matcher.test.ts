import assert from "node:assert/strict";
import { test } from "node:test";
import { StopMatcher } from "./stop-matcher.js";

function run(stops: string[], pieces: string[]) {
  const matcher = new StopMatcher(stops);
  let out = "";
  for (const piece of pieces) {
    const { release, stopped } = matcher.push(piece);
    out += release;
    if (stopped) return { out, stopped: true };
  }
  return { out: out + matcher.flush(), stopped: false };
}

test("finds a stop string split across pieces and drops it", () => {
  assert.deepEqual(run(["END"], ["Hello E", "N", "D and more"]), { out: "Hello ", stopped: true });
});

test("holds back a possible prefix, then releases it when it does not complete", () => {
  const matcher = new StopMatcher(["###"]);
  assert.deepEqual(matcher.push("a#"), { release: "a", stopped: false });
  assert.deepEqual(matcher.push("#b"), { release: "##b", stopped: false });
});

test("earliest of several stop strings wins", () => {
  assert.deepEqual(run(["zz", "b"], ["aazzb"]), { out: "aa", stopped: true });
});

test("no stop strings passes everything through", () => {
  assert.deepEqual(run([], ["a", "b"]), { out: "ab", stopped: false });
});

test("flush releases held text when generation ends", () => {
  assert.deepEqual(run(["\n\nUser:"], ["Done.\n\nUs"]), { out: "Done.\n\nUs", stopped: false });
});
