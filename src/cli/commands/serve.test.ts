import assert from "node:assert/strict";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULT_NAME, HELDOUT_TEXT, TASKS_DIR } from "../../demo/build-family.js";
import type { ModelStore } from "../../store/model-store.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { examplePrompt } from "./serve.js";

// `grove serve` as a user runs it: bin/grove.js in a child process, with its own GROVE_HOME.

const BIN = fileURLToPath(new URL("../../../bin/grove.js", import.meta.url));
let directory: string;
let model: TestModel;
/** Words of the demo corpus's held-out text and task files: English as the demo models know it. */
const ENGLISH = new Set<string>();

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-serve-"));
  model = await createTestModel();
  const texts = [await readFile(HELDOUT_TEXT, "utf8")];
  for (const file of await readdir(TASKS_DIR)) texts.push(await readFile(join(TASKS_DIR, file), "utf8"));
  for (const text of texts) for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) ENGLISH.add(word);
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
  await model.cleanup();
});

function serve(args: string[]): ChildProcessByStdio<null, Readable, Readable> {
  const env: NodeJS.ProcessEnv = { ...process.env, GROVE_HOME: join(directory, "home"), GROVE_LOG_LEVEL: "warn" };
  for (const key of ["GROVE_PORT", "GROVE_MODEL", "GROVE_HOST", "GROVE_API_KEY"]) delete env[key];
  return spawn(process.execPath, [BIN, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
}

/** Runs a serve that must fail; returns its exit code and stderr. */
async function serveFails(args: string[]): Promise<{ code: number; stderr: string }> {
  const child = serve(args);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  const [code] = (await once(child, "close")) as [number];
  return { code, stderr };
}

/** Starts serve, waits for the URL it prints, and returns it with the child. */
async function serveUntilListening(args: string[]) {
  const child = serve(args);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /http:\/\/127\.0\.0\.1:\d+/.exec(stdout);
      if (match) resolve(match[0]);
    });
    child.on("close", (code) => reject(new Error(`serve exited with ${code} before listening: ${stderr}`)));
  });
  return { child, url, stdout: () => stdout };
}

describe("grove serve", () => {
  it("with no model, imports the shipped demo family and serves its chat model, which answers its task in English", async () => {
    const { child, url, stdout } = await serveUntilListening(["--port", "0"]);
    try {
      assert.match(stdout(), /curl http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
      assert.ok(stdout().includes(`"model":"${DEFAULT_NAME}","messages":[{"role":"user","content":"What part of speech is gladness?"}]`), `the printed request asks the demo its task: ${stdout()}`);
      // npm test builds the web app first (npm run build), so serve finds dist/web and says where it is.
      assert.ok(stdout().includes(`Web app: ${url}/`), stdout());
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<div id="app">/);
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; loaded: boolean; default?: boolean }[] };
      assert.deepEqual(models.data.filter((entry) => entry.loaded).map((entry) => entry.id), [DEFAULT_NAME], "the default is loaded at start");
      const ask = async (content: string): Promise<string> => {
        const response = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: DEFAULT_NAME, messages: [{ role: "user", content }], max_tokens: 32, temperature: 0 }),
        });
        assert.equal(response.status, 200);
        const body = (await response.json()) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
        assert.ok(body.usage.completion_tokens > 0 && body.usage.completion_tokens <= 32);
        return body.choices[0]!.message.content;
      };
      // Its task: a part of speech, named with one of the four words (how often it is the right
      // one is src/demo/demo-family.test.ts's measure). The word is from the held-out synsets.
      const reply = await ask("What part of speech is epicureanism?");
      assert.match(reply.trim().toLowerCase(), /^(noun|verb|adjective|adverb)\.?$/, reply);
      // A definition in English: mostly words of the corpus's vocabulary, not fragments.
      const definition = await ask("What does dog mean?");
      const words = definition.toLowerCase().match(/[a-z]+/g) ?? [];
      assert.ok(words.length >= 3, definition);
      const known = words.filter((word) => ENGLISH.has(word)).length;
      assert.ok(known >= words.length * 0.8, `${known} of ${words.length} words are English: ${definition}`);
    } finally {
      child.kill("SIGTERM");
      const [code] = (await once(child, "close")) as [number];
      assert.equal(code, 0, "SIGTERM shuts down cleanly");
    }
  });

  it("refuses a missing model file", async () => {
    const run = await serveFails(["--port", "0", "--model", join(directory, "nope.gguf")]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /nope\.gguf does not exist/);
  });

  it("refuses a file that is not a GGUF model before llama.cpp sees it", async () => {
    const fake = join(directory, "fake.gguf");
    await writeFile(fake, "this is not a model\n".repeat(10));
    const run = await serveFails(["--port", "0", "--model", fake]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /invalid_model_file/);
  });

  it("refuses a --web-dir without a built web app", async () => {
    const run = await serveFails(["--port", "0", "--model", model.path, "--web-dir", directory]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--web-dir .* holds no index\.html/);
  });

  it("names the flag and variable of a bad port", async () => {
    const run = await serveFails(["--port", "99999", "--model", model.path]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--port/);
    assert.match(run.stderr, /GROVE_PORT/);
  });

  it("refuses a non-loopback bind without an API key", async () => {
    const run = await serveFails(["--host", "0.0.0.0", "--port", "0", "--model", model.path]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /API key/);
  });

  it("says which port is taken", async () => {
    const blocker = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = await serveFails(["--port", String(port), "--model", model.path]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
    } finally {
      blocker.close();
    }
  });
});

describe("the printed curl line's message", () => {
  // A store whose `show` returns a card, or fails as for a --model FILE outside the store.
  const withCard = (card: Record<string, unknown> | Error) => ({ store: { show: async () => (card instanceof Error ? Promise.reject(card) : { model: { card } }) } as unknown as ModelStore });

  it("is the card's example_prompt, as JSON that survives the shell's single quotes", async () => {
    const hostile = `It's "quoted" \\ and '; rm -rf ~; echo '`;
    const printed = await examplePrompt(withCard({ example_prompt: hostile }), "m");
    assert.ok(!printed.includes("'"), printed);
    assert.equal(JSON.parse(printed), hostile);
  });

  it("is Hello without a usable card", async () => {
    for (const grove of [withCard(new Error("not in the store")), withCard({}), withCard({ example_prompt: 42 }), withCard({ example_prompt: "x".repeat(201) })]) {
      assert.equal(await examplePrompt(grove, "m"), '"Hello"');
    }
  });
});
