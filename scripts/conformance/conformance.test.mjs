// The conformance scripts' pure parts: flag mapping, model mapping, JUnit reading, the report's
// block. `node --test scripts/conformance/` (no server, no model, no Python).
import assert from "node:assert/strict";
import { test } from "node:test";
import { groveFlagsFromHelp, modelRequest, parseLlamaServerArgs, planGroveServe, planLlamaServer } from "./llama-server-flags.mjs";
import { parseJunit } from "./junit.mjs";
import { substituteFor } from "./model-map.mjs";
import { replaceGeneratedBlock } from "./report.mjs";

// What utils.py's ServerPreset.tinyllama2() start() produces.
const TINYLLAMA2 = ["--host", "127.0.0.1", "--port", "8080", "--temp", "0.8", "--seed", "42", "--offline",
  "--hf-repo", "ggml-org/test-model-stories260K", "--batch-size", "32", "--no-slots", "--alias", "tinyllama-2",
  "--ctx-size", "512", "--parallel", "2", "--n-predict", "64", "--no-jinja"];

const GROVE_HELP = `Usage: grove serve [options]
Options:
  --model <file>                         GGUF file
  --host <host>                          interface
  --port <port>                          TCP port
  --parallel <n>                         slots
  --ctx-size <n>                         context tokens per slot
  --batch-size <n>                       batch
  --idle-unload <duration>               unload
  -h, --help                             display help for command`;

test("the help's long flags are read", () => {
  assert.deepEqual([...groveFlagsFromHelp(GROVE_HELP)].sort(),
    ["--batch-size", "--ctx-size", "--help", "--host", "--idle-unload", "--model", "--parallel", "--port"]);
});

test("llama-server's total context becomes Grove's per-slot context", () => {
  const plan = planGroveServe(parseLlamaServerArgs(TINYLLAMA2), groveFlagsFromHelp(GROVE_HELP));
  assert.deepEqual(plan.args, ["--host", "127.0.0.1", "--port", "8080", "--batch-size", "32", "--ctx-size", "256", "--parallel", "2"]);
  const status = Object.fromEntries(plan.notes.map((note) => [note.flag, note.status]));
  assert.equal(status["--temp"], "unsupported");
  assert.equal(status["--offline"], "ignored");
  assert.equal(status["--ctx-size"], "mapped");
  assert.equal(plan.noUi, false);
});

test("with --kv-unified the total context passes unchanged (one shared cache), without it it is divided", () => {
  const help = `${GROVE_HELP}\n  --kv-unified   one shared cache`;
  const unified = planGroveServe(parseLlamaServerArgs(["--ctx-size", "256", "--parallel", "4", "--kv-unified"]), groveFlagsFromHelp(help));
  assert.deepEqual(unified.args, ["--ctx-size", "256", "--parallel", "4", "--kv-unified"]);
  const undone = planGroveServe(parseLlamaServerArgs(["--kv-unified", "--ctx-size", "256", "--parallel", "4", "--no-kv-unified"]), groveFlagsFromHelp(help));
  assert.deepEqual(undone.args.slice(0, 4), ["--ctx-size", "64", "--parallel", "4"]);
  // A Grove without the flag keeps per-slot contexts: dividing stays right for it.
  const older = planGroveServe(parseLlamaServerArgs(["--ctx-size", "256", "--parallel", "4", "--kv-unified"]), groveFlagsFromHelp(GROVE_HELP));
  assert.deepEqual(older.args, ["--ctx-size", "64", "--parallel", "4"]);
});

test("a flag Grove gains is passed on, a path made absolute", () => {
  const help = `${GROVE_HELP}\n  --chat-template-file <file>   template\n  --seed <n>   seed`;
  const plan = planGroveServe(parseLlamaServerArgs(["--seed", "42", "--chat-template-file", "../t.jinja"]), groveFlagsFromHelp(help),
    (path) => `/abs/${path}`);
  assert.deepEqual(plan.args, ["--seed", "42", "--chat-template-file", "/abs/../t.jinja"]);
});

