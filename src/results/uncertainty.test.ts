import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareScores, standardErrorOfMean, standardErrorsFromSamples } from "./uncertainty.js";

// Worked by hand: the standard errors and the significance rule on small constructed results.

const close = (actual: number | null | undefined, expected: number, what: string) => assert.ok(typeof actual === "number" && Math.abs(actual - expected) < 1e-12, `${what}: ${actual} vs ${expected}`);

describe("standard errors", () => {
  it("of a mean: sample deviation over √n; none from fewer than two values", () => {
    // [1, 0, 1, 1]: mean 0.75, Σ(x − m)² = 0.0625·3 + 0.5625 = 0.75, s² = 0.25, SE = √(0.25/4) = 0.25.
    close(standardErrorOfMean([1, 0, 1, 1]), 0.25, "SE");
    assert.equal(standardErrorOfMean([3]), null);
  });

  it("of accuracy from per-item results, and of perplexity from per-chunk NLL by the delta method", () => {
    const errors = standardErrorsFromSamples({ acc: 0.75, perplexity: Math.exp(2), bitsPerByte: 1.5 }, { unit: "item", values: { acc: [1, 0, 1, 1], nll: [1.9, 2.1] } });
    close(errors.acc, 0.25, "acc");
    // NLL [1.9, 2.1]: mean 2, s² = 0.02, SE = √(0.02/2) = 0.1; perplexity e² · 0.1; bits per byte 1.5 · 0.1 / 2.
    close(errors.perplexity, Math.exp(2) * 0.1, "perplexity");
    close(errors.bitsPerByte, 0.075, "bitsPerByte");
  });
});

describe("comparing two results", () => {
  it("paired per item: the SE of the mean difference, significant beyond 1.96", () => {
    // Items: a = [1,1,1,1,0,0,0,0], b = [1,1,1,1,1,1,1,0]: differences [0,0,0,0,1,1,1,0], mean 0.375,
    // s² = (5·0.140625 + 3·0.390625)/7 = 0.267857…, SE = √(s²/8) = 0.182981…, z = 2.0494 > 1.96.
    const a = { metrics: { acc: 0.5 }, samples: { unit: "item" as const, values: { acc: [1, 1, 1, 1, 0, 0, 0, 0] } } };
    const b = { metrics: { acc: 0.875 }, samples: { unit: "item" as const, values: { acc: [1, 1, 1, 1, 1, 1, 1, 0] } } };
    const comparison = compareScores(a, b, "acc")!;
    assert.equal(comparison.paired, true);
    assert.equal(comparison.units, 8);
    close(comparison.difference, 0.375, "difference");
    close(comparison.standardError, Math.sqrt((5 * 0.140625 + 3 * 0.390625) / 7 / 8), "SE");
    assert.equal(comparison.significant, true);
    // One item fewer changed: differences [0,0,0,0,1,1,0,0], mean 0.25, s² = 0.214286, SE = 0.163663, z = 1.5275: within noise.
    const c = { metrics: { acc: 0.75 }, samples: { unit: "item" as const, values: { acc: [1, 1, 1, 1, 1, 1, 0, 0] } } };
    assert.equal(compareScores(a, c, "acc")!.significant, false);
  });

  it("unpaired when per-unit values are missing: √(SE_a² + SE_b²); unknown when an error is", () => {
    // 10.0 ± 0.3 against 11.0 ± 0.4: SE 0.5, z = 2 > 1.96.
    const comparison = compareScores({ metrics: { perplexity: 10 }, standardErrors: { perplexity: 0.3 } }, { metrics: { perplexity: 11 }, standardErrors: { perplexity: 0.4 } }, "perplexity")!;
    assert.equal(comparison.paired, false);
    close(comparison.standardError, 0.5, "SE");
    assert.equal(comparison.significant, true);
    assert.equal(compareScores({ metrics: { perplexity: 10 }, standardErrors: { perplexity: 0.3 } }, { metrics: { perplexity: 10.9 }, standardErrors: { perplexity: 0.4 } }, "perplexity")!.significant, false);
    assert.equal(compareScores({ metrics: { perplexity: 10 } }, { metrics: { perplexity: 11 }, standardErrors: { perplexity: 0.4 } }, "perplexity")!.significant, null);
    assert.equal(compareScores({ metrics: { perplexity: null } }, { metrics: { perplexity: 11 } }, "perplexity"), null);
  });

  it("perplexity is compared on its log, the per-chunk NLL", () => {
    const a = { metrics: { perplexity: Math.exp(2) }, samples: { unit: "chunk" as const, values: { nll: [1.9, 2.1, 2.0, 2.0] } } };
    const b = { metrics: { perplexity: Math.exp(2.05) }, samples: { unit: "chunk" as const, values: { nll: [1.95, 2.15, 2.05, 2.05] } } };
    // Every chunk 0.05 worse: the paired differences have no spread, so the difference is certain.
    const comparison = compareScores(a, b, "perplexity")!;
    assert.ok(comparison.standardError! < 1e-12);
    assert.equal(comparison.significant, true);
    close(comparison.difference, Math.exp(2.05) - Math.exp(2), "difference on the perplexity scale");
  });
});
