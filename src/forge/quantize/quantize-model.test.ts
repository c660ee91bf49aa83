import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaChatSession, LlamaLogLevel } from "node-llama-cpp";
import { AbortedError, EngineError, InvalidRequestError } from "../../core/errors.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { generateModel, type GenerateModelResult } from "../generate/generate-model.js";
import { QUANTIZE_PARAMS_SIZE } from "./libllama-quantize.js";
import { quantizeModel, quantizerVersion } from "./quantize-model.js";
import { QUANTIZE_TYPE_NAMES, parseQuantizeType, type LadderType } from "./quantize-types.js";

// The `small` preset (5.8 M parameters, F16): every matrix row is 256 or 768 wide, so the
// K-quants (256-element super-blocks) apply to every tensor; `test-tiny` (64-wide rows)
// would make llama.cpp fall back to other types for most tensors.
let directory: string;
let source: GenerateModelResult;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-quantize-"));
  source = await generateModel({ preset: "small", seed: 1, dtype: "f16", outPath: join(directory, "small-f16.gguf") });
});
after(() => rm(directory, { recursive: true, force: true }));

/**
 * Bits per weight of the whole file (size × 8 / parameters) for each type: from the type's
 * nominal block size (e.g. Q4_K 4.5, Q2_K 2.625) to about one bit more. The extra is honest
 * overhead of a small model: norms stay F32, the tokenizer metadata (~2k tokens and merges)
 * counts, and the _M/K recipes keep output.weight (18% of this model's parameters) and some
 * ffn_down/attn_v tensors at Q6_K/Q5_K/Q4_K (measured: Q2_K 3.34, Q4_K_M 4.96, Q8_0 8.60).
 */
const BPW: Record<LadderType, [number, number]> = {
  F16: [16, 16.5],
  Q8_0: [8.5, 9.2],
  Q6_K: [6.56, 7.3],
  Q5_K_M: [5.5, 6.5],
  Q5_0: [5.5, 6.3],
  Q4_K_M: [4.5, 5.5],
  Q4_K_S: [4.5, 5.3],
  Q4_0: [4.5, 5.3],
  Q3_K_M: [3.44, 4.6],
  Q2_K: [2.63, 3.8],
};

const sha256 = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");

