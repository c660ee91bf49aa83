import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "./config.js";
import { parseHostSetting, serverTarget } from "./server-url.js";

test("GROVE_HOST is read as Ollama reads OLLAMA_HOST: host, host:port or URL", () => {
  assert.deepEqual(serverTarget({ env: {} }), { url: "http://127.0.0.1:11435", explicit: false });
  assert.deepEqual(serverTarget({ env: { GROVE_PORT: "9000" } }), { url: "http://127.0.0.1:9000", explicit: true });
  assert.deepEqual(serverTarget({ env: { GROVE_HOST: "http://127.0.0.1:11434" } }), { url: "http://127.0.0.1:11434", explicit: true });
  assert.deepEqual(serverTarget({ env: { GROVE_HOST: "0.0.0.0:11434" } }), { url: "http://127.0.0.1:11434", explicit: true });
  assert.deepEqual(serverTarget({ env: { GROVE_HOST: "gpu-box", GROVE_PORT: "8000" } }), { url: "http://gpu-box:8000", explicit: true });
  assert.deepEqual(serverTarget({ env: { GROVE_HOST: "https://grove.example/" } }), { url: "https://grove.example", explicit: true });
  assert.deepEqual(serverTarget({ env: { GROVE_HOST: "[::1]:7000" } }), { url: "http://[::1]:7000", explicit: true });
  assert.deepEqual(serverTarget({ env: { GROVE_HOST: "::" } }), { url: "http://[::1]:11435", explicit: true });
  assert.deepEqual(serverTarget({ hostFlag: "127.0.0.1:1234", env: { GROVE_HOST: "elsewhere" } }), { url: "http://127.0.0.1:1234", explicit: true });
  assert.equal(serverTarget({ env: { GROVE_HOST: "ftp://x" } }), undefined);
  assert.equal(serverTarget({ env: { GROVE_HOST: "x:99999" } }), undefined);
  assert.equal(parseHostSetting("::1")?.host, "::1");
});

test("grove serve binds the host and port of a GROVE_HOST URL, unless --port names another", () => {
  const config = loadConfig({ env: { GROVE_HOST: "http://0.0.0.0:11434", GROVE_API_KEY: "k" } });
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.port, 11434);
  assert.equal(loadConfig({ env: { GROVE_HOST: "127.0.0.1:11434" }, flags: { port: "0" } }).port, 0);
  assert.equal(loadConfig({ env: { GROVE_HOST: "::" } }).host, "::");
});
