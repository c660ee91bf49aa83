import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Digest } from "../core/digest.js";
import { ConfigError } from "../core/errors.js";
import { openSqliteDatabase } from "../store/sqlite-database.js";
import { startPostgres, type TestPostgres } from "../test-support/postgres-server.js";
import { comparabilityKey, whyApart } from "./comparability.js";
import { machineFingerprint, type Machine } from "./machine.js";
import { ResultStore, type ResultRecord } from "./result-store.js";

// The result store on both homes: a results.db of an older Grove migrates in place (its rows keep
// their numbers, gain null errors and an unknown machine), and two replicas on one PostgreSQL
// database see each other's results.

let directory: string;
let server: TestPostgres;
let count = 0;
const MODEL = `sha256:${"a".repeat(64)}` as Digest;
const described = { cpu: "Test CPU", cores: 8, memoryGib: 31.2, gpu: null };
const MACHINE: Machine = { ...described, fingerprint: machineFingerprint(described) };

function record(extra: Partial<ResultRecord> = {}): ResultRecord {
  return {
    modelDigest: MODEL,
    kind: "quality",
    task: "perplexity",
    taskDigest: "sha256:text",
    settings: { ctx: 256, batch: 2048 },
    engineVersion: "engine 1",
    metrics: { perplexity: 12.5 },
    standardErrors: { perplexity: 0.4 },
    samples: { unit: "chunk", values: { nll: [2.5, 2.55] } },
    machine: null,
    flags: [],
    details: {},
    createdAt: "2026-12-07T00:00:00.000Z",
    ...extra,
  };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-result-store-"));
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

describe("ResultStore on SQLite", () => {
  it("migrates a results.db of an older Grove: rows kept, errors null, machine unknown", async () => {
    const home = join(directory, "old");
    await mkdir(home);
    // The table exactly as the first Grove with results wrote it.
    const db = openSqliteDatabase(join(home, "results.db"));
    db.exec(`CREATE TABLE results (
      model_digest TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('quality', 'cost')), task TEXT NOT NULL, task_digest TEXT NOT NULL,
      settings TEXT NOT NULL CHECK (json_valid(settings)), engine_version TEXT NOT NULL, metrics TEXT NOT NULL CHECK (json_valid(metrics)),
      flags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(flags)), details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)), created_at TEXT NOT NULL,
      PRIMARY KEY (model_digest, task, task_digest, settings, engine_version)) STRICT`);
    db.prepare("INSERT INTO results VALUES (?, 'cost', 'bench', 'sha256:w', '{\"ctx\":512}', 'engine 1', '{\"decodeTokensPerSecond\":150}', '[]', '{}', '2026-01-01T00:00:00.000Z')").run(MODEL);
    db.close();

    const store = await ResultStore.open(home);
    try {
      const [old] = await store.list();
      assert.equal(old!.metrics.decodeTokensPerSecond, 150);
      assert.deepEqual(old!.standardErrors, { decodeTokensPerSecond: null });
      assert.equal(old!.samples, null);
      assert.equal(old!.machine, null);
      // An unknown machine compares with no other result, not even another unknown one.
      assert.notEqual(comparabilityKey(old!), comparabilityKey({ ...old!, modelDigest: `sha256:${"b".repeat(64)}` as Digest }));
      assert.match(whyApart({ ...old!, machine: MACHINE }, old!)!, /measured on an unknown machine, the ranked ones on Test CPU × 8 cores/);
      // The same measurement on a known machine is another row, not a replacement.
      await store.put({ ...old!, machine: MACHINE, metrics: { decodeTokensPerSecond: 160 }, standardErrors: { decodeTokensPerSecond: 3 } });
      assert.equal((await store.list()).length, 2);
      assert.equal((await store.get({ ...old!, machine: MACHINE }))!.standardErrors!.decodeTokensPerSecond, 3);
    } finally {
      await store.close();
    }
    // Opening again does not migrate twice.
    const again = await ResultStore.open(home);
    assert.equal((await again.list()).length, 2);
    await again.close();
  });

  it("keeps errors, samples and machine, and replaces a row with the same key", async () => {
    const home = join(directory, "new");
    await mkdir(home);
    const store = await ResultStore.open(home);
    try {
      await store.put(record());
      await store.put(record({ metrics: { perplexity: 12 }, createdAt: "2026-12-07T01:00:00.000Z" }));
      const rows = await store.list({ task: "perplexity" });
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0], record({ metrics: { perplexity: 12 }, createdAt: "2026-12-07T01:00:00.000Z" }));
      assert.deepEqual(await store.list({ modelDigests: [] }), []);
    } finally {
      await store.close();
    }
  });
});

describe("ResultStore on a shared PostgreSQL database", () => {
  it("two replicas see each other's results; a rerun replaces the row on both", async () => {
    const database = await server.createDatabase(`results_${++count}`);
    const a = await ResultStore.open(join(directory, "replica-a"), { database });
    const b = await ResultStore.open(join(directory, "replica-b"), { database });
    try {
      await a.put(record());
      assert.deepEqual(await b.list(), [record()]);
      await b.put(record({ kind: "cost", task: "bench", taskDigest: "sha256:w", metrics: { decodeTokensPerSecond: 150 }, standardErrors: { decodeTokensPerSecond: 2 }, samples: null, machine: MACHINE }));
      assert.equal((await a.list({ kind: "cost" }))[0]!.machine!.fingerprint, MACHINE.fingerprint);
      await a.put(record({ metrics: { perplexity: 11 }, createdAt: "2026-12-08T00:00:00.000Z" }));
      const seen = await b.get({ modelDigest: MODEL, task: "perplexity", taskDigest: "sha256:text", settings: { batch: 2048, ctx: 256 }, engineVersion: "engine 1", machine: null });
      assert.equal(seen!.metrics.perplexity, 11);
      assert.equal((await b.list()).length, 2);
      assert.deepEqual((await b.list({ modelDigests: [MODEL], task: "bench" })).map((row) => row.task), ["bench"]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a bad URL is a ConfigError naming the setting", async () => {
    await assert.rejects(ResultStore.open(directory, { database: "mysql://nowhere" }), (error: unknown) => error instanceof ConfigError && /postgres:\/\//.test(error.message));
  });
});
