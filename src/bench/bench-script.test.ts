import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseBenchOptions } from "./bench-script.js";

describe("parseBenchOptions", () => {
  const defaults = { preset: "small", ctx: 256, writeDocs: false };

  test("numbers, strings by key, --write-docs; the defaults are not changed", () => {
    const options = parseBenchOptions(["--ctx", "512", "--preset", "tiny", "--write-docs"], defaults, "x.ts", ["preset"]);
    assert.deepEqual(options, { preset: "tiny", ctx: 512, writeDocs: true });
    assert.deepEqual(defaults, { preset: "small", ctx: 256, writeDocs: false });
  });

  test("an unknown or incomplete flag names itself and the script", () => {
    assert.throws(() => parseBenchOptions(["--threads", "2"], defaults, "src/bench/x.ts", ["preset"]), /Unknown or incomplete option --threads; see the header of src\/bench\/x\.ts/);
    assert.throws(() => parseBenchOptions(["--ctx"], defaults, "x.ts", ["preset"]), /Unknown or incomplete option --ctx/);
  });
});
