import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../config/config.js";
import { generateModel } from "../../forge/generate/generate-model.js";
import { startGrove } from "../../services.js";
import { cleanEnvironment, GROVE_BIN, runCli } from "../../test-support/run-cli.js";
import { KEYS, openTerminal, type Terminal } from "../../test-support/terminal.js";

// `grove run` as a user meets it: in a real terminal (util-linux `script` gives it a pty), through
// a pipe, and against a Grove already running. The model is the shipped demo chat model (ChatML),
// which answers its one task in a word: assertions are on shapes, not on its prose.

const CHAT_MODEL = fileURLToPath(new URL("../../../data/demo/models/demo-s-chat-f16.gguf", import.meta.url));
const QUESTION = "What part of speech is gladness?";
let directory: string;
let home: string;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-run-"));
  home = join(directory, "home");
  const imported = await runCli("import", CHAT_MODEL, "--name", "chat:f16", "--home", home);
  assert.equal(imported.code, 0, imported.stderr);
});
after(() => rm(directory, { recursive: true, force: true }));

/** `grove run ARGS` with a pipe for stdin and stdout, as in `echo hi | grove run m`. */
async function runPiped(args: string[], input: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [GROVE_BIN, "run", ...args], { stdio: ["pipe", "pipe", "pipe"], env: cleanEnvironment(env) });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(input);
  const [code] = (await once(child, "close")) as [number];
  return { code, stdout, stderr };
}

