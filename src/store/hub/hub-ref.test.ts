import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidRequestError } from "../../core/errors.js";
import { formatHubRef, parseHubRef } from "./hub-ref.js";

describe("parseHubRef", () => {
  test("parses owner, repository, file and revision", () => {
    assert.deepEqual(parseHubRef("hf:acme/tiny-GGUF/tiny.Q8_0.gguf@v1.2"), {
      repo: "acme/tiny-GGUF",
      owner: "acme",
      name: "tiny-GGUF",
      file: "tiny.Q8_0.gguf",
      revision: "v1.2",
    });
  });

  test("defaults the revision to main and the file to none", () => {
    const ref = parseHubRef("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    assert.equal(ref.revision, "main");
    assert.equal(ref.file, undefined);
  });

  test("accepts files in folders, commits and refs/pr revisions", () => {
    assert.equal(parseHubRef("hf:acme/repo/Q4_K_M/model-00001-of-00002.gguf").file, "Q4_K_M/model-00001-of-00002.gguf");
    assert.equal(parseHubRef(`hf:acme/repo@${"0123456789abcdef".repeat(2)}01234567`).revision.length, 40);
    assert.equal(parseHubRef("hf:acme/repo@refs/pr/1").revision, "refs/pr/1");
  });

  test("formats back to the canonical text", () => {
    assert.equal(formatHubRef(parseHubRef("hf:acme/repo/a.gguf")), "hf:acme/repo/a.gguf@main");
    assert.equal(formatHubRef(parseHubRef("hf:acme/repo@dev")), "hf:acme/repo@dev");
  });

  const refused: Array<[string, RegExp]> = [
    ["", /not a hub reference/],
    ["acme/repo", /not a hub reference/],
    ["hf:/etc/passwd", /absolute path/],
    ["hf:acme", /names no repository/],
    ["hf:acme/", /names no repository/],
    ["hf:../x", /contains '\.\.'/],
    ["hf:acme/..", /contains '\.\.'/],
    ["hf:acme/repo/../../etc/x.gguf", /contains '\.\.'/],
    ["hf:acme/repo//x.gguf", /is absolute/],
    ["hf:acme/repo/sub//x.gguf", /empty segment/],
    ["hf:acme/repo/a\\b.gguf", /backslash/],
    ["hf:acme/repo/x.gguf\0", /NUL/],
    ["hf:acme/repo/x.gguf\n", /control character/],
    ["hf:acme/repo/my model.gguf", /space/],
    ["hf:acmé/repo", /non-ASCII character U\+00E9/],
    ["hf:acme/repo/x\u202e.gguf", /non-ASCII character U\+202E/],
    ["hf:acme\uff0frepo", /non-ASCII/],
    ["hf:acme/repo/model.bin", /not a \.gguf file/],
    ["hf:acme/repo/.gguf", /only letters/],
    ["hf:-acme/repo", /must start with a letter or digit/],
    ["hf:acme/repo@", /empty/],
    ["hf:acme/repo@a..b", /contains '\.\.'/],
    ["hf:acme/repo@-x", /must start with a letter or digit/],
    ["hf:acme/repo@main/", /not a valid branch/],
    ["hf:acme/repo@x.lock", /not a valid branch/],
    ["hf:acme/repo@a@b", /more than one '@'/],
    [`hf:acme/${"r".repeat(97)}`, /longer than 96/],
  ];
  for (const [text, problem] of refused) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseHubRef(text),
        (error: unknown) => error instanceof InvalidRequestError && error.param === "ref" && problem.test(error.message),
      );
    });
  }
});
