import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BYTE_TO_UNICODE, buildBpeVocabulary, CONTROL_TOKENS, learnMerges, preTokenize, TOKEN_TYPE } from "./bpe-tokenizer.js";
import { CORPUS } from "./corpus.js";

describe("BYTE_TO_UNICODE", () => {
  it("maps the 256 bytes to distinct characters without spaces, printable ASCII to itself", () => {
    assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
    assert.equal(BYTE_TO_UNICODE[0x41], "A");
    assert.equal(BYTE_TO_UNICODE[0x20], "Ġ"); // GPT-2's space
    assert.equal(BYTE_TO_UNICODE[0x0a], "Ċ"); // and newline
    assert.ok(BYTE_TO_UNICODE.every((token) => !/\s/.test(token)));
  });
});

describe("preTokenize", () => {
  it("splits like llama.cpp's default BPE pre-tokenizer", () => {
    assert.deepEqual(preTokenize("Hello, world! It's 1234567 café"), [
      "Hello",
      ",",
      " world",
      "!",
      " It",
      "'",
      "s",
      " ",
      "123",
      "456",
      "7",
      " café",
    ]);
    assert.deepEqual(preTokenize("a  b\n\n c"), ["a", " ", " b", "\n\n", " c"]);
  });

  it("keeps every character", () => {
    assert.equal(preTokenize(CORPUS).join(""), CORPUS);
  });
});

describe("learnMerges", () => {
  it("is deterministic and breaks ties by token id", () => {
    const first = learnMerges("ab ab cd cd");
    assert.deepEqual(first, learnMerges("ab ab cd cd"));
    // Words "ab", " ab", " cd" ×2: (a,b), (Ġ,c) and (c,d) occur twice, (Ġ,a) once. Ties go
    // to the lowest left id: Ġ is byte 0x20, so (Ġ,c) merges first, then (a,b), then (Ġc,d).
    const merged = first.rules.slice(0, 3).map(([left, right]) => `${first.texts[left]} ${first.texts[right]}`);
    assert.deepEqual(merged, ["Ġ c", "a b", "Ġc d"]);
  });

  it("learns the corpus within a fraction of a second", () => {
    const start = performance.now();
    const { rules, texts } = learnMerges(CORPUS);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
    assert.ok(rules.length > 1500, `${rules.length} merges`);
    assert.equal(new Set(texts).size, texts.length);
    assert.ok(texts.includes("Ġthe") && texts.includes("Ġgrove"));
  });
});

describe("buildBpeVocabulary", () => {
  for (const size of [259, 512, 2048, 32000]) {
    it(`has exactly ${size} distinct tokens with consistent types and merges`, () => {
      const vocabulary = buildBpeVocabulary(size);
      assert.equal(vocabulary.tokens.length, size);
      assert.equal(vocabulary.tokenTypes.length, size);
      assert.equal(new Set(vocabulary.tokens).size, size);
      assert.deepEqual(vocabulary.tokens.slice(0, 256), BYTE_TO_UNICODE);
      const end = vocabulary.endOfTextTokenId;
      assert.deepEqual(vocabulary.tokens.slice(end, end + 3), [...CONTROL_TOKENS]);
      assert.deepEqual([vocabulary.imStartTokenId, vocabulary.imEndTokenId], [end + 1, end + 2]);
      assert.deepEqual(vocabulary.tokenTypes.slice(end, end + 3), [TOKEN_TYPE.control, TOKEN_TYPE.control, TOKEN_TYPE.control]);
      assert.ok(vocabulary.tokenTypes.slice(0, end).every((type) => type === TOKEN_TYPE.normal));
      vocabulary.tokens.slice(end + 3).forEach((token, index) => {
        assert.equal(token, `<|reserved_${index}|>`);
        assert.equal(vocabulary.tokenTypes[end + 3 + index], TOKEN_TYPE.unused);
      });
      const known = new Set(vocabulary.tokens.slice(0, end));
      for (const merge of vocabulary.merges) {
        const parts = merge.split(" ");
        assert.equal(parts.length, 2, merge);
        assert.ok(known.has(parts[0]) && known.has(parts[1]) && known.has(parts[0] + parts[1]), merge);
      }
      assert.equal(vocabulary.merges.length, end - 256);
    });
  }

  it("learns its merges from another corpus when given one, stopping at the size asked for", () => {
    const corpus = "oak: a tree of the genus Quercus.\nelm: a tree of the genus Ulmus.\n".repeat(50);
    const vocabulary = buildBpeVocabulary(300, corpus);
    assert.equal(vocabulary.tokens.length, 300);
    assert.ok(vocabulary.tokens.includes("Ġgenus"), "a word of that corpus is one token");
    assert.ok(!vocabulary.tokens.includes("Ġgrove"), "none of the embedded corpus");
    const { texts } = learnMerges(corpus, 10);
    assert.equal(texts.length, 256 + 10);
  });

  it("rejects sizes below the byte and control tokens", () => {
    assert.throws(() => buildBpeVocabulary(258), RangeError);
  });
});
