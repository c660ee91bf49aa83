import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaChatSession, LlamaLogLevel, type Llama } from "node-llama-cpp";
import type { Digest } from "../../core/digest.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout } from "../../gguf/gguf-tensor-layout.js";
import { ModelStore } from "../../store/model-store.js";
import { generateModel } from "../generate/generate-model.js";
import { recipeOf } from "../recipe/recipe.js";
import { rebuildFork } from "../recipe/rebuild.js";
import { QUANTIZE_TOOL, quantizeFork } from "./quantize-fork.js";
import { quantizerVersion } from "./quantize-model.js";
import { QUANTIZE_TYPE_NAMES, type LadderType } from "./quantize-types.js";

// The acceptance test of the quantize ladder: every type gives a fork that loads, has the size
// its type promises, and carries a recipe that rebuilds it bit for bit.
//
// `small` is the smallest preset whose every matrix has rows of a multiple of 256 (256, 768),
// so the K-quants (256-element super-blocks) apply everywhere; `test-tiny` (64-wide rows) would
// make llama.cpp fall back to Q4_0/Q5_0/Q8_0 for most tensors.

/**
 * Per type: the ggml type that must hold most of the weights, and the range of bits per weight
 * over the matrix tensors (norms, 1-D and F32, excluded), from the tensor table. The low end is
 * llama.cpp's nominal bpw of the main type (Q8_0 8.5, Q6_K 6.5625, Q5_K/Q5_0 5.5, Q4_K/Q4_0 4.5,
 * Q3_K 3.4375, Q2_K 2.625, F16 16); pure types sit exactly on it. The mixes go higher because
 * llama.cpp keeps output.weight at Q6_K (9% of this model) and, for _M/_S/Q2_K/Q3_K, some
 * attn_v/ffn_down at Q4_K–Q6_K (measured on seed 5: Q5_K_M 5.68, Q5_0 5.60, Q4_K_M 4.85,
 * Q4_K_S 4.71, Q4_0 4.69, Q3_K_M 4.06, Q2_K 3.23).
 *
 * | type   | main  | nominal | range          |
 * |--------|-------|---------|----------------|
 * | F16    | F16   | 16      | 16             |
 * | Q8_0   | Q8_0  | 8.5     | 8.5            |
 * | Q6_K   | Q6_K  | 6.5625  | 6.5625         |
 * | Q5_K_M | Q5_K  | 5.5     | 5.5 – 6.0      |
 * | Q5_0   | Q5_0  | 5.5     | 5.5 – 5.8      |
 * | Q4_K_M | Q4_K  | 4.5     | 4.5 – 5.0      |
 * | Q4_K_S | Q4_K  | 4.5     | 4.5 – 4.9      |
 * | Q4_0   | Q4_0  | 4.5     | 4.5 – 4.8      |
 * | Q3_K_M | Q3_K  | 3.4375  | 3.4375 – 4.2   |
 * | Q2_K   | Q2_K  | 2.625   | 2.625 – 3.4    |
 */
const LADDER: Record<LadderType, { main: string; nominal: number; max: number }> = {
  F16: { main: "F16", nominal: 16, max: 16 },
  Q8_0: { main: "Q8_0", nominal: 8.5, max: 8.5 },
  Q6_K: { main: "Q6_K", nominal: 6.5625, max: 6.5625 },
  Q5_K_M: { main: "Q5_K", nominal: 5.5, max: 6.0 },
  Q5_0: { main: "Q5_0", nominal: 5.5, max: 5.8 },
  Q4_K_M: { main: "Q4_K", nominal: 4.5, max: 5.0 },
  Q4_K_S: { main: "Q4_K", nominal: 4.5, max: 4.9 },
  Q4_0: { main: "Q4_0", nominal: 4.5, max: 4.8 },
  Q3_K_M: { main: "Q3_K", nominal: 3.4375, max: 4.2 },
  Q2_K: { main: "Q2_K", nominal: 2.625, max: 3.4 },
};

