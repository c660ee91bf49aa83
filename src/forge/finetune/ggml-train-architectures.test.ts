import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createFinetuneFixture, type FinetuneFixture } from "../../test-support/finetune-fixture.js";
import { createFinetuneJob, runFinetuneJob, type Trainer } from "./finetune-job.js";

// Each architecture Grove's ggml graph builds, proven as the Llama graph is in finetune-job.test.ts:
// the loss of the first step (the forward pass, before any update) equals llama.cpp's for the
// same weights and tokens. A random model's loss is close to ln(vocabulary) whatever the graph
// does, so the comparison is repeated on a fork Grove's trainer has trained: its loss is far below
// that, and a graph that differed from llama.cpp's would have trained weights that llama.cpp scores
// differently. Measured: Qwen2 with Llama's RoPE mode instead of NEOX differs from llama.cpp by
// 4e-5 on the random base (inside the 1e-3 the Llama test allows) but by 1e-2 on the trained fork,
// Llama 3 without its RoPE factors by 4e-6 and 2e-3; the right graph gives the same loss to the
// last digit on both.
for (const [preset, architecture] of [
  ["test-tiny", "llama"],
  ["llama3-tiny", "llama"],
  ["qwen2-tiny", "qwen2"],
  ["qwen3-tiny", "qwen3"],
] as const) {
  describe(`Grove's ggml graph of ${architecture} (${preset})`, () => {
    let fixture: FinetuneFixture;
    before(async () => void (fixture = await createFinetuneFixture(preset, `${preset}:base`)));
    after(async () => {
      await fixture.store.close();
      await fixture.base.cleanup();
    });

    const firstStepLoss = async (model: string, trainer: Trainer): Promise<number> => {
      const { store, jobs, dataPath } = fixture;
      const job = await createFinetuneJob(store, jobs, { model, data: dataPath, epochs: 1, threads: 1, trainer });
      let loss = Number.NaN;
      await runFinetuneJob(store, jobs, job.id, { onEvent: (event) => void (event.event === "step" && event.step === 1 && !event.validation && (loss = event.loss)) });
      return loss;
    };

    test("computes llama.cpp's loss, before and after Grove's trainer trained it", async (context) => {
      const { store, jobs, dataPath } = fixture;
      const name = `${preset}:ft`;
      const job = await createFinetuneJob(store, jobs, { model: `${preset}:base`, data: dataPath, epochs: 4, learningRate: 2e-3, threads: 1, name, trainer: "ggml" });
      const finished = await runFinetuneJob(store, jobs, job.id);
      assert.equal(finished.status, "succeeded");
      // Every tensor trains, biases and head norms included; Llama 3's RoPE factors are a fixed table.
      assert.deepEqual(finished.untrainedTensors ?? [], preset === "llama3-tiny" ? ["rope_freqs.weight"] : []);
      const losses: Record<string, { ggml: number; llama: number }> = {};
      for (const model of [`${preset}:base`, name]) {
        const [ggml, llama] = [await firstStepLoss(model, "ggml"), await firstStepLoss(model, "llama.cpp")];
        losses[model] = { ggml, llama };
        context.diagnostic(`${model}: first-step loss ${ggml} (ggml) vs ${llama} (llama.cpp), difference ${Math.abs(ggml - llama).toExponential(2)}`);
        // Float sums in another order would differ in the last digits.
        assert.ok(Math.abs(ggml - llama) < 1e-4 * llama, `${model}: first-step loss ${ggml} (ggml) vs ${llama} (llama.cpp)`);
      }
      const { ggml: trained } = losses[name]!;
      const { ggml: untrained } = losses[`${preset}:base`]!;
      assert.ok(trained < 0.6 * untrained, `the trained fork's loss ${trained} is far below the base's ${untrained}, so the comparison tests the graph`);
    });
  });
}
