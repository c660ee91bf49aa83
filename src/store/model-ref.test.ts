import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidRequestError } from "../core/errors.js";
import { formatModelName, parseModelName, parseModelRef, quoteUntrusted } from "./model-ref.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

/** Inputs every parser must refuse: traversal, absolute paths, backslashes, NUL, odd Unicode, bad shapes. */
const HOSTILE_NAMES = [
  "../x", "a/../b", "..", "/abs", "/etc/passwd", "a\\b", "a\u0000b", "ｆｕｌｌwidth", "", "a:b:c", " a", "a b", "a\tb",
  "tiny\u202e", "caf\u00e9", "a:", ":b", "a/", "/a", "a//b", "a/b/c", "-a", ".a", "a:-b", "x".repeat(65),
];

describe("parseModelName", () => {
  it("reads family, namespace and tag, defaulting the tag to latest", () => {
    assert.deepEqual(parseModelName("tiny"), { family: "tiny", tag: "latest" });
    assert.deepEqual(parseModelName("tiny:q8_0"), { family: "tiny", tag: "q8_0" });
    assert.deepEqual(parseModelName("acme/llama3.2:1b-instruct"), { family: "acme/llama3.2", tag: "1b-instruct" });
    assert.deepEqual(parseModelName("x".repeat(64)), { family: "x".repeat(64), tag: "latest" });
    assert.equal(formatModelName(parseModelName("acme/tiny")), "acme/tiny:latest");
  });

  it("folds names to lower case, as Ollama's are case-insensitive", () => {
    assert.deepEqual(parseModelName("team:small-Q8_0"), { family: "team", tag: "small-q8_0" });
    assert.deepEqual(parseModelName("Acme/Tiny"), { family: "acme/tiny", tag: "latest" });
    assert.deepEqual(parseModelRef("Tiny:F16"), { kind: "name", family: "tiny", tag: "f16" });
  });

  it("refuses hostile and malformed names with an InvalidRequestError naming the problem", () => {
    for (const text of HOSTILE_NAMES) {
      assert.throws(() => parseModelName(text), (error: unknown) => {
        assert.ok(error instanceof InvalidRequestError, `${JSON.stringify(text)} → ${String(error)}`);
        assert.equal(error.param, "name");
        return true;
      });
    }
  });

  it("names the problem and escapes the input in the message", () => {
    assert.throws(() => parseModelName("a\u0000b"), /NUL/);
    assert.throws(() => parseModelName("a\\b"), /backslash/);
    assert.throws(() => parseModelName("ｆｕｌｌwidth"), /non-ASCII/);
    assert.throws(() => parseModelName("../x"), /'\.\.'/);
    assert.throws(() => parseModelName("/abs"), /absolute/);
    assert.throws(() => parseModelName("a:b:c"), /more than one ':'/);
    assert.throws(() => parseModelName(""), /empty/);
    assert.throws(() => parseModelName("tiny\u202e"), (error: Error) => !error.message.includes("\u202e") && error.message.includes("\\u202e"));
  });

  it("refuses non-strings", () => {
    assert.throws(() => parseModelName(42 as unknown as string), InvalidRequestError);
  });
});

describe("parseModelRef", () => {
  it("reads full digests with or without the scheme, in either case", () => {
    assert.deepEqual(parseModelRef(DIGEST), { kind: "digest", digest: DIGEST });
    assert.deepEqual(parseModelRef("ab".repeat(32)), { kind: "digest", digest: DIGEST });
    assert.deepEqual(parseModelRef(DIGEST.toUpperCase()), { kind: "digest", digest: DIGEST });
  });

  it("reads prefixes of 4 to 63 hex digits, carrying the name a bare one could also be", () => {
    assert.deepEqual(parseModelRef("sha256:abab"), { kind: "prefix", prefix: "abab" });
    assert.deepEqual(parseModelRef("ABAB12"), { kind: "prefix", prefix: "abab12", name: { family: "abab12", tag: "latest" } });
    assert.deepEqual(parseModelRef("cafe"), { kind: "prefix", prefix: "cafe", name: { family: "cafe", tag: "latest" } });
    assert.deepEqual(parseModelRef("a".repeat(63)).kind, "prefix");
  });

  it("reads everything else as a name", () => {
    assert.deepEqual(parseModelRef("tiny:f16"), { kind: "name", family: "tiny", tag: "f16" });
    assert.deepEqual(parseModelRef("abc"), { kind: "name", family: "abc", tag: "latest" });
    assert.deepEqual(parseModelRef("beef:latest"), { kind: "name", family: "beef", tag: "latest" });
  });

  it("refuses hostile references and malformed digests", () => {
    for (const text of [...HOSTILE_NAMES, "sha256:", "sha256:abc", "sha256:xyz0", "sha256:../x", `${DIGEST}0`]) {
      assert.throws(() => parseModelRef(text), (error: unknown) => {
        assert.ok(error instanceof InvalidRequestError, `${JSON.stringify(text)} → ${String(error)}`);
        return true;
      });
    }
  });
});

describe("quoteUntrusted", () => {
  it("escapes everything outside printable ASCII and cuts long text", () => {
    assert.equal(quoteUntrusted("a\u0000b"), '"a\\u0000b"');
    assert.equal(quoteUntrusted("ｆ"), '"\\uff46"');
    assert.ok(quoteUntrusted("x".repeat(500)).length < 100);
  });
});
