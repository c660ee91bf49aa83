import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidRequestError } from "../../core/errors.js";
import { resolveFinetuneParameters } from "./finetune-job.js";
import { learningRateAt, learningRateAtStep } from "./libllama-train.js";

describe("learning-rate schedules", () => {
  const rates = { learningRate: 1e-3, learningRateMin: 1e-4 };

  it("per epoch: linear from the first rate to the last", () => {
    assert.equal(learningRateAt({ ...rates, epochs: 3 }, 0), 1e-3);
    assert.ok(Math.abs(learningRateAt({ ...rates, epochs: 3 }, 1) - 5.5e-4) < 1e-12);
    assert.ok(Math.abs(learningRateAt({ ...rates, epochs: 3 }, 2) - 1e-4) < 1e-15);
    assert.equal(learningRateAt({ ...rates, epochs: 1 }, 0), 1e-3);
  });

  it("per step: linear warm-up to the peak, then cosine decay to the minimum at the last step", () => {
    assert.ok(Math.abs(learningRateAtStep(rates, 100, 1, 1000) - 1e-5) < 1e-15);
    assert.ok(Math.abs(learningRateAtStep(rates, 100, 50, 1000) - 5e-4) < 1e-15);
    assert.equal(learningRateAtStep(rates, 100, 100, 1000), 1e-3);
    assert.ok(Math.abs(learningRateAtStep(rates, 100, 550, 1000) - 5.5e-4) < 1e-12, "half way through the decay: the mean of peak and minimum");
    assert.ok(Math.abs(learningRateAtStep(rates, 100, 1000, 1000) - 1e-4) < 1e-15);
    let previous = Infinity;
    for (let step = 100; step <= 1000; step += 50) {
      const rate = learningRateAtStep(rates, 100, step, 1000);
      assert.ok(rate <= previous, `falls after the warm-up (step ${step})`);
      previous = rate;
    }
    assert.equal(learningRateAtStep(rates, 0, 1, 10), learningRateAtStep(rates, 0, 1, 10), "no warm-up is allowed");
  });

  it("refuses a warm-up that is not a whole, non-negative number of steps", () => {
    for (const warmupSteps of [-1, 2.5, Number.NaN]) {
      assert.throws(() => resolveFinetuneParameters({ warmupSteps }), (error: unknown) => error instanceof InvalidRequestError && /warmup must be a whole number of steps/.test(error.message));
    }
    assert.equal(resolveFinetuneParameters({ warmupSteps: 200 }).warmupSteps, 200);
    assert.equal(resolveFinetuneParameters({}).warmupSteps, undefined);
  });
});
