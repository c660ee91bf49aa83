import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { digestOfFile } from "../../store/file-digest.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";

/** Runs `grove create ARGS` in-process through `main`, capturing stderr. */
const runCreate = (...args: string[]) => runCliInProcess("create", ...args);

/** Runs `bin/grove.js create ARGS` as a child process, for what it prints on stdout. */
const runCreateProcess = (...args: string[]) => runCli("create", ...args);

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-create-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("grove create", () => {
  it("writes a model and prints path, digest, parameters and size", async () => {
    const out = join(directory, "tiny.gguf");
    const run = await runCreateProcess("--preset", "test-tiny", "--seed", "42", "--out", out);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, ""); // no progress bar when stderr is not a terminal
    const digest = await digestOfFile(out);
    assert.match(run.stdout, new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}  ${digest}  164\\.2K parameters  342\\.2 KB\\n$`));
  });

  it("prints JSON with --json and replaces a file only with --force", async () => {
    const out = join(directory, "json.gguf");
    await writeFile(out, "keep me");
    const refused = await runCreate("--preset", "test-tiny", "--seed", "1", "--out", out, "--json");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /error \(invalid_parameter\): .*json\.gguf already exists; pass --force to replace it/);
    assert.equal(await readFile(out, "utf8"), "keep me");

    const run = await runCreateProcess("--preset", "test-tiny", "--seed", "1", "--out", out, "--json", "--force", "--dtype", "q8_0");
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.deepEqual(
      { ...result, digest: undefined, fileSize: undefined },
      { path: out, digest: undefined, preset: "test-tiny", dtype: "q8_0", seed: 1, parameterCount: 164160, fileSize: undefined, vocabularySize: 512 },
    );
    assert.equal(result.digest, await digestOfFile(out));
  });

  it("explains bad flags and exits with 1", async () => {
    const out = join(directory, "bad.gguf");
    const cases: [string[], RegExp][] = [
      [["--preset", "huge", "--seed", "1", "--out", out], /Unknown preset 'huge'; valid presets: test-tiny, llama3-tiny, qwen2-tiny, qwen3-tiny, small, demo-s, demo-m, demo-l, llama-1b/],
      [["--preset", "small", "--seed", "abc", "--out", out], /--seed must be a non-negative integer below 2\^53, got 'abc'/],
      [["--preset", "small", "--seed", "-3", "--out", out], /--seed must be a non-negative integer below 2\^53, got '-3'/],
      [["--preset", "small", "--seed", "1.5", "--out", out], /--seed must be a non-negative integer/],
      [["--preset", "small", "--seed", "1", "--out", out, "--dtype", "bf16"], /Unknown --dtype 'bf16'; valid: f32, f16, q8_0/],
      [["--preset", "small", "--seed", "1", "--out", join(directory, "missing", "x.gguf")], /The output directory .*missing does not exist/],
      [["--preset", "small", "--seed", "1", "--out", directory], /is a directory/],
      [["--preset", "small", "--seed", "1", "--out", out, "--vocab-from", join(directory, "nope.gguf")], /--vocab-from .*nope\.gguf is not a file/],
      [["--seed", "1", "--out", out], /grove create needs NAME \(with -f Modelfile\), or --preset, --seed and --out to generate a model; --preset is missing/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCreate(...args);
      assert.equal(run.code, 1, `exit code for ${args.join(" ")}`);
      assert.match(run.stderr, pattern);
    }
    const notGguf = join(directory, "notes.txt");
    await writeFile(notGguf, "plain text");
    const run = await runCreate("--preset", "small", "--seed", "1", "--out", out, "--vocab-from", notGguf);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /error \(invalid_model_file\): notes\.txt: /);
    assert.ok(!(await readdir(directory)).includes("bad.gguf"));
  });
});
