import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isHeldOut, parseWordnetData, synsetText } from "./wordnet.js";

const SAMPLE = [
  "  1 This software and database is being provided to you, the LICENSEE, by  ",
  "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which is perceived or known or inferred to have its own distinct existence (living or nonliving)  ",
  '00219012 00 a 02 dry(a) 0 waterless 1 002 ! 00218440 a 0101 & 00219389 a 0000 | free from liquid or moisture; "a dry land"; "dry clothes"  ',
].join("\n");

describe("WordNet data files", () => {
  test("parses words, definitions and examples, skipping the license lines", () => {
    const [entity, dry] = parseWordnetData(SAMPLE, "noun");
    assert.deepEqual(entity, { id: "noun:00001740", pos: "noun", words: ["entity"], definition: "that which is perceived or known or inferred to have its own distinct existence (living or nonliving)", examples: [] });
    assert.deepEqual(dry?.words, ["dry", "waterless"]);
    assert.equal(dry?.definition, "free from liquid or moisture");
    assert.deepEqual(dry?.examples, ["a dry land", "dry clothes"]);
    assert.equal(synsetText(dry!), "dry: free from liquid or moisture.\na dry land.\ndry clothes.");
  });

  test("the held-out split is stable and about the share asked for", () => {
    const synsets = Array.from({ length: 4000 }, (_, index) => ({ id: `noun:${index}`, pos: "noun" as const, words: ["w"], definition: "d", examples: [] }));
    const held = synsets.filter((synset) => isHeldOut(synset, 0.05)).length;
    assert.ok(held > 140 && held < 260, `${held} of 4000`);
    assert.equal(synsets.filter((synset) => isHeldOut(synset, 0.05)).length, held);
  });

  test("a malformed record names its line", () => {
    assert.throws(() => parseWordnetData("00001740 03 n 01 entity 0 000 no gloss here", "noun"), /data.noun line 1: no gloss/);
  });
});

