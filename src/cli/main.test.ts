import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { cleanEnvironment, GROVE_BIN } from "../test-support/run-cli.js";
import { buildProgram } from "./main.js";

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

test("each top-level command loads alone from its own module, and the whole tree has the same commands (issue 23: grove keys create no longer loads the server)", async () => {
  const all = (await buildProgram()).commands.map((command) => command.name());
  assert.ok(all.includes("keys") && all.includes("serve") && all.includes("price"), all.join(" "));
  for (const name of all) {
    const alone = (await buildProgram(name)).commands.map((command) => command.name());
    assert.ok(alone.includes(name), `${name}: ${alone.join(" ")}`);
    assert.ok(alone.length < all.length, `${name} loaded every command`);
  }
  assert.deepEqual((await buildProgram("keys")).commands.map((command) => command.name()), ["keys"]);
  // A word no module registers gets every command, so that commander names it unknown with the full list.
  assert.deepEqual((await buildProgram("nonsense")).commands.map((command) => command.name()), all);
});
