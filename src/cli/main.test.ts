import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { cleanEnvironment, GROVE_BIN } from "../test-support/run-cli.js";

test("a reader that closes the pipe early ends grove quietly, not with an unhandled EPIPE", async () => {
  // `grove --help` writes more than a closed pipe takes: the same path as `grove ls --json | head -1`.
  const child = spawn(process.execPath, [GROVE_BIN, "--help"], { env: cleanEnvironment(), stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.destroy();
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/, stderr);
  assert.equal(code, 0);
});
