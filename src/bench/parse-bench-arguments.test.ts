import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { describe, test } from "node:test";
import { InvalidRequestError } from "../core/errors.js";
import { parseBenchArguments } from "./parse-bench-arguments.js";

describe("parseBenchArguments", () => {
  test("defaults: both generated models, both servers, 8 slots of 1024 tokens", () => {
    const options = parseBenchArguments([]);
    assert.deepEqual(options.presets, ["small", "llama-1b"]);
    assert.deepEqual(options.servers, ["grove", "llama-server"]);
    assert.equal(options.threads, availableParallelism());
    assert.equal(options.parallel, 8);
    assert.equal(options.contextSize, 1024);
    assert.equal(options.repeats, 5);
    assert.deepEqual(options.concurrency, [4, 8]);
  });

  test("reads lists and numbers", () => {
    const options = parseBenchArguments(["--models", "small", "--repeats", "2", "--servers", "grove", "--concurrency", "2,4", "--json"]);
    assert.deepEqual(options.presets, ["small"]);
    assert.equal(options.repeats, 2);
    assert.deepEqual(options.servers, ["grove"]);
    assert.deepEqual(options.concurrency, [2, 4]);
    assert.equal(options.json, true);
  });

  const rejected: [string, string[], string][] = [
    ["an unknown model", ["--models", "tiny"], "--models"],
    ["a missing file", ["--model", "/nonexistent/model.gguf"], "--model"],
    ["a non-numeric count", ["--repeats", "five"], "--repeats"],
    ["a fractional count", ["--threads", "1.5"], "--threads"],
    ["zero", ["--repeats", "0"], "--repeats"],
    ["more streams than slots", ["--parallel", "4", "--concurrency", "8"], "--concurrency"],
    ["a long prompt beyond the context", ["--ctx-size", "256"], "--long-prompt"],
    ["an unknown server", ["--servers", "vllm"], "--servers"],
  ];
  for (const [what, argv, param] of rejected) {
    test(`rejects ${what}, naming ${param}`, () => {
      assert.throws(() => parseBenchArguments(argv), (error) => error instanceof InvalidRequestError && error.param === param);
    });
  }

  test("rejects an unknown flag", () => {
    assert.throws(() => parseBenchArguments(["--fast"]), InvalidRequestError);
  });
});
