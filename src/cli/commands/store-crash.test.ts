import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it, type TestContext } from "node:test";
import { generateModel, type GenerateModelResult } from "../../forge/generate/generate-model.js";
import { FakeHub } from "../../test-support/fake-hub.js";
import { ModelStore } from "../../store/model-store.js";
import { spawnCli } from "../../test-support/run-cli.js";
import type { PullReport } from "./pull.js";

/**
 * Crash safety of `grove import` and `grove pull`: each run starts the real CLI in a child
 * process, SIGKILLs it after a seeded random delay up to a full run's duration, then
 * checks the store is consistent (every registry row points at a complete, digest-verified
 * blob; no blob's content differs from its name) and that rerunning the same command completes
 * with a clean store. Set GROVE_CRASH_SEED to replay a failure.
 */

const IMPORT_RUNS = 12;
/** Runs added, late in the window, when none of the planned kills landed mid-work (a loaded machine). */
const EXTRA_RUNS = 8;
const PULL_RUNS = 8;
const SEED = Number(process.env.GROVE_CRASH_SEED ?? 20_251_128);
/** Download speed of the throttled hub: the 6.2 MB pull takes about 0.4 s, enough to be killed mid-way. */
const BYTES_PER_SECOND = 16 * 1024 * 1024;
const PIECE_BYTES = 64 * 1024;