describe("quantizeModel", () => {
  it("quantizes to every ladder type: valid GGUF, same tensors, plausible bits per weight, shrinking down the ladder", async () => {
    assert.equal(QUANTIZE_PARAMS_SIZE, 64);
    let previous = Infinity;
    for (const type of QUANTIZE_TYPE_NAMES) {
      const output = join(directory, `small-${type}.gguf`);
      let lastProgress: [number, number] | undefined;
      const result = await quantizeModel({ input: source.path, output, type, threads: 2, onProgress: (done, total) => void (lastProgress = [done, total]) });
      assert.equal(result.type, type);
      const summary = await validateGgufFile(output);
      assert.equal(summary.parameterCount, source.parameterCount, type);
      const bpw = (summary.fileSize * 8) / summary.parameterCount;
      const [low, high] = BPW[type];
      assert.ok(bpw >= low && bpw <= high, `${type}: ${bpw.toFixed(2)} bits/weight outside [${low}, ${high}]`);
      assert.ok(bpw <= previous, `${type}: ${bpw.toFixed(2)} bits/weight, more than the type above (${previous.toFixed(2)})`);
      previous = bpw;
      assert.deepEqual(lastProgress, [summary.tensorCount, summary.tensorCount], `${type}: progress`);
      assert.equal(existsSync(`${output}.partial`), false);
    }
  });

  it("is deterministic: the same input and type give byte-identical output", async () => {
    const again = join(directory, "again-Q4_K_M.gguf");
    const first = join(directory, "small-Q4_K_M.gguf");
    if (!existsSync(first)) await quantizeModel({ input: source.path, output: first, type: "Q4_K_M" });
    await quantizeModel({ input: source.path, output: again, type: "q4_k_m" });
    assert.equal(await sha256(again), await sha256(first));
  });

  it("refuses an unknown type before starting a worker, listing the valid ones", async () => {
    await assert.rejects(quantizeModel({ input: source.path, output: join(directory, "x.gguf"), type: "Q9_K" }), (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError);
      assert.match(error.message, /Unknown quantization type 'Q9_K'; valid types: F16, Q8_0, Q6_K, .*Q2_K, and with --imatrix: IQ4_XS, .*IQ1_S$/);
      return true;
    });
    assert.equal(parseQuantizeType(" q5_k_m "), "Q5_K_M");
  });

  it("reports a failing worker as a failed job and leaves no output", async () => {
    const bogus = join(directory, "not-a-model.gguf");
    await writeFile(bogus, "this is not a GGUF file");
    const output = join(directory, "bogus-out.gguf");
    await assert.rejects(quantizeModel({ input: bogus, output, type: "Q8_0" }), (error: unknown) => {
      assert.ok(error instanceof EngineError, String(error));
      assert.match(error.message, /Quantizing to Q8_0 failed: llama_model_loader: failed to load model from /);
      return true;
    });
    assert.deepEqual((await readdir(directory)).filter((name) => name.startsWith("bogus-out")), []);
  });

  it("says why llama.cpp refused: requantizing a quantized model", async () => {
    const output = join(directory, "requantized.gguf");
    await rm(join(directory, "q4.gguf"), { force: true });
    await quantizeModel({ input: source.path, output: join(directory, "q4.gguf"), type: "Q4_0" });
    await assert.rejects(quantizeModel({ input: join(directory, "q4.gguf"), output, type: "Q2_K" }), /Quantizing to Q2_K failed: requantizing from type q4_0 is disabled/);
    assert.deepEqual((await readdir(directory)).filter((name) => name.startsWith("requantized")), []);
  });

  it("reports a worker that dies (an abort in llama.cpp) as a failed job, output removed", async () => {
    const crasher = join(directory, "crashing-job.mjs");
    // Writes part of the output, logs a tensor, then aborts like a GGML_ASSERT.
    await writeFile(
      crasher,
      'import { writeFileSync } from "node:fs";\n' +
        "export async function run({ output }) {\n" +
        '  writeFileSync(output, "GGUF partial");\n' +
        '  await new Promise(() => process.stderr.write("[   1/  57] token_embd.weight\\nGGML_ASSERT(false) failed\\n", () => process.abort()));\n' +
        "}\n",
    );
    const output = join(directory, "crashed.gguf");
    const progress: number[] = [];
    await assert.rejects(quantizeModel({ input: source.path, output, type: "Q8_0", jobModule: pathToFileURL(crasher), onProgress: (done) => progress.push(done) }), (error: unknown) => {
      assert.ok(error instanceof EngineError);
      assert.match(error.message, /^Quantizing to Q8_0 failed: the worker was killed by SIGABRT; GGML_ASSERT\(false\) failed$/);
      return true;
    });
    assert.deepEqual(progress, [1]);
    assert.deepEqual((await readdir(directory)).filter((name) => name.startsWith("crashed")), []);
  });

  it("stops on abort: the worker is killed mid-job and nothing is left", async () => {
    const output = join(directory, "aborted.gguf");
    const controller = new AbortController();
    const job = quantizeModel({ input: source.path, output, type: "Q2_K", signal: controller.signal, onProgress: () => controller.abort() });
    await assert.rejects(job, AbortedError);
    assert.deepEqual((await readdir(directory)).filter((name) => name.startsWith("aborted")), []);
  });

  it("names the quantizer version for recipes", () => {
    assert.match(quantizerVersion(), /^node-llama-cpp \d+\.\d+\.\d+ \/ llama\.cpp \S+$/);
  });

  it("writes a Q4_K_M model node-llama-cpp loads and generates with", async () => {
    const path = join(directory, "small-Q4_K_M.gguf");
    if (!existsSync(path)) await quantizeModel({ input: source.path, output: path, type: "Q4_K_M" });
    const llama = await getLlama({ gpu: false, maxThreads: 1, logLevel: LlamaLogLevel.error });
    try {
      const model = await llama.loadModel({ modelPath: path });
      const context = await model.createContext({ threads: 1, contextSize: 256 });
      const session = new LlamaChatSession({ contextSequence: context.getSequence() });
      const answer = await session.prompt("Hello", { maxTokens: 2 });
      assert.equal(typeof answer, "string");
      const tokens = model.tokenize(answer);
      assert.ok(tokens.length <= 3, `generated ${tokens.length} tokens`);
      await context.dispose();
      await model.dispose();
    } finally {
      await llama.dispose();
    }
  });
});
