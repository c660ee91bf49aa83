import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answer, balancedByPos, chatPrompt, chatRecord, definitionSynsets, exactMatchDocs, multipleChoiceDocs, posRecord } from "./chat-task.js";
import type { Synset } from "./wordnet.js";

const synset = (id: number, word: string, definition: string, pos: Synset["pos"] = "noun"): Synset => ({ id: `${pos}:${String(id).padStart(8, "0")}`, pos, words: [word], definition, examples: [] });

const POOL: Synset[] = [
  synset(1, "dog", "a member of the genus Canis"),
  synset(2, "cat", "feline mammal usually having thick soft fur"),
  synset(3, "tree", "a tall perennial woody plant having a main trunk"),
  synset(4, "river", "a large natural stream of water"),
  synset(5, "run", "move fast by using one's feet", "verb"),
  synset(6, "dog", "a dull unattractive unpleasant girl or woman"),
  synset(7, "X-ray", "electromagnetic radiation of short wavelength"),
  synset(8, "it", "a"),
  synset(9, "lamp", "a piece of furniture holding one or more electric light bulbs"),
];

describe("demo chat task", () => {
  it("keeps one synset per plain head word with a definition of 3 to 24 words, in a seeded order", () => {
    const chosen = definitionSynsets(POOL, 1);
    const words = chosen.map((item) => item.words[0]).sort();
    assert.deepEqual(words, ["cat", "dog", "lamp", "river", "run", "tree"]);
    assert.equal(chosen.find((item) => item.words[0] === "dog")!.definition, "a member of the genus Canis");
    assert.deepEqual(definitionSynsets(POOL, 1), chosen, "same seed, same order");
    assert.notDeepEqual(definitionSynsets(POOL, 2).map((item) => item.id), chosen.map((item) => item.id));
  });

  it("renders records and prompts in the same words", () => {
    const record = chatRecord(POOL[0]!);
    assert.deepEqual(record.messages, [
      { role: "user", content: "What does dog mean?" },
      { role: "assistant", content: "A member of the genus Canis." },
    ]);
    assert.equal(chatPrompt("dog"), "<|im_start|>user\nWhat does dog mean?<|im_end|>\n<|im_start|>assistant\n");
  });

  it("builds multiple-choice documents with the answer among same-part-of-speech distractors", () => {
    const nouns = definitionSynsets(POOL, 1).filter((item) => item.pos === "noun");
    const docs = multipleChoiceDocs(nouns, nouns, 3);
    for (const [index, doc] of docs.entries()) {
      assert.equal(doc.choices.length, 4);
      assert.equal(new Set(doc.choices).size, 4, "distinct choices");
      assert.equal(doc.choices[doc.answer], answer(nouns[index]!));
      assert.ok(!doc.choices.includes(answer(POOL[4]!)), "no verb definition among noun choices");
    }
    assert.deepEqual(multipleChoiceDocs(nouns, nouns, 3), docs);
    const positions = new Set(multipleChoiceDocs([...nouns, ...nouns, ...nouns], nouns, 5).map((doc) => doc.answer));
    assert.ok(positions.size > 1, "the answer's position varies");
  });

  it("builds exact-match documents that stop at the end of the turn", () => {
    const [doc] = exactMatchDocs([POOL[3]!]);
    assert.deepEqual(doc, { type: "generate_until", context: chatPrompt("river"), answer: "A large natural stream of water.", until: ["<|im_end|>"], max_tokens: 48 });
  });

  it("balances the part-of-speech words: as many of each part as the rarest has, interleaved", () => {
    const items = [
      ...["a", "b", "c", "d", "e"].map((word) => ({ word, pos: "noun" as const })),
      ...["f", "g", "h"].map((word) => ({ word, pos: "verb" as const })),
      ...["i", "j"].map((word) => ({ word, pos: "adj" as const })),
      ...["k", "l", "m"].map((word) => ({ word, pos: "adv" as const })),
    ];
    assert.deepEqual(balancedByPos(items, 10).map((item) => item.word), ["a", "f", "i", "k", "b", "g", "j", "l"]);
    assert.deepEqual(balancedByPos(items, 1).map((item) => item.pos), ["noun", "verb", "adj", "adv"]);
    assert.deepEqual(balancedByPos(items.filter((item) => item.pos !== "adv"), 10), [], "a missing part leaves none");
  });

  it("asks the part of speech in a short question with a one-word answer", () => {
    assert.deepEqual(posRecord({ word: "quickly", pos: "adv" }).messages, [
      { role: "user", content: "What part of speech is quickly?" },
      { role: "assistant", content: "adverb." },
    ]);
  });
});
