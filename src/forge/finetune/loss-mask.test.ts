import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getLlama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { answerTokensPerWindow, chatLossMask } from "./loss-mask.js";
import { tokenizeRecords } from "./tokenize-records.js";

describe("the loss mask of chat records", () => {
  test("a worked example by hand: the answers' content and end-of-turn tokens count, nothing else", () => {
    // A made-up template: 1 = BOS, 2 <user>, 3 <assistant>, 9 <end> (ends generation), 4…8 words.
    // <BOS> <user> 4 5 <end> <assistant> 6 7 <end> <user> 8 <end> <assistant> 6 <end>
    const full = [1, 2, 4, 5, 9, 3, 6, 7, 9, 2, 8, 9, 3, 6, 9];
    const turns = [
      { prompt: [1, 2, 4, 5, 9, 3], withAnswer: [1, 2, 4, 5, 9, 3, 6, 7] },
      { prompt: [1, 2, 4, 5, 9, 3, 6, 7, 9, 2, 8, 9, 3], withAnswer: [1, 2, 4, 5, 9, 3, 6, 7, 9, 2, 8, 9, 3, 6] },
    ];
    const mask = chatLossMask(full, turns, (token) => token === 9);
    assert.deepEqual([...mask], [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1]);
  });

  test("a token the tokenizer merged across the answer's edges counts as the answer's", () => {
    // The prompt ends in 3 ("assistant:"), but the full text tokenized "assistant: Hi" as 30, 6.
    const full = [1, 2, 4, 9, 30, 6, 70, 9];
    const turns = [{ prompt: [1, 2, 4, 9, 3], withAnswer: [1, 2, 4, 9, 30, 6, 7] }];
    // withAnswer's last token 7 became 70 (merged with what follows): 70 counts, then the <end>.
    assert.deepEqual([...chatLossMask(full, turns, (token) => token === 9)], [0, 0, 0, 0, 1, 1, 1, 1]);
  });

  test("answer tokens per window: the labels of window w are tokens w·stride + 1 … w·stride + n", () => {
    const mask = Uint8Array.from([0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1]);
    // n = 4, stride = 2: window 0 labels 1–4, window 1 labels 3–6, window 2 labels 5–8, window 3 labels 7–10.
    assert.deepEqual([...answerTokensPerWindow(mask, 4, 2, 4)], [2, 2, 0, 1]);
  });
});

describe("tokenizing chat records with the loss on answers", () => {
  let base: TestModel;
  let model: LlamaModel;
  const conversation = {
    kind: "chat" as const,
    messages: [
      { role: "system" as const, content: "Be brief." },
      { role: "user" as const, content: "What is a grove?" },
      { role: "assistant" as const, content: "A small group of trees." },
      { role: "user" as const, content: "And a wood?" },
      { role: "assistant" as const, content: "A larger one." },
    ],
  };

  before(async () => {
    base = await createTestModel("test-tiny", 7);
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: base.path, vocabOnly: true });
  });
  after(async () => {
    await model.dispose();
    await base.cleanup();
  });

  /** The runs of tokens the mask keeps, as text (special tokens written out). */
  const trainedRuns = (tokens: Int32Array, mask: Uint8Array, from = 0, to = tokens.length): string[] => {
    const runs: string[] = [];
    let run: Token[] = [];
    for (let index = from; index <= to; index++) {
      if (index < to && mask[index] === 1) run.push(tokens[index] as Token);
      else if (run.length > 0) {
        runs.push(model.detokenize(run, true));
        run = [];
      }
    }
    return runs;
  };

  test("ChatML: each answer and its <|im_end|> are trained; BOS, the system and user turns and the template's headers are not", async () => {
    const { tokens, lossMask } = await tokenizeRecords(base.path, [conversation], { lossOn: "answers" });
    assert.ok(lossMask !== null);
    assert.equal(lossMask.length, tokens.length);
    assert.deepEqual(trainedRuns(tokens, lossMask), ["A small group of trees.<|im_end|>", "A larger one.<|im_end|>"]);
    // What is left out, read back: the rest of the rendering.
    const untrained = model.detokenize([...tokens].filter((_, index) => lossMask[index] === 0) as Token[], true);
    assert.equal(untrained, "<|endoftext|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is a grove?<|im_end|>\n<|im_start|>assistant\n\n<|im_start|>user\nAnd a wood?<|im_end|>\n<|im_start|>assistant\n");
    assert.equal(lossMask.reduce((sum, value) => sum + value, 0), 22, "13 + 7 content tokens and two end-of-turn tokens");
  });

  test("text records count every token; loss on all makes no mask; padding never counts", async () => {
    const text = { kind: "text" as const, text: "Trees grow." };
    const mixed = await tokenizeRecords(base.path, [text, conversation], { lossOn: "answers" });
    const textLength = (await tokenizeRecords(base.path, [text])).tokens.length;
    assert.ok(textLength > 3 && mixed.tokens.length > textLength);
    assert.ok(mixed.lossMask!.subarray(0, textLength).every((value) => value === 1), "the text record trains on every token");
    assert.equal((await tokenizeRecords(base.path, [text, conversation], { lossOn: "all" })).lossMask, null);
    const padded = await tokenizeRecords(base.path, [conversation], { lossOn: "answers", windowSize: 256 });
    assert.equal(padded.tokens.length, 2 * 256 + 1);
    assert.deepEqual(trainedRuns(padded.tokens, padded.lossMask!), ["A small group of trees.<|im_end|>", "A larger one.<|im_end|>"], "the EOS padding is not trained");
  });
});