/** Bits per weight of each matrix tensor type and of all matrices together, from the tensor table. */
async function matrixBits(path: string): Promise<{ overall: number; byType: Map<string, { bits: number; elements: number }> }> {
  const byType = new Map<string, { bits: number; elements: number }>();
  for (const tensor of ggufTensorLayout(await readGgufHeader(path)).tensors.values()) {
    if (tensor.shape.length < 2) continue;
    const entry = byType.get(tensor.type) ?? { bits: 0, elements: 0 };
    entry.bits += tensor.bytes * 8;
    entry.elements += tensor.shape.reduce((product, dim) => product * dim, 1);
    byType.set(tensor.type, entry);
  }
  const totals = [...byType.values()].reduce((sum, entry) => ({ bits: sum.bits + entry.bits, elements: sum.elements + entry.elements }), { bits: 0, elements: 0 });
  return { overall: totals.bits / totals.elements, byType };
}

let directory: string;
let store: ModelStore;
let source: Digest;
let llama: Llama;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-ladder-"));
  store = await ModelStore.open(join(directory, "home"));
  const generated = await generateModel({ preset: "small", seed: 5, dtype: "f16", outPath: join(directory, "small.gguf") });
  source = (await store.importFile(generated.path, { name: "small:f16" })).model.digest;
  llama = await getLlama({ gpu: false, maxThreads: 2, logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
  await store?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("the quantize ladder", () => {
  for (const type of QUANTIZE_TYPE_NAMES) {
    it(`${type}: a fork that loads, at ${LADDER[type].nominal} bits per weight or a little more, whose recipe rebuilds it`, async () => {
      const name = `ladder:${type.toLowerCase()}`;
      const fork = await quantizeFork(store, { model: source, type, name, threads: 2 });
      const digest = fork.import.model.digest;
      const path = store.blobs.pathOf(digest);

      const { main, nominal, max } = LADDER[type];
      const { overall, byType } = await matrixBits(path);
      const mainType = [...byType].sort((x, y) => y[1].elements - x[1].elements)[0]!;
      assert.equal(mainType[0], main, `${type}: most weights are ${mainType[0]}`);
      assert.equal(mainType[1].bits / mainType[1].elements, nominal, `${type}: ${main} tensors are not at ${nominal} bits/weight`);
      assert.ok(overall >= nominal - 1e-9 && overall <= max, `${type}: ${overall.toFixed(4)} bits/weight over the matrices, outside [${nominal}, ${max}]`);
      // A K mix that fell back (rows not a multiple of 256) would hold legacy blocks.
      if (main.endsWith("_K")) assert.deepEqual([...byType.keys()].filter((each) => !each.endsWith("_K")), [], `${type}: fell back to legacy types`);

      const model = await llama.loadModel({ modelPath: path });
      try {
        const context = await model.createContext({ contextSize: 128, threads: 2 });
        const session = new LlamaChatSession({ contextSequence: context.getSequence() });
        assert.equal(typeof (await session.prompt("Hi", { maxTokens: 1 })), "string");
        await context.dispose();
      } finally {
        await model.dispose();
      }

      const details = await store.show(name);
      assert.deepEqual(
        details.parents.map((edge) => [edge.parent, edge.relation, edge.recipe]),
        [[source, "quantized", { tool: QUANTIZE_TOOL, toolVersion: quantizerVersion(), parameters: { type }, inputs: [source] }]],
      );
      const rebuilt = await rebuildFork(store, await recipeOf(store, name), { threads: 2 });
      assert.equal(rebuilt.import.model.digest, digest, `${type}: the rebuild differs`);
      assert.equal(rebuilt.matches, true);
      assert.equal(rebuilt.import.created, false);
      assert.deepEqual(await readdir(join(store.home, "tmp")), []);
    });
  }
});
