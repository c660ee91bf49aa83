import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../core/errors.js";
import { loadConfig } from "./config.js";
import { parseModelSettings } from "./model-settings.js";

describe("parseModelSettings", () => {
  test("parses names with tags, both keys, one key, and ignores empty entries", () => {
    assert.deepEqual(parseModelSettings("demo-s-chat:f16=ctx:1024,slots:8; other:q4=ctx:8192 ;;small=slots:2"), [
      { name: "demo-s-chat:f16", contextSize: 1024, slots: 8 },
      { name: "other:q4", contextSize: 8192 },
      { name: "small", slots: 2 },
    ]);
    assert.deepEqual(parseModelSettings(""), []);
  });

  for (const [text, pattern] of [
    ["a=ctx:1024,batch:4", /unknown key 'batch'/],
    ["a=ctx:1.5", /ctx of 'a' must be an integer/],
    ["a=ctx:abc", /ctx of 'a' must be an integer/],
    ["a=slots:0", /slots of 'a' must be an integer from 1/],
    ["a=ctx:32", /from 64/],
    ["ctx:1024", /must be NAME=ctx:N,slots:N/],
    ["a=ctx:512;a=slots:2", /given twice/],
  ] as const) {
    test(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => parseModelSettings(text), pattern));
  }
});

describe("config key modelSettings", () => {
  test("comes from GROVE_MODEL_SETTINGS or the flag, frozen into the config", () => {
    const fromEnv = loadConfig({ env: { GROVE_MODEL_SETTINGS: "a:1=ctx:256", GROVE_HOME: "/nonexistent-grove" } });
    assert.deepEqual(fromEnv.modelSettings, [{ name: "a:1", contextSize: 256 }]);
    const fromFlag = loadConfig({ env: { GROVE_MODEL_SETTINGS: "a:1=ctx:256" }, flags: { home: "/nonexistent-grove", modelSettings: "b=slots:3" } });
    assert.deepEqual(fromFlag.modelSettings, [{ name: "b", slots: 3 }]);
    assert.deepEqual(loadConfig({ env: {}, flags: { home: "/nonexistent-grove" } }).modelSettings, []);
  });

  test("a bad value names the flag and the variable", () => {
    assert.throws(
      () => loadConfig({ env: {}, flags: { home: "/nonexistent-grove", modelSettings: "a=slots:0" } }),
      (error: unknown) =>
        error instanceof ConfigError && error.param === "--model-settings" && /--model-settings or GROVE_MODEL_SETTINGS/.test(error.message) && /slots of 'a'/.test(error.message),
    );
  });
});
