import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ModelStore } from "../../store/model-store.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { JobRunner, type JobUpdate } from "./job-runner.js";
import { JobStore } from "./job-store.js";

const TEXT = "The grove stood at the edge of the valley, where the river turned east and the road became a path. ";
const RECORDS = Array.from({ length: 40 }, (_, index) => ({ text: `${TEXT}Line ${index % 4}.` }));

describe("JobRunner", () => {
  let base: TestModel;
  let store: ModelStore;

  before(async () => {
    base = await createTestModel("test-tiny", 7);
    store = await ModelStore.open(join(base.directory, "home"));
    await store.importFile(base.path, { name: "tiny:base" });
  });
  after(async () => {
    await store.close();
    await base.cleanup();
  });

  test("jobs a crashed server left running or queued are marked failed at start-up", async () => {
    const jobs = new JobStore(store.home);
    const digest = (await store.resolve("tiny:base")).digest;
    const running = await jobs.create("finetune", { digest, ref: "tiny:base" }, {});
    running.status = "running";
    await jobs.save(running);
    const queued = await jobs.create("quantize", { digest, ref: "tiny:base" }, { type: "Q8_0" });
    const done = await jobs.create("quantize", { digest, ref: "tiny:base" }, { type: "Q8_0" });
    done.status = "succeeded";
    await jobs.save(done);

    // A job another live process owns (a `grove finetune` in a terminal) is left alone.
    const owner = spawn("sleep", ["30"]);
    const elsewhere = await jobs.create("finetune", { digest, ref: "tiny:base" }, {});
    const path = join(jobs.directoryOf(elsewhere.id), "job.json");
    await writeFile(path, JSON.stringify({ ...elsewhere, status: "running", pid: owner.pid }));

    const runner = await JobRunner.open(store);
    owner.kill();
    assert.equal((await runner.get(elsewhere.id)).status, "running");
    await jobs.remove(elsewhere.id);
    const [afterRunning, afterQueued, afterDone] = [await runner.get(running.id), await runner.get(queued.id), await runner.get(done.id)];
    assert.equal(afterRunning.status, "failed");
    assert.match(afterRunning.error ?? "", /server stopped while this job was running.*resume it/);
    assert.equal(afterQueued.status, "failed");
    assert.doesNotMatch(afterQueued.error ?? "", /resume/, "only fine-tunes resume");
    assert.equal(afterDone.status, "succeeded", "finished jobs are left alone");
    assert.equal((await runner.events.read(running.id)).at(-1)?.level, "error");
    await runner.close();
    for (const job of [running, queued, done]) await jobs.remove(job.id);
  });

  test("close cancels the running job and the queued ones, and refuses new jobs", async () => {
    const runner = await JobRunner.open(store, { threads: 1 });
    const first = await runner.startFinetune({ model: "tiny:base", records: RECORDS, epochs: 500 });
    const second = await runner.startQuantize({ model: "tiny:base", type: "Q8_0" });
    const updates: JobUpdate[] = [];
    await new Promise<void>((resolve) => {
      runner.subscribe(first.id, (update) => {
        updates.push(update);
        if (update.event.type === "metrics") resolve();
      });
    });
    assert.equal(updates.at(-1)?.job.status, "running");
    await runner.close();
    assert.equal((await runner.get(first.id)).status, "cancelled");
    assert.equal((await runner.get(second.id)).status, "cancelled");
    assert.equal((await store.list()).length, 1, "nothing stored");
    await assert.rejects(runner.startQuantize({ model: "tiny:base", type: "Q8_0" }), (error: { code?: string }) => error.code === "overloaded");
  });
});
