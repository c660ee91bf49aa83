import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { SqliteUpstreamStore } from "../../gateway/sqlite-upstream-store.js";

const BIN = fileURLToPath(new URL("../../../bin/grove.js", import.meta.url));
let home: string;

before(async () => {
  home = await mkdtemp(join(tmpdir(), "grove-upstream-cli-"));
});
after(async () => {
  await rm(home, { recursive: true, force: true });
});

function grove(...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, GROVE_HOME: home };
  delete env.GROVE_DATABASE_URL;
  const run = spawnSync(process.execPath, [BIN, ...args], { env, encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

test("grove upstream add, ls, rm; the API key is stored but never printed", async () => {
  const secret = "sk-upstream-do-not-print";
  const added = grove("upstream", "add", "big", "--url", "http://127.0.0.1:8000/v1/", "--model", "llama-70b", "--api-key", secret, "--fallback", "grove-small");
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /big → http:\/\/127\.0\.0\.1:8000\/v1 \(model llama-70b\), fallback grove-small/);
  const listed = grove("upstream", "ls", "--json");
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as Record<string, unknown>[]).map(({ createdAt: _createdAt, ...rest }) => rest),
    [{ name: "big", url: "http://127.0.0.1:8000/v1", model: "llama-70b", fallback: "grove-small", apiKey: true }],
  );
  const table = grove("upstream", "ls");
  assert.match(table.stdout, /big\s+http:\/\/127\.0\.0\.1:8000\/v1\s+llama-70b\s+grove-small\s+set/);
  for (const output of [added, listed, table]) assert.ok(!`${output.stdout}${output.stderr}`.includes(secret));
  const store = SqliteUpstreamStore.open(home);
  assert.equal((await store.getUpstream("big"))?.apiKey, secret);
  await store.close();

  assert.equal(grove("upstream", "rm", "big").code, 0);
  assert.equal(JSON.parse(grove("upstream", "ls", "--json").stdout).length, 0);
  const missing = grove("upstream", "rm", "big");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No upstream named 'big'/);
});

test("bad upstream settings are refused with the flag at fault", () => {
  const scheme = grove("upstream", "add", "x", "--url", "ftp://host/v1");
  assert.equal(scheme.code, 1);
  assert.match(scheme.stderr, /--url must be http/);
  const credentials = grove("upstream", "add", "x", "--url", "http://user:pw@host/v1");
  assert.match(credentials.stderr, /--api-key/);
  const loop = grove("upstream", "add", "x", "--url", "http://host/v1", "--fallback", "x");
  assert.match(loop.stderr, /its own fallback/);
  const name = grove("upstream", "add", "bad name", "--url", "http://host/v1");
  assert.match(name.stderr, /Upstream name/);
});

test("the help lists the commands", () => {
  const help = grove("upstream", "--help");
  assert.match(help.stdout, /add \[options\] <name>/);
  assert.match(help.stdout, /ls \[options\]/);
  assert.match(help.stdout, /rm \[options\] <name>/);
});
