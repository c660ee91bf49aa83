import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { generateModel } from "../forge/generate/generate-model.js";
import { cleanEnvironment, GROVE_BIN, runCli } from "../test-support/run-cli.js";
import { openTerminal } from "../test-support/terminal.js";
import { progressBar, spinner } from "./progress.js";

/** A stream that says it is (or is not) a terminal, keeping what is written. */
function stream(isTTY: boolean): NodeJS.WriteStream & { text: () => string } {
  const sink = new PassThrough();
  let text = "";
  sink.on("data", (chunk: Buffer) => (text += chunk.toString()));
  return Object.assign(sink, { isTTY, columns: 100, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, text: () => text }) as unknown as NodeJS.WriteStream & { text: () => string };
}

test("a bar draws on a terminal only, and not for totals under its minimum", async () => {
  const terminal = stream(true);
  const bar = progressBar("quantizing", { unit: "count", stream: terminal });
  assert.equal(bar.drawn, true);
  bar.update(3, 12, "tensors");
  bar.update(12, 12, "tensors");
  bar.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(terminal.text(), /quantizing .*100% \| 12\/12 tensors/);

  const pipe = stream(false);
  const quiet = progressBar("quantizing", { stream: pipe });
  assert.equal(quiet.drawn, false);
  quiet.update(1, 2);
  quiet.stop();
  const wheel = spinner("loading", { stream: pipe });
  wheel.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pipe.text(), "");

  const small = stream(true);
  const skipped = progressBar("importing", { unit: "bytes", minTotal: 1e9, stream: small });
  skipped.update(5e6, 1e7);
  skipped.stop();
  assert.equal(small.text(), "");
});

test("grove quantize draws its bar on a terminal, and prints only its result through a pipe", async () => {
  const directory = await mkdtemp(join(tmpdir(), "grove-progress-"));
  try {
    const home = join(directory, "home");
    const model = await generateModel({ preset: "test-tiny", seed: 5, dtype: "f16", outPath: join(directory, "tiny.gguf") });
    assert.equal((await runCli("import", model.path, "--name", "tiny:f16", "--home", home)).code, 0);
    const terminal = openTerminal([process.execPath, GROVE_BIN, "quantize", "tiny:f16", "--type", "Q8_0", "--home", home], cleanEnvironment());
    try {
      assert.equal(await terminal.exited, 0, terminal.screen());
      assert.match(terminal.screen(), /quantizing to Q8_0 .*100% \| (\d+)\/\1 tensors/);
    } finally {
      terminal.kill();
    }
    const piped = await runCli("quantize", "tiny:f16", "--type", "Q4_0", "--home", home);
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /quantizing|\x1b/);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
