import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseModelCard } from "./model-card.js";

describe("parseModelCard", () => {
  test("reads a single base model, the relation and the licence", () => {
    const card = parseModelCard("---\nlicense: apache-2.0\nbase_model: acme/base-7b\nbase_model_relation: quantized\ntags:\n- gguf\n---\n# Title\n");
    assert.deepEqual(card, { baseModels: ["acme/base-7b"], relation: "quantized", license: "apache-2.0" });
  });

  test("reads block and flow lists, quotes and comments", () => {
    const block = parseModelCard('---\nbase_model:\n  - "acme/one"\n  - acme/two # the second\nbase_model_relation: merge\n---\n');
    assert.deepEqual(block.baseModels, ["acme/one", "acme/two"]);
    assert.equal(block.relation, "merge");
    const flow = parseModelCard("---\r\nbase_model: ['acme/one', acme/two]\r\n---\r\n");
    assert.deepEqual(flow.baseModels, ["acme/one", "acme/two"]);
  });

  test("skips nested maps and block scalars without losing later keys", () => {
    const card = parseModelCard(
      "---\nmodel-index:\n  - name: x\n    results: []\nwidget: |\n  base_model: fake/one\nbase_model: acme/real\n---\n",
    );
    assert.deepEqual(card.baseModels, ["acme/real"]);
  });

  test("ignores an unknown relation and text without front matter", () => {
    assert.equal(parseModelCard("---\nbase_model_relation: distilled\n---\n").relation, undefined);
    assert.deepEqual(parseModelCard("# Just a title\nbase_model: acme/x\n"), { baseModels: [], relation: undefined, license: undefined });
    assert.deepEqual(parseModelCard("---\nbase_model: acme/x\nno closing line").baseModels, []);
  });
});