/** Types a line and waits for the next prompt; returns what was drawn in between. */
async function say(terminal: Terminal, line: string): Promise<string> {
  const from = terminal.screen().length;
  terminal.send(`${line}\r`);
  const screen = await terminal.waitFor(/\n>>> $/, { from });
  return screen.slice(from);
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

const ESCAPE = /\x1b/;

describe("grove run", () => {
  it("chats in a terminal: streamed answers, /set, /show, multi-line input, history on the up arrow, Ctrl-C and Ctrl-D", async () => {
    const terminal = openTerminal([process.execPath, GROVE_BIN, "run", "chat:f16", "--local", "--home", home], cleanEnvironment());
    try {
      await terminal.waitFor(/>>> $/);
      const answer = await say(terminal, QUESTION);
      assert.ok(answer.startsWith(`${QUESTION}\n`), answer);
      assert.match(answer, /\n.*[a-z]+.*\n\n>>> $/);

      assert.match(await say(terminal, "/set parameter temperature hot"), /Couldn't set parameter: temperature takes a number, not 'hot'/);
      assert.match(await say(terminal, "/set parameter top_q 1"), /Couldn't set parameter: unknown parameter 'top_q'/);
      assert.match(await say(terminal, "/set parameter temperature 0"), /Set parameter 'temperature' to '0'/);
      // Up recalls the last line; Enter sends it again.
      const recalled = await say(terminal, KEYS.up);
      assert.match(recalled, /\/set parameter temperature 0\nSet parameter 'temperature' to '0'/, recalled);
      // A value the server refuses is its message; the chat goes on.
      await say(terminal, "/set parameter top_p 7");
      assert.match(await say(terminal, QUESTION), /error: .*top_p/);
      await say(terminal, "/set parameter top_p 0.9");

      assert.match(await say(terminal, "/set system You name parts of speech."), /Set system message\./);
      assert.match(await say(terminal, "/show system"), /You name parts of speech\./);
      const info = await say(terminal, "/show info");
      assert.match(info, /architecture\s+llama/);
      assert.match(info, /context length\s+\d+/);
      assert.match(await say(terminal, "/show parameters"), /User defined parameters:\n\s+temperature\s+0/);

      // """ opens a message over several lines; the answer comes once it closes.
      const from = terminal.screen().length;
      terminal.send('"""What part of speech\r');
      await terminal.waitFor(/\.\.\. $/, { from });
      assert.match(await say(terminal, 'is gladness?"""'), /\n.*[a-z]+.*\n\n>>> $/);

      assert.match(await say(terminal, "/bogus"), /Unknown command '\/bogus'\. Type \/\? for help/);
      assert.match(await say(terminal, "/?"), /\/set\s+Set session variables[\s\S]*Use """ to begin a multi-line message\./);
      assert.match(await say(terminal, "/clear"), /Cleared session context/);

      // Ctrl-C drops a half-typed line; on an empty one it says how to leave.
      const typed = terminal.screen().length;
      terminal.send("never sent");
      terminal.send(KEYS.ctrlC);
      await terminal.waitFor(/\n>>> $/, { from: typed });
      const hint = terminal.screen().length;
      terminal.send(KEYS.ctrlC);
      await terminal.waitFor(/Use Ctrl \+ d or \/bye to exit\.\n>>> $/, { from: hint });

      terminal.send(KEYS.ctrlD);
      assert.equal(await terminal.exited, 0);
      assert.doesNotMatch(terminal.screen(), /never sent\n(?!>>>)/);
    } finally {
      terminal.kill();
    }
    const history = (await readFile(join(home, "history"), "utf8")).split("\n");
    assert.ok(history.includes(QUESTION) && history.includes("/set parameter temperature 0"), history.join("\n"));
    assert.ok(!history.includes("never sent"));
  });

  it("stops an answer on Ctrl-C and goes on with the chat", async () => {
    // A generated model (random weights) rambles until num_predict: long enough to interrupt.
    const rambler = await generateModel({ preset: "small", seed: 1, dtype: "f16", outPath: join(directory, "small.gguf") });
    assert.equal((await runCli("import", rambler.path, "--name", "rambler:f16", "--home", home)).code, 0);
    const terminal = openTerminal([process.execPath, GROVE_BIN, "run", "rambler:f16", "--local", "--home", home], cleanEnvironment());
    try {
      await terminal.waitFor(/>>> $/);
      await say(terminal, "/set parameter num_predict 1500");
      // With verbose, a finished answer ends with its timings; a cancelled one has none.
      assert.match(await say(terminal, "/set verbose"), /Set 'verbose' mode\./);
      const from = terminal.screen().length;
      terminal.send("hello\r");
      await terminal.waitFor(/hello\n[^\n]*\S/, { from });
      terminal.send(KEYS.ctrlC);
      const stopped = (await terminal.waitFor(/\n>>> $/, { from })).slice(from);
      assert.doesNotMatch(stopped, /eval count:/, stopped);
      assert.match(await say(terminal, "/set parameter num_predict 3"), /Set parameter/);
      assert.match(await say(terminal, "hello again"), /eval count:\s+3 token\(s\)/);
      terminal.send("/bye\r");
      assert.equal(await terminal.exited, 0);
    } finally {
      terminal.kill();
    }
  });

  it("answers piped text once, in plain text, and joins it after the prompt words as ollama does", async () => {
    const piped = await runPiped(["chat:f16", QUESTION, "--local", "--home", home], "");
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^\S.*\n$/s);
    assert.doesNotMatch(piped.stdout + piped.stderr, ESCAPE);

    // A GGUF file is served here, under its file name.
    const echoed = await runPiped([CHAT_MODEL, "--home", home], `${QUESTION}\n`);
    assert.equal(echoed.code, 0, echoed.stderr);
    assert.match(echoed.stdout, /^\S.*\n$/s);
    assert.doesNotMatch(echoed.stdout + echoed.stderr, ESCAPE);
  });

  it("talks to the Grove at GROVE_HOST, through its /api/chat", async () => {
    const grove = await startGrove(loadConfig({ env: {}, flags: { home, port: 0, model: "chat:f16", webDir: "none", logLevel: "silent", threads: 1 } }));
    try {
      const url = new URL(grove.url);
      // Ollama's spelling of the variable: a URL with scheme and port.
      const remote = await runPiped(["chat:f16", QUESTION], "", { GROVE_HOST: `http://127.0.0.1:${url.port}`, GROVE_HOME: join(directory, "elsewhere") });
      assert.equal(remote.code, 0, remote.stderr);
      assert.match(remote.stdout, /^\S.*\n$/s);
      const unknown = await runPiped(["nope:x", QUESTION], "", { GROVE_HOST: `127.0.0.1:${url.port}` });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /error \(model_not_found\): The model 'nope:x' is not served at http:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await grove.close();
    }
  });

  it("says what is wrong: an unknown model, a server that does not answer, a bad flag", async () => {
    const unknown = await runPiped(["nope:x", "hi", "--local", "--home", home], "");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /error \(model_not_found\): The model 'nope:x' is not in the store at .*: grove ls lists its models/);
    const malformed = await runPiped(["no such", "hi", "--local", "--home", home], "");
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /error \(invalid_parameter\): Invalid model reference/);

    const port = await closedPort();
    const unreachable = await runPiped(["chat:f16", "hi"], "", { GROVE_HOST: `http://127.0.0.1:${port}` });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, new RegExp(`Cannot reach Grove at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start it with grove serve`));

    const badHost = await runPiped(["chat:f16", "hi"], "", { GROVE_HOST: "ftp://x" });
    assert.equal(badHost.code, 1);
    assert.match(badHost.stderr, /GROVE_HOST \(or GROVE_PORT\) is not a host, host:port or http\(s\) URL/);

    const badFormat = await runPiped(["chat:f16", "hi", "--format", "xml", "--local"], "");
    assert.equal(badFormat.code, 1);
    assert.match(badFormat.stderr, /--format takes json, not 'xml'/);
  });
});
