import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { defaultContextSize } from "../core/context-size.js";
import { ConfigError } from "../core/errors.js";
import { loadConfig } from "./config.js";

test("defaults ← config file ← environment ← flags", async () => {
  const home = await mkdtemp(join(tmpdir(), "grove-config-"));
  try {
    await writeFile(join(home, "config.json"), JSON.stringify({ port: 9000, parallel: 2, threads: 3 }));
    const config = loadConfig({ env: { GROVE_HOME: home, GROVE_PARALLEL: "6" }, flags: { threads: "1" } });
    assert.equal(config.port, 9000);
    assert.equal(config.parallel, 6);
    assert.equal(config.threads, 1);
    assert.equal(config.host, "127.0.0.1");
    assert.ok(Object.isFrozen(config));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test("a bad value names its flag and variable", () => {
  assert.throws(
    () => loadConfig({ env: { GROVE_PORT: "http" } }),
    (error: unknown) => error instanceof ConfigError && /--port/.test(error.message) && /GROVE_PORT/.test(error.message),
  );
  assert.throws(() => loadConfig({ env: {}, flags: { parallel: "0" } }), /--parallel/);
});

test("a broken config file is a clear error", async () => {
  const home = await mkdtemp(join(tmpdir(), "grove-config-"));
  try {
    await writeFile(join(home, "config.json"), "{ nope");
    assert.throws(() => loadConfig({ env: { GROVE_HOME: home } }), /config\.json is not valid JSON/);
    await writeFile(join(home, "config.json"), JSON.stringify({ prot: 1 }));
    assert.throws(() => loadConfig({ env: { GROVE_HOME: home } }), /unknown key 'prot'/);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test("host, origin and data-directory settings: comma lists, checked, with the flag named on a bad value", () => {
  const config = loadConfig({
    env: { GROVE_ALLOWED_HOSTS: "grove.internal, gpu-box.lan,", GROVE_CORS_ORIGINS: "https://app.example.com,http://localhost:5173" },
    flags: { dataDir: "relative/data" },
  });
  assert.deepEqual(config.allowedHosts, ["grove.internal", "gpu-box.lan"]);
  assert.deepEqual(config.corsOrigins, ["https://app.example.com", "http://localhost:5173"]);
  assert.equal(config.dataDir, join(process.cwd(), "relative/data"));
  assert.deepEqual(loadConfig({ env: {} }).corsOrigins, []);
  assert.equal(loadConfig({ env: {} }).dataDir, "");
  assert.throws(() => loadConfig({ env: {}, flags: { corsOrigins: "https://app.example.com/path" } }), /--cors-origins.*GROVE_CORS_ORIGINS/);
  assert.throws(() => loadConfig({ env: {}, flags: { corsOrigins: "null" } }), /--cors-origins/);
  assert.throws(() => loadConfig({ env: { GROVE_ALLOWED_HOSTS: "evil.example/x" } }), /--allowed-hosts/);
});

test("--cors-origins takes llama-server's localhost keyword, and nothing that only looks like it", () => {
  assert.deepEqual(loadConfig({ env: {}, flags: { corsOrigins: "localhost,https://app.example.com" } }).corsOrigins, ["localhost", "https://app.example.com"]);
  assert.throws(() => loadConfig({ env: {}, flags: { corsOrigins: "localhost.evil.com" } }), /--cors-origins/);
  assert.throws(() => loadConfig({ env: {}, flags: { corsOrigins: "localhost:8080" } }), /--cors-origins/);
});

test("llama-server's --seed, --alias and a batch as small as 16; bad values name the flag and variable", () => {
  const defaults = loadConfig({ env: {} });
  assert.equal(defaults.seed, -1);
  assert.deepEqual(defaults.alias, []);
  const config = loadConfig({ env: { GROVE_SEED: "42" }, flags: { alias: "tinyllama-2, code,", batchSize: "16", ubatchSize: "16" } });
  assert.equal(config.seed, 42);
  assert.deepEqual(config.alias, ["tinyllama-2", "code"]);
  assert.equal(config.batchSize, 16);
  assert.throws(() => loadConfig({ env: {}, flags: { seed: "-2" } }), /--seed.*GROVE_SEED/);
  assert.throws(() => loadConfig({ env: {}, flags: { seed: String(2 ** 32) } }), /--seed/);
  assert.throws(() => loadConfig({ env: {}, flags: { seed: "abc" } }), /--seed/);
  assert.throws(() => loadConfig({ env: {}, flags: { alias: "ok,../etc" } }), /--alias.*GROVE_ALIAS/);
  assert.throws(() => loadConfig({ env: {}, flags: { alias: "has space" } }), /--alias/);
  assert.throws(() => loadConfig({ env: {}, flags: { batchSize: "0" } }), /--batch-size/);
});

test("--pooling: llama-server's types but rank, which says why it is refused", () => {
  assert.equal(loadConfig({ env: {} }).pooling, "auto");
  assert.equal(loadConfig({ env: { GROVE_POOLING: "mean" } }).pooling, "mean");
  for (const pooling of ["none", "cls", "last"]) assert.equal(loadConfig({ env: {}, flags: { pooling } }).pooling, pooling);
  assert.throws(() => loadConfig({ env: {}, flags: { pooling: "rank" } }), /--pooling.*GROVE_POOLING.*rerank/);
  assert.throws(() => loadConfig({ env: {}, flags: { pooling: "max" } }), /--pooling.*expected one of auto, none, mean, cls, last/);
});

test("keepAlive: Ollama's syntax, forever by default, --idle-unload as its older spelling", () => {
  const env = { GROVE_HOME: tmpdir() };
  assert.equal(loadConfig({ env }).keepAlive, Number.POSITIVE_INFINITY);
  assert.equal(loadConfig({ env: { ...env, GROVE_KEEP_ALIVE: "1h30m" } }).keepAlive, 5_400_000);
  assert.equal(loadConfig({ env, flags: { keepAlive: "0" } }).keepAlive, 0);
  assert.equal(loadConfig({ env, flags: { keepAlive: "-1" } }).keepAlive, Number.POSITIVE_INFINITY);
  assert.equal(loadConfig({ env, flags: { idleUnload: "10m" } }).keepAlive, 600_000);
  assert.equal(loadConfig({ env, flags: { idleUnload: "0" } }).keepAlive, Number.POSITIVE_INFINITY, "idle-unload 0 meant never");
  assert.throws(() => loadConfig({ env, flags: { keepAlive: "soon" } }), (error: unknown) => error instanceof ConfigError && /--keep-alive or GROVE_KEEP_ALIVE/.test(error.message));
  assert.throws(() => loadConfig({ env: { ...env, GROVE_IDLE_UNLOAD: "5m" }, flags: { keepAlive: "5m" } }), (error: unknown) => error instanceof ConfigError && /older spelling/.test(error.message));
});

test("--ctx-size: absent unless given (the engine then takes min(2048, the model's training context)); a bad value names the flag", () => {
  assert.equal(loadConfig({ env: {} }).contextSize, undefined);
  assert.equal(loadConfig({ env: { GROVE_CTX_SIZE: "4096" } }).contextSize, 4096);
  assert.equal(loadConfig({ env: {}, flags: { contextSize: "256" } }).contextSize, 256);
  assert.throws(() => loadConfig({ env: {}, flags: { contextSize: "12" } }), (error: unknown) => error instanceof ConfigError && /--ctx-size/.test(error.message) && /GROVE_CTX_SIZE/.test(error.message));
  assert.equal(defaultContextSize(512), 512);
  assert.equal(defaultContextSize(131_072), 2048);
  assert.equal(defaultContextSize(0), 2048);
});