test("translations: idle seconds, no UI, a negative value, an unknown flag", () => {
  const argv = ["--sleep-idle-seconds", "3", "--no-ui", "--n-predict", "-1", "--frobnicate", "7", "--jinja"];
  const flags = parseLlamaServerArgs(argv);
  assert.deepEqual(flags.map(({ name, value }) => [name, value]),
    [["--sleep-idle-seconds", "3"], ["--no-ui", undefined], ["--n-predict", "-1"], ["--frobnicate", "7"], ["--jinja", undefined]]);
  const plan = planGroveServe(flags, groveFlagsFromHelp(GROVE_HELP));
  assert.deepEqual(plan.args, ["--idle-unload", "3s"]);
  assert.equal(plan.noUi, true);
  assert.deepEqual(plan.notes.map((note) => note.status), ["mapped", "mapped", "unsupported", "unsupported", "ignored"]);
});

test("--verbose is Grove's debug log level (which adds __verbose to answers); --no-jinja needs nothing", () => {
  const plan = planGroveServe(parseLlamaServerArgs(["--verbose", "--no-jinja"]), groveFlagsFromHelp(GROVE_HELP));
  assert.deepEqual(plan.args, ["--log-level", "debug"]);
  assert.deepEqual(plan.notes.map((note) => note.status), ["mapped", "ignored"]);
});

test("the model request reads the download flags", () => {
  assert.deepEqual(modelRequest(parseLlamaServerArgs(TINYLLAMA2)), { repo: "ggml-org/test-model-stories260K" });
  assert.equal(modelRequest(parseLlamaServerArgs(["--host", "h"])), undefined);
});

test("llama-server keeps its flags, the download replaced by the file and implied flags added", () => {
  const argv = ["--hf-repo", "ggml-org/models", "--hf-file", "bert-bge-small/ggml-model-f16.gguf", "--embedding"];
  assert.deepEqual(planLlamaServer(argv, "/m/bge.gguf", ["--pooling", "cls"]), ["--embedding", "--model", "/m/bge.gguf", "--pooling", "cls"]);
  assert.deepEqual(planLlamaServer([...argv, "--pooling", "last"], "/m/bge.gguf", ["--pooling", "cls"]),
    ["--embedding", "--pooling", "last", "--model", "/m/bge.gguf"]);
});

test("the suite's models map to substitutes", () => {
  const name = (repo, file) => substituteFor(repo, file).substitute.name;
  assert.equal(name("ggml-org/test-model-stories260K"), "stories-spm");
  assert.equal(name("ggml-org/test-model-stories260K-infill"), "stories-fim");
  assert.equal(name("ggml-org/models", "bert-bge-small/ggml-model-f16.gguf"), "bge-wpm");
  assert.equal(name("ggml-org/models", "tinyllamas/split/stories15M-q8_0-00001-of-00003.gguf"), "stories-spm");
  assert.deepEqual(substituteFor("ggml-org/tinygemma3-GGUF:Q8_0").matched, false);
});

test("JUnit: worst outcome per test, a file that did not import is one error", () => {
  const outcomes = parseJunit(`<testsuites><testsuite>
    <testcase classname="" name="unit.test_x" time="0"><error message="collection failure">boom &lt;x&gt;</error></testcase>
    <testcase classname="unit.test_y" name="t[a-b]"><failure message="assert 404 == 200&#10;x">tb</failure><system-out>hi &amp; there</system-out></testcase>
    <testcase classname="unit.test_y" name="t[a-b]"><error message="teardown"/></testcase>
    <testcase classname="unit.test_y" name="s"><skipped type="pytest.skip" message="nope"/></testcase>
    <testcase classname="unit.test_y" name="p" time="1" /></testsuite></testsuites>`);
  assert.deepEqual(outcomes.map(({ id, outcome, message }) => [id, outcome, message]), [
    ["test_x::(collection)", "error", "collection failure"],
    ["test_y::t[a-b]", "failed", "assert 404 == 200\nx"],
    ["test_y::s", "skipped", "nope"],
    ["test_y::p", "passed", ""],
  ]);
  assert.match(outcomes[1].output, /hi & there/);
});

test("the generated block is replaced in place, or appended", () => {
  const block = "<!-- conformance:begin (generated by npm run conformance:llama-server; edit outside this block) -->\nnew\n<!-- conformance:end -->\n";
  const document = `# Title\n\n${block.replace("new", "old")}\nAfter.\n`;
  assert.equal(replaceGeneratedBlock(document, block), `# Title\n\n${block.trimEnd()}\n\nAfter.\n`);
  assert.equal(replaceGeneratedBlock("# Title\n", block), `# Title\n\n${block}`);
});
