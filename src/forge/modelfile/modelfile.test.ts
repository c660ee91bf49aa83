import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidRequestError } from "../../core/errors.js";
import { generationDefaultsOf } from "../../core/model-config.js";
import { formatModelfile, formatParametersText, mergeModelConfig, parseModelfile, parseModelfileCommands } from "./modelfile.js";

// The `mario` example of ollama/ollama docs/modelfile.md, as printed there.
const MARIO = `FROM llama3.2
# sets the temperature to 1 [higher is more creative, lower is more coherent]
PARAMETER temperature 1
# sets the context window size to 4096, this controls how many tokens the LLM can use as context to generate the next token
PARAMETER num_ctx 4096

# sets a custom system message to specify the behavior of the chat assistant
SYSTEM You are Mario from super mario bros, acting as an assistant.
`;

const refusal = (text: string) => {
  try {
    parseModelfile(text);
  } catch (error) {
    assert.ok(error instanceof InvalidRequestError);
    return error.message;
  }
  assert.fail("parsed");
};

describe("parseModelfile", () => {
  test("Ollama's mario example", () => {
    const spec = parseModelfile(MARIO);
    assert.equal(spec.from, "llama3.2");
    assert.equal(spec.fromLine, 1);
    assert.deepEqual(spec.config, { system: "You are Mario from super mario bros, acting as an assistant.", parameters: { temperature: 1, num_ctx: 4096 } });
    assert.deepEqual(generationDefaultsOf(spec.config), { temperature: 1, contextSize: 4096 });
  });

  test('instructions in any case, """ strings over lines, repeated stop, MESSAGE, LICENSE', () => {
    const spec = parseModelfile(
      [
        "from ./model.gguf",
        'Template """{{ if .System }}<|im_start|>system',
        '{{ .System }}<|im_end|>{{ end }}"""',
        'PARAMETER stop "<|im_start|>"',
        "parameter stop <|im_end|>",
        "PARAMETER seed 42",
        'system """',
        "Two lines",
        'of system."""',
        "MESSAGE user Is Toronto in Canada?",
        "MESSAGE assistant yes",
        'LICENSE "MIT"',
      ].join("\r\n"),
    );
    assert.equal(spec.from, "./model.gguf");
    assert.equal(spec.config.template, "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>{{ end }}");
    assert.equal(spec.config.system, "\nTwo lines\nof system.");
    assert.deepEqual(spec.config.parameters, { stop: ["<|im_start|>", "<|im_end|>"], seed: 42 });
    assert.deepEqual(spec.config.messages, [
      { role: "user", content: "Is Toronto in Canada?" },
      { role: "assistant", content: "yes" },
    ]);
    assert.deepEqual(spec.config.license, ["MIT"]);
  });

  test("errors name the line, in Ollama's words where it has them", () => {
    assert.match(refusal("FROM x\n\nFOO bar\n"), /^Modelfile line 3: command must be one of "from", /);
    assert.match(refusal("FROM x\nPARAMETER temprature 1\n"), /^Modelfile line 2: unknown parameter 'temprature'/);
    assert.match(refusal("FROM x\nPARAMETER temperature hot\n"), /^Modelfile line 2: invalid float value for temperature: 'hot'/);
    assert.match(refusal("FROM x\nPARAMETER top_k 1.5\n"), /^Modelfile line 2: invalid int value for top_k/);
    assert.match(refusal("FROM x\nPARAMETER temperature 9\n"), /^Modelfile line 2: temperature must be from 0 to 2/);
    assert.match(refusal("FROM x\nMESSAGE tool hi\n"), /^Modelfile line 2: message role must be one of "system", "user", or "assistant"/);
    assert.match(refusal('FROM x\nSYSTEM """never closed\nmore\n'), /^Modelfile line 2: a quoted value is never closed/);
    assert.match(refusal("# only a comment\nSYSTEM hi\n"), /^no FROM line/);
    assert.match(refusal("FROM x\nDRAFT y\n"), /^Modelfile line 2: DRAFT/);
  });

  test("deprecated parameters warn and are dropped, as Ollama's parser does", () => {
    const spec = parseModelfile("FROM x\nPARAMETER mirostat 2\n");
    assert.deepEqual(spec.config, {});
    assert.match(spec.warnings[0]!, /line 2: parameter mirostat is deprecated/);
  });

  test("formatModelfile reads back to the same config", () => {
    const config = parseModelfile('FROM x\nSYSTEM """He said "hi"\nand left"""\nPARAMETER stop a\nPARAMETER stop " b "\nPARAMETER temperature 0.25\nMESSAGE user  spaced \nLICENSE Apache-2.0\n').config;
    const text = formatModelfile("family:tag", config);
    assert.deepEqual(parseModelfile(text).config, config);
    assert.equal(parseModelfile(text).from, "family:tag");
    assert.equal(formatParametersText(config.parameters!), `${"stop".padEnd(30)} "a"\n${"stop".padEnd(30)} " b "\n${"temperature".padEnd(30)} 0.25`);
  });

  test("a fork of a config fork keeps what it does not override (Ollama's inheritance)", () => {
    const parent = parseModelfile("FROM x\nSYSTEM a\nPARAMETER temperature 1\nPARAMETER stop x\n").config;
    const child = parseModelfile("FROM y\nPARAMETER stop z\nPARAMETER top_k 5\n").config;
    assert.deepEqual(mergeModelConfig(parent, child), { system: "a", parameters: { temperature: 1, stop: ["z"], top_k: 5 } });
  });

  test("commands carry their lines", () => {
    assert.deepEqual(
      parseModelfileCommands("FROM a\n\n  # c\nSYSTEM \"\"\"x\ny\"\"\"\nPARAMETER seed 1").map((command) => [command.name, command.line]),
      [["from", 1], ["system", 4], ["parameter", 6]],
    );
  });
});
