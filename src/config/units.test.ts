import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadConfig } from "./config.js";
import { parseByteSize, parseDuration } from "./units.js";
import { ConfigError } from "../core/errors.js";

describe("sizes and durations in settings", () => {
  test("sizes: binary and decimal units, bare bytes, off", () => {
    assert.equal(parseByteSize("2GiB"), 2 * 1024 ** 3);
    assert.equal(parseByteSize("2G"), 2 * 1024 ** 3);
    assert.equal(parseByteSize("1.5GB"), 1.5e9);
    assert.equal(parseByteSize("512 MiB"), 512 * 1024 ** 2);
    assert.equal(parseByteSize("1048576"), 1048576);
    assert.equal(parseByteSize("off"), 0);
    assert.equal(parseByteSize("2 parsecs"), undefined);
    assert.equal(parseByteSize("-1GiB"), undefined);
  });

  test("durations: ms, s, m, h, bare seconds, never", () => {
    assert.equal(parseDuration("10m"), 600_000);
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("30"), 30_000);
    assert.equal(parseDuration("never"), 0);
    assert.equal(parseDuration("soon"), undefined);
  });

  test("--memory-budget and --idle-unload reach the configuration; a bad value names the flag and the variable", () => {
    const config = loadConfig({ env: { GROVE_MEMORY_BUDGET: "2GiB" }, flags: { home: "/tmp/grove-units", idleUnload: "10m" } });
    assert.equal(config.memoryBudget, 2 * 1024 ** 3);
    assert.equal(config.idleUnload, 600_000);
    assert.throws(
      () => loadConfig({ env: { GROVE_MEMORY_BUDGET: "lots" }, flags: { home: "/tmp/grove-units" } }),
      (error: unknown) => error instanceof ConfigError && /--memory-budget or GROVE_MEMORY_BUDGET/.test(error.message),
    );
  });
});
