import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { ConfigError } from "../../core/errors.js";
import { loadConfig } from "../../config/config.js";
import { declareServeFlags, SERVE_FLAGS } from "./serve.js";

describe("grove serve's flags, declared once", () => {
  it("each sets its own configuration key, and each key is one the config knows", () => {
    const keys = SERVE_FLAGS.map((flag) => flag.key);
    assert.equal(new Set(keys).size, keys.length, "no two flags set one key");
    const options = SERVE_FLAGS.map((flag) => flag.option.split(" ")[0]);
    assert.equal(new Set(options).size, options.length, "no flag is declared twice");
    const config = loadConfig({ env: {} });
    for (const key of keys) assert.ok(key in config, `${key} is a configuration key`);
  });

  it("parsed by commander, a value and a switch reach the config under their keys", () => {
    const command = new Command().exitOverride();
    const configFlags = declareServeFlags(command);
    command.parse(["--ctx-size", "512", "--kv-unified", "--parallel", "3"], { from: "user" });
    const config = loadConfig({ env: {}, flags: configFlags(command.opts()) });
    assert.equal(config.contextSize, 512);
    assert.equal(config.parallel, 3);
    assert.equal(config.kvUnified, "on");
  });

  it("a bad value is refused naming the flag and its variable", () => {
    assert.throws(
      () => loadConfig({ env: {}, flags: { contextSize: "lots" } }),
      (error: unknown) => error instanceof ConfigError && /--ctx-size/.test(error.message) && /GROVE_CTX_SIZE/.test(error.message),
    );
  });
});