let directory: string;
let hub: FakeHub;
let proxy: Server;
let proxyEndpoint: string;
/** `small` f32, ~23 MB, for import; `small` q8_0, ~6.2 MB, on the hub. */
let importFile: GenerateModelResult;
let pullFile: GenerateModelResult;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-store-crash-"));
  importFile = await generateModel({ preset: "small", seed: 11, dtype: "f32", outPath: join(directory, "small-f32.gguf") });
  pullFile = await generateModel({ preset: "small", seed: 12, dtype: "q8_0", outPath: join(directory, "small-q8.gguf") });
  hub = await FakeHub.start({
    repos: [{ repo: "acme/small-GGUF", readme: "---\nbase_model: acme/small\nbase_model_relation: quantized\n---\n", files: [{ path: "small.Q8_0.gguf", content: await readFile(pullFile.path) }] }],
  });
  ({ server: proxy, endpoint: proxyEndpoint } = await startThrottlingProxy(hub.endpoint));
});
after(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  await hub?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("store crash safety", { timeout: 180_000 }, () => {
  const random = mulberry32(SEED);

  it(`survives SIGKILL at ${IMPORT_RUNS} random points of grove import`, async (t) => {
    await crashRuns(t, "import", IMPORT_RUNS, random, (home) => ["import", importFile.path, "--name", "small:f32", "--json", "--home", home], importFile, "small:f32");
  });

  it(`survives SIGKILL at ${PULL_RUNS} random points of grove pull, and resumes the download`, async (t) => {
    await crashRuns(t, "pull", PULL_RUNS, random, (home) => ["pull", "hf:acme/small-GGUF", "--name", "small:q8", "--json", "--endpoint", proxyEndpoint, "--home", home], pullFile, "small:q8");
  });
});

/** Runs `runs` kill-then-rerun cycles of one command, each in a fresh store. */
async function crashRuns(t: TestContext, label: string, runs: number, random: () => number, args: (home: string) => string[], file: GenerateModelResult, name: string): Promise<void> {
  // Undisturbed runs give the window the kill delays are drawn from: from a little before the
  // command reaches the store (the time `grove ls` takes: Node and the CLI starting, the store
  // opening) to the end of a full run. Kills drawn from 0 would mostly land in Node's startup.
  const startupMs = await timed(["ls", "--home", join(directory, `${label}-startup`)]);
  const typicalMs = await timed(args(join(directory, `${label}-baseline`)));
  const earliestMs = Math.min(0.8 * startupMs, typicalMs / 2);
  const outcomes = { killed: 0, finished: 0, killedAfterCommit: 0, leftTemp: 0, leftUnreferencedBlob: 0, resumed: 0 };
  // On a loaded machine a run can take far longer than the baseline did, so every timed kill may
  // land before the command touched the store: then up to EXTRA_RUNS more runs are killed a
  // random 0–50 ms after a file first appears in the store's temp folder (mid-write by definition).
  const midWorkSoFar = () => outcomes.leftTemp + outcomes.leftUnreferencedBlob + outcomes.killedAfterCommit;
  for (let run = 0; run < runs || (run < runs + EXTRA_RUNS && midWorkSoFar() === 0); run++) {
    const home = join(directory, `${label}-${run}`);
    const timed = run < runs;
    const delayMs = Math.floor(timed ? earliestMs + random() * (typicalMs - earliestMs) : random() * 50);
    const context = `${label} run ${run} (seed ${SEED}, killed ${timed ? `after ${delayMs} ms of ${Math.round(typicalMs)}` : `${delayMs} ms after its first temp file`})`;
    const child = spawnCli(args(home));
    const trigger = timed ? sleep(delayMs) : firstTempFile(join(home, "tmp"), child.result).then(() => sleep(delayMs));
    const exited = await Promise.race([child.result.then(() => true), trigger.then(() => false)]);
    if (!exited) child.kill("SIGKILL");
    const killed = await child.result;
    if (killed.code === 0) outcomes.finished++;
    else outcomes.killed++;
    assert.ok(killed.code === 0 || child.signalCode === "SIGKILL", `${context}: exited with ${killed.code}: ${killed.stderr}`);

    const state = await checkStore(home, file, name, context, { requireModel: killed.code === 0 });
    if (state.tempFiles > 0) outcomes.leftTemp++;
    if (state.unreferenced > 0) outcomes.leftUnreferencedBlob++;
    if (state.models > 0 && killed.code !== 0) outcomes.killedAfterCommit++;

    if (label === "import" && state.tempFiles > 0) {
      // The killed writer is gone, so its temp files are stale at once: grove gc leaves nothing.
      const gc = await spawnCli(["gc", "--json", "--home", home]).result;
      assert.equal(gc.code, 0, gc.stderr);
      assert.deepEqual(await readdir(join(home, "tmp")), [], `${context}: temp files left after grove gc`);
    }
    const rerun = await spawnCli(args(home)).result;
    assert.equal(rerun.code, 0, `${context}: the rerun failed: ${rerun.stderr}`);
    if (label === "pull") {
      const report = JSON.parse(rerun.stdout) as PullReport;
      // A partial download left by the kill is resumed, not fetched again.
      if (!report.alreadyStored) assert.equal(report.downloadedBytes, file.fileSize - state.partialBytes, `${context}: bytes fetched by the rerun`);
      if (state.partialBytes > 0) outcomes.resumed++;
    }
    await checkStore(home, file, name, `${context}, after the rerun`, { requireModel: true });
    // Whatever the killed run left that the rerun did not adopt, its writer is gone: grove gc removes it.
    const gc = await spawnCli(["gc", "--json", "--home", home]).result;
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(await readdir(join(home, "tmp")).catch(() => []), [], `${context}: temp files left after the rerun and grove gc`);
    await rm(home, { recursive: true, force: true });
  }
  t.diagnostic(`${label}: seed ${SEED}, kills between ${Math.round(earliestMs)} and ${Math.round(typicalMs)} ms, ${JSON.stringify(outcomes)}`);
  // Kills that all landed before the command touched the store would prove nothing.
  const midWork = outcomes.leftTemp + outcomes.leftUnreferencedBlob + outcomes.killedAfterCommit;
  assert.ok(midWork >= 1, `no kill of ${label} landed while it wrote to the store: ${JSON.stringify(outcomes)}`);
}

/** Resolves when `folder` holds a file, polling every 2 ms, or when `done` settles first. */
async function firstTempFile(folder: string, done: Promise<unknown>): Promise<void> {
  let finished = false;
  void done.then(() => (finished = true));
  while (!finished) {
    const entries = await readdir(folder).catch(() => []);
    if (entries.length > 0) return;
    await sleep(2);
  }
}

/** Runs `grove ARGS` to completion and returns how long it took, in milliseconds. */
async function timed(args: string[]): Promise<number> {
  const started = performance.now();
  const run = await spawnCli(args).result;
  assert.equal(run.code, 0, run.stderr);
  return performance.now() - started;
}

interface StoreState {
  /** Models in the registry. */
  models: number;
  tempFiles: number;
  unreferenced: number;
  /** Bytes of the download's `.partial` file, 0 when there is none. */
  partialBytes: number;
}

/**
 * Opens the store and checks it: no blob whose content differs from its name, no registry row
 * without its blob, each row's size that of its blob; with `requireModel`, the model is there
 * under its name and no blob is unreferenced.
 */
async function checkStore(home: string, file: GenerateModelResult, name: string, context: string, options: { requireModel: boolean }): Promise<StoreState> {
  const store = await ModelStore.open(home);
  try {
    const verify = await store.verify();
    assert.deepEqual(verify.mismatched, [], `${context}: blobs whose content differs from their name`);
    assert.deepEqual(verify.missing, [], `${context}: registry rows without a blob`);
    const models = await store.list();
    for (const model of models) {
      assert.equal(model.digest, file.digest, `${context}: an unexpected model`);
      assert.equal((await stat(store.blobs.pathOf(model.digest))).size, model.size, `${context}: blob size`);
    }
    if (options.requireModel) {
      assert.deepEqual(models.map((model) => [model.digest, model.names]), [[file.digest, [name]]], `${context}: the model and its name`);
      assert.deepEqual(verify.unreferenced, [], `${context}: unreferenced blobs after a completed run`);
    }
    const temp = await readdir(store.blobs.tempDirectory);
    const partial = temp.find((name) => name.endsWith(".partial"));
    const partialBytes = partial === undefined ? 0 : (await stat(join(store.blobs.tempDirectory, partial))).size;
    return { models: models.length, tempFiles: temp.length, unreferenced: verify.unreferenced.length, partialBytes };
  } finally {
    await store.close();
  }
}

/**
 * A reverse proxy in front of the fake hub that sends bodies at `BYTES_PER_SECOND`, so that a
 * download lasts long enough to be killed part-way. A client that goes away stops its upstream.
 */
async function startThrottlingProxy(upstream: string): Promise<{ server: Server; endpoint: string }> {
  const target = new URL(upstream);
  const server = createServer((request, response) => {
    const forward = httpRequest(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: { ...request.headers, host: target.host } },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        pipeline(answer, throttle, response).catch(() => answer.destroy());
      },
    );
    forward.on("error", () => response.destroy());
    request.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function* throttle(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    for (let offset = 0; offset < chunk.length; offset += PIECE_BYTES) {
      const piece = chunk.subarray(offset, offset + PIECE_BYTES);
      yield piece;
      await sleep((piece.length / BYTES_PER_SECOND) * 1000);
    }
  }
}

/** A small seeded PRNG (mulberry32): the same seed, the same kill points. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
