import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { ConfigError } from "../core/errors.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { estimateModelMemory } from "../plan/memory-estimate.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import type { PoolReport } from "../serving/model-pool.js";

// `grove serve --model-settings`: two generated test-tiny models (training context 1024) served
// with their own ctx and slots beside the global --ctx-size/--parallel. /api/loaded reports each
// model's shape and an estimate at that shape; a prompt past the small model's context is a 400
// there and fine on the other; bad settings stop the start with an error naming the flag.

const SETTINGS = "tiny:short=ctx:256,slots:1;tiny:long=ctx:1024,slots:3";
let directory: string;
let home: string;
let grove: RunningGrove;
let client: OpenAI;
const paths: Record<string, string> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-model-settings-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [name, seed] of [["tiny:short", 1], ["tiny:long", 2]] as const) {
    paths[name] = join(directory, `${seed}.gguf`);
    await generateModel({ preset: "test-tiny", seed, dtype: "f16", outPath: paths[name] });
    await store.importFile(paths[name], { name, mode: "copy" });
  }
  await store.close();
  grove = await startGrove(config({ modelSettings: SETTINGS }));
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

function config(flags: Record<string, unknown>) {
  return loadConfig({ env: {}, flags: { home, model: "tiny:short", port: 0, threads: 1, parallel: 2, contextSize: 512, maxModels: 2, logLevel: "silent", ...flags } });
}

// About 300 tokens of prompt: past 256, well within 1024.
const longPrompt = Array.from({ length: 60 }, (_, index) => `item ${index} is green.`).join(" ");

describe("per-model ctx and slots", () => {
  test("each model loads with its own ctx × slots, and /api/loaded reports them with a matching estimate", async () => {
    await client.chat.completions.create({ model: "tiny:long", messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
    const report = (await (await fetch(`${grove.url}/api/loaded`)).json()) as PoolReport;
    const byShape = report.models.map((model) => [model.contextSize, model.slots, model.slotsTotal]).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(byShape, [[256, 1, 1], [1024, 3, 3]]);
    for (const [name, contextSize, slots] of [["tiny:short", 256, 1], ["tiny:long", 1024, 3]] as const) {
      const expected = await estimateModelMemory(paths[name]!, { contextSize, slots });
      const entry = report.models.find((model) => model.contextSize === contextSize)!;
      assert.equal(entry.estimate.kvCacheBytes, expected.kvCacheBytes, name);
    }
    const engineShapes = grove.engine.models.map((model) => [model.info.contextSize, model.info.slots]).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(engineShapes, [[256, 1], [1024, 3]]);
  });

  test("a prompt longer than the small model's ctx is a 400 context error there and works on the other", async () => {
    const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: "user", content: longPrompt }], max_tokens: 4 });
    const fine = await ask("tiny:long");
    assert.ok(fine.usage!.prompt_tokens > 256 && fine.usage!.prompt_tokens < 1000, `prompt of ${fine.usage!.prompt_tokens} tokens`);
    await assert.rejects(ask("tiny:short"), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 400);
      assert.equal(error.code, "context_length_exceeded");
      assert.match(error.message, /holds 256 tokens/);
      return true;
    });
  });

  for (const [settings, pattern] of [
    ["tiny:nothere=ctx:256", /--model-settings \(GROVE_MODEL_SETTINGS\) names 'tiny:nothere', which is not a model/],
    ["tiny:long=ctx:2048", /ctx 2048 for 'tiny:long' is above the model's training context of 1024/],
  ] as const) {
    test(`refuses to start with ${settings}`, async () => {
      await assert.rejects(startGrove(config({ modelSettings: settings })), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.param, "--model-settings");
        assert.match(error.message, pattern);
        return true;
      });
    });
  }

  test("refuses --model-settings beside --model FILE", async () => {
    await assert.rejects(startGrove(config({ model: paths["tiny:long"], modelSettings: "tiny:long=ctx:256" })), (error: unknown) => error instanceof ConfigError && error.param === "--model-settings");
  });

  test("without --ctx-size each model gets 2048 or its training context when smaller (a demo-shaped model: 512) — issue 23", async () => {
    const demoPath = join(directory, "demo-s.gguf");
    await generateModel({ preset: "demo-s", seed: 3, dtype: "f16", outPath: demoPath });
    const store = await ModelStore.open(home);
    await store.importFile(demoPath, { name: "demo:s", mode: "copy" });
    await store.close();
    // No contextSize flag: the default; tiny:long's setting gives slots only.
    const defaults = await startGrove(config({ contextSize: undefined, modelSettings: "tiny:long=slots:1" }));
    try {
      const local = new OpenAI({ baseURL: `${defaults.url}/v1`, apiKey: "unused", maxRetries: 0 });
      for (const model of ["demo:s", "tiny:long"]) await local.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
      const shapes = defaults.engine.models.map((model) => [model.info.trainContextSize, model.info.contextSize, model.info.slots]).sort((a, b) => a[0]! - b[0]! || b[2]! - a[2]!);
      // tiny:short, the default model, is loaded at start: 1024 too, with --parallel's 2 slots.
      assert.deepEqual(shapes, [[512, 512, 2], [1024, 1024, 2], [1024, 1024, 1]]);
    } finally {
      await defaults.close();
    }
    // A file served with --model FILE goes through the engine's own default.
    const file = await startGrove(config({ contextSize: undefined, model: demoPath }));
    try {
      assert.deepEqual(file.engine.models.map((model) => model.info.contextSize), [512]);
    } finally {
      await file.close();
    }
    // Given, --ctx-size is taken as it is.
    const given = await startGrove(config({ contextSize: 1024, model: demoPath }));
    try {
      assert.deepEqual(given.engine.models.map((model) => model.info.contextSize), [1024]);
    } finally {
      await given.close();
    }
  });

  test("a streamed reply's timings give the model load apart (load_ms): a request that loaded the model reports more than one that found it loaded (issue 23)", async () => {
    const fresh = await startGrove(config({}));
    try {
      const timingsOf = async (model: string): Promise<{ load_ms: number; predicted_per_second: number }> => {
        const response = await fetch(`${fresh.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream: true, stream_options: { include_usage: true } }),
        });
        assert.equal(response.status, 200);
        const events = (await response.text()).split("\n").filter((line) => line.startsWith("data: {")).map((line) => JSON.parse(line.slice(6)) as { usage?: unknown; timings?: { load_ms: number; predicted_per_second: number } });
        const usage = events.find((event) => event.usage !== undefined && event.usage !== null);
        assert.ok(usage?.timings, "the usage chunk carries timings");
        return usage.timings;
      };
      const loading = await timingsOf("tiny:long");
      const loaded = await timingsOf("tiny:long");
      assert.equal(typeof loading.load_ms, "number");
      assert.ok(loading.load_ms > loaded.load_ms, `load ${loading.load_ms} ms, then ${loaded.load_ms} ms`);
    } finally {
      await fresh.close();
    }
  });
});
