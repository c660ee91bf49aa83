import assert from "node:assert/strict";
import { test } from "node:test";
import { summarizeTensorNames } from "./repackage.js";

test("summarizeTensorNames groups a tensor across blocks with its count, keeping the rest by name", () => {
  assert.equal(
    summarizeTensorNames(["token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight"]),
    "token_embd.weight, blk.*.attn_k.weight (2), blk.*.attn_v.weight (2)",
  );
  assert.equal(summarizeTensorNames([]), "");
});
