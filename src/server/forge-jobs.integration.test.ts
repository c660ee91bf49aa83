import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI, { toFile } from "openai";
import { loadConfig } from "../config/config.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, startTestGrove } from "../test-support/grove-fixture.js";

// Forge jobs over HTTP against a real server on port 0 with generated models: quantize, merge
// and fine-tune jobs through `/api/forge`, OpenAI's files and fine-tuning API through the
// official client, event streams, cancel and resume, and bad input refused before anything is written.

const TEXT = "The grove stood at the edge of the valley, where the river turned east and the road became a path. ";
const RECORDS = Array.from({ length: 40 }, (_, index) => ({ text: `${TEXT}Line ${index % 4}.` }));

let directory: string;
let home: string;
let grove: RunningGrove;
let client: OpenAI;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-forge-jobs-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  for (const [name, seed] of [["tiny:base", 7], ["tiny:b", 8]] as const) {
    const path = join(directory, `${seed}.gguf`);
    await generateModel({ preset: "test-tiny", seed, dtype: "f16", outPath: path });
    await store.importFile(path, { name });
  }
  await store.close();
  const config = loadConfig({ env: {}, flags: { home, model: "tiny:base", port: 0, threads: 1, contextSize: 256, logLevel: "silent" } });
  grove = await startGrove(config);
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${grove.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

/** Reads a job's event stream to its end, calling `onMessage` as each message arrives. */
async function follow(id: string, onMessage?: (message: any) => unknown): Promise<any[]> {
  const response = await fetch(`${grove.url}/api/forge/jobs/${id}/events`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const messages: any[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const data = buffer.slice(0, end).replace(/^data: /, "");
      buffer = buffer.slice(end + 2);
      if (data === "[DONE]") return messages;
      const message = JSON.parse(data);
      messages.push(message);
      await onMessage?.(message);
    }
  }
  assert.fail("the stream closed without [DONE]");
}

const modelNames = async (): Promise<string[]> => ((await api("GET", "/api/models")).body.models as { names: string[] }[]).flatMap((model) => model.names);
const jobCount = async (): Promise<number> => ((await api("GET", "/api/forge/jobs")).body.jobs as unknown[]).length;

describe("forge jobs over HTTP", () => {
  test("a quantize job finishes and its fork is in the store, with lineage", async () => {
    const started = await api("POST", "/api/forge/quantize", { model: "tiny:base", type: "q8_0", name: "tiny:q8" });
    assert.equal(started.status, 202);
    assert.equal(started.body.kind, "quantize");
    assert.match(started.body.id, /^job-[0-9a-f]{12}$/);
    const messages = await follow(started.body.id);
    const last = messages.at(-1);
    assert.equal(last.job.status, "succeeded", JSON.stringify(last));
    const job = (await api("GET", `/api/forge/jobs/${started.body.id}`)).body;
    assert.equal(job.status, "succeeded");
    assert.equal(job.progress.fraction, 1);
    assert.ok((await modelNames()).includes("tiny:q8"));
    const details = (await api("GET", "/api/models/tiny:q8")).body;
    assert.equal(details.parents[0].relation, "quantized");
    assert.equal(details.parents[0].recipe.parameters.type, "Q8_0");
    // A finished job's stream is its final state alone.
    const replay = await follow(started.body.id);
    assert.equal(replay.length, 1);
    assert.equal(replay[0].event, null);
    assert.equal(replay[0].job.status, "succeeded");
  });

  test("a merge job finishes and the merged fork serves", async () => {
    const started = await api("POST", "/api/forge/merge", { models: ["tiny:base", "tiny:b"], method: "linear", weights: [0.5, 0.5], name: "tiny:merged" });
    assert.equal(started.status, 202);
    const last = (await follow(started.body.id)).at(-1);
    assert.equal(last.job.status, "succeeded", JSON.stringify(last));
    const details = (await api("GET", "/api/models/tiny:merged")).body;
    assert.equal(details.parents.length, 2);
    assert.equal(details.parents[0].relation, "merge");
    const chat = await client.chat.completions.create({ model: "tiny:merged", messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    assert.equal(chat.choices.length, 1);
  });

  test("a fine-tune job with inline records streams its progress and finishes", async () => {
    const started = await api("POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, epochs: 2, learning_rate: 1e-3, ctx: 256, name: "tiny:inline" });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.body.kind, "finetune");
    assert.equal(started.body.parameters.records, 40);
    const messages = await follow(started.body.id);
    const last = messages.at(-1);
    assert.equal(last.job.status, "succeeded", JSON.stringify(last));
    const metrics = messages.filter((message) => message.event?.type === "metrics");
    assert.ok(metrics.length >= 2, `${metrics.length} metrics events`);
    assert.ok(metrics.every((message) => Number.isFinite(message.event.data.train_loss)));
    assert.ok(metrics.some((message) => message.event.data.valid_loss !== undefined), "epoch events carry the validation loss");
    const fractions = messages.map((message) => message.job.progress.fraction);
    assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), "progress only grows");
    const job = (await api("GET", `/api/forge/jobs/${started.body.id}`)).body;
    assert.equal(job.epochs.length, 2);
    assert.ok((await modelNames()).includes("tiny:inline"));
    const files = await readdir(join(home, "jobs", started.body.id));
    assert.ok(files.includes("data.jsonl"), `the records are kept in the job directory: ${files.join(", ")}`);
  });

  test("cancelling a running fine-tune leaves it cancelled with no model; resumed, it finishes from its checkpoint", async () => {
    const before = await modelNames();
    const started = await api("POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, epochs: 12, ctx: 256, name: "tiny:resumed" });
    assert.equal(started.status, 202);
    const id = started.body.id as string;
    let cancelled: { status: number; body: any } | undefined;
    const messages = await follow(id, async (message) => {
      if (cancelled === undefined && /^Checkpoint saved after epoch 1$/.test(message.event?.message ?? "")) cancelled = await api("POST", `/api/forge/jobs/${id}/cancel`);
    });
    assert.equal(cancelled?.status, 200, JSON.stringify(cancelled?.body));
    assert.equal(cancelled?.body.status, "cancelled");
    assert.equal(messages.at(-1).job.status, "cancelled");
    assert.equal((await api("GET", `/api/forge/jobs/${id}`)).body.checkpointEpoch, 0);
    assert.deepEqual(await modelNames(), before, "no model stored");
    assert.equal((await api("POST", `/api/forge/jobs/${id}/cancel`)).status, 409, "a stopped job cannot be cancelled again");

    const resumed = await api("POST", `/api/forge/jobs/${id}/resume`);
    assert.equal(resumed.status, 202, JSON.stringify(resumed.body));
    assert.equal(resumed.body.status, "queued");
    assert.equal((await follow(id)).at(-1).job.status, "succeeded");
    const job = (await api("GET", `/api/forge/jobs/${id}`)).body;
    assert.deepEqual(job.epochs.map((epoch: { epoch: number }) => epoch.epoch), Array.from({ length: 12 }, (_, index) => index));
    assert.ok((await modelNames()).includes("tiny:resumed"));
    assert.equal((await api("POST", `/api/forge/jobs/${id}/resume`)).status, 409, "a finished job does not resume");
  });

  test("OpenAI's client uploads a file, fine-tunes, lists events and chats with the fine-tuned model", async () => {
    const jsonl = `${RECORDS.map((record) => JSON.stringify(record)).join("\n")}\n`;
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), "notes.jsonl"), purpose: "fine-tune" });
    assert.match(file.id, /^file-/);
    assert.equal(file.object, "file");
    assert.equal(file.bytes, Buffer.byteLength(jsonl));
    assert.equal((await client.files.retrieve(file.id)).filename, "notes.jsonl");
    assert.ok((await client.files.list()).data.some((entry) => entry.id === file.id));

    const created = await client.fineTuning.jobs.create({ model: "tiny:base", training_file: file.id, hyperparameters: { n_epochs: 1, learning_rate_multiplier: 10 }, suffix: "Notes" });
    assert.equal(created.object, "fine_tuning.job");
    assert.ok(["queued", "running"].includes(created.status));
    assert.equal(created.training_file, file.id);
    assert.equal(created.fine_tuned_model, null);
    let job = created;
    for (let attempt = 0; attempt < 600 && !["succeeded", "failed", "cancelled"].includes(job.status); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // polling, as OpenAI clients do
      job = await client.fineTuning.jobs.retrieve(created.id);
    }
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.fine_tuned_model, `tiny:ft-notes-${created.id.slice(4)}`);
    assert.ok(job.finished_at !== null && job.finished_at >= job.created_at);
    assert.ok((job.trained_tokens ?? 0) > 0);
    assert.equal(job.hyperparameters.n_epochs, 1);
    assert.ok(Math.abs(Number(job.hyperparameters.learning_rate_multiplier) - 10) < 1e-9);

    const events = await client.fineTuning.jobs.listEvents(created.id, { limit: 100 });
    assert.ok(events.data.length >= 3);
    assert.ok(events.data.every((event) => event.object === "fine_tuning.job.event" && typeof event.created_at === "number"));
    assert.ok(events.data.some((event) => event.type === "metrics" && Number.isFinite((event.data as { train_loss: number }).train_loss)));
    assert.equal(events.data[0]!.message, "The job has successfully completed", "newest first");
    const firstPage = await client.fineTuning.jobs.listEvents(created.id, { limit: 2 });
    assert.equal(firstPage.data.length, 2);
    assert.ok(firstPage.hasNextPage());

    const list = await client.fineTuning.jobs.list({ limit: 1 });
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0]!.id, created.id, "newest first");
    assert.ok(list.hasNextPage(), "the earlier fine-tunes are on the next page");

    const chat = await client.chat.completions.create({ model: job.fine_tuned_model!, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    assert.equal(chat.model, job.fine_tuned_model);
    assert.equal(chat.choices.length, 1);
    assert.deepEqual(await client.files.delete(file.id), { id: file.id, object: "file", deleted: true });
  });

  test("OpenAI's client fine-tunes with method supervised, Grove's loss_on and LoRA hyperparameters", async () => {
    const conversation = (index: number) => ({ messages: [{ role: "user", content: `Name tree ${index}.` }, { role: "assistant", content: `Tree ${index} is an oak.` }] });
    const jsonl = `${Array.from({ length: 40 }, (_, index) => JSON.stringify(conversation(index % 5))).join("\n")}\n`;
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), "chat.jsonl"), purpose: "fine-tune" });
    // Grove's fields ride in OpenAI's hyperparameters object, so the client's type is widened here.
    const hyperparameters = { n_epochs: 1, batch_size: 2, learning_rate_multiplier: 5, loss_on: "answers", lora: { rank: 4, targets: ["q", "v"] } } as OpenAI.FineTuning.SupervisedHyperparameters;
    const created = await client.fineTuning.jobs.create({ model: "tiny:base", training_file: file.id, seed: 42, method: { type: "supervised", supervised: { hyperparameters } } });
    assert.equal(created.method?.type, "supervised");
    assert.equal(created.seed, 42);
    assert.deepEqual(created.method?.supervised?.hyperparameters, {
      n_epochs: 1,
      batch_size: 2,
      learning_rate_multiplier: 5,
      loss_on: "answers",
      lora: { rank: 4, alpha: 16, dropout: 0.05, targets: ["q", "v"] },
    });
    // The job Grove runs has them as its own options.
    const record = (await api("GET", `/api/forge/jobs/${created.id}`)).body;
    assert.equal(record.parameters.lossOn, "answers");
    assert.equal(record.parameters.accumulate, 2, "batch_size is windows per optimizer step");
    assert.deepEqual(record.parameters.lora, { rank: 4, alpha: 16, dropout: 0.05, targets: ["q", "v"] });
    assert.equal(record.parameters.shuffleSeed, 42, "OpenAI's seed seeds the records' shuffle");
    let job = created;
    for (let attempt = 0; attempt < 600 && !["succeeded", "failed", "cancelled"].includes(job.status); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // polling, as OpenAI clients do
      job = await client.fineTuning.jobs.retrieve(created.id);
    }
    assert.equal(job.status, "succeeded", JSON.stringify(job.error));
    assert.equal(job.hyperparameters.batch_size, 2);

    // The defaults: LoRA's when the object is empty; the loss on answers with the ggml trainer.
    const defaults = await client.fineTuning.jobs.create({
      model: "tiny:base",
      training_file: file.id,
      method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 1, lora: {} } as OpenAI.FineTuning.SupervisedHyperparameters } },
    });
    assert.equal(defaults.seed, 0, "the default shuffle seed");
    assert.equal((await api("GET", `/api/forge/jobs/${defaults.id}`)).body.parameters.shuffleSeed, 0, "the job shuffles by it");
    assert.deepEqual(defaults.method?.supervised?.hyperparameters, {
      n_epochs: 1,
      batch_size: 1,
      learning_rate_multiplier: 1,
      loss_on: "answers",
      lora: { rank: 8, alpha: 16, dropout: 0.05, targets: ["q", "k", "v", "o", "gate", "up", "down"] },
    });
    await client.fineTuning.jobs.cancel(defaults.id);

    // Another method is refused by name, through the official client.
    await assert.rejects(
      client.fineTuning.jobs.create({ model: "tiny:base", training_file: file.id, method: { type: "dpo", dpo: { hyperparameters: { beta: 0.1 } } } }),
      (error: any) => error.status === 400 && error.param === "method.type" && /method type 'supervised' only, not "dpo"/.test(error.message),
    );
  });

  test("bad input is refused with a clear 4xx and nothing is written", async () => {
    const [models, jobs, files] = [await modelNames(), await jobCount(), (await client.files.list()).data.length];
    const cases: [string, string, unknown, number, string | null, RegExp?][] = [
      ["POST", "/api/forge/quantize", "{not json", 400, null, /Malformed JSON/],
      ["POST", "/api/forge/quantize", { model: "tiny:nothing", type: "Q8_0" }, 404, null],
      ["POST", "/api/forge/quantize", { model: "tiny:base", type: "Q9_X" }, 400, "type", /Unknown quantization type/],
      ["POST", "/api/forge/quantize", { model: "tiny:base", type: "Q8_0", nmae: "x" }, 400, null, /nmae/],
      ["POST", "/api/forge/quantize", { model: "tiny:base", type: "Q8_0", name: "Bad Name" }, 400, "name"],
      ["POST", "/api/forge/merge", { models: ["tiny:base", "tiny:b"], method: "average" }, 400, "method"],
      ["POST", "/api/forge/merge", { models: ["tiny:base", "tiny:b"], method: "linear", weights: [1] }, 400, "weights"],
      ["POST", "/api/forge/finetune", { model: "tiny:base" }, 400, "data"],
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, data: "/tmp/x.jsonl" }, 400, "data"],
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: [{ text: "ok" }, { prompt: "x" }] }, 400, "records", /record line 2/],
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, ctx: 100 }, 400, "ctx"],
      ["POST", "/api/forge/finetune", { model: "tiny:nothing", records: RECORDS }, 404, null],
      // No --data-dir: a request names no server path at all (security.integration.test covers --data-dir).
      ["POST", "/api/forge/finetune", { model: "tiny:base", data: join(directory, "missing.jsonl") }, 403, "data", /reads none for requests/],
      ["GET", "/api/forge/jobs/job-000000000000", undefined, 404, null],
      ["GET", "/api/forge/jobs/nope", undefined, 404, null],
      ["POST", "/api/forge/jobs/job-000000000000/cancel", undefined, 404, null],
      ["POST", "/api/forge/jobs/job-000000000000/resume", undefined, 404, null],
      ["GET", "/api/forge/jobs/job-000000000000/events", undefined, 404, null],
      ["POST", "/v1/fine_tuning/jobs", { model: "tiny:base", training_file: "file-000000000000000000000000" }, 404, "training_file"],
      ["POST", "/v1/fine_tuning/jobs", { model: "tiny:base", training_file: "file-x", validation_file: "file-y" }, 400, "validation_file"],
      ["POST", "/v1/fine_tuning/jobs", { model: "tiny:base", training_file: "file-x", hyperparameters: { batch_size: 0 } }, 400, "hyperparameters.batch_size"],
      ["POST", "/v1/fine_tuning/jobs", { model: "tiny:base", training_file: "file-x", method: { type: "reinforcement" } }, 400, "method.type", /'supervised' only, not "reinforcement"/],
      ["POST", "/v1/fine_tuning/jobs", { model: "tiny:base", training_file: "file-x", method: { type: "" } }, 400, "method.type"],
      [
        "POST",
        "/v1/fine_tuning/jobs",
        { model: "tiny:base", training_file: "file-x", hyperparameters: { n_epochs: 1 }, method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 2 } } } },
        400,
        "hyperparameters",
        /not both/,
      ],
      ...(
        [
          [{ loss_on: "prompts" }, "loss_on"],
          [{ lora: { rank: 0 } }, "lora.rank"],
          [{ lora: { rank: 4.5 } }, "lora.rank"],
          [{ lora: { alpha: -1 } }, "lora.alpha"],
          [{ lora: { dropout: 1 } }, "lora.dropout"],
          [{ lora: { targets: [] } }, "lora.targets"],
          [{ lora: { targets: ["q", "q"] } }, "lora.targets"],
          [{ lora: { targets: ["qkv"] } }, "lora.targets[0]"],
          [{ lora: { ranks: 8 } }, "lora"],
          [{ learning_rate_multiplier: 1e6 }, "learning_rate_multiplier"],
        ] as const
      ).map(([hyperparameters, param]): [string, string, unknown, number, string] => [
        "POST",
        "/v1/fine_tuning/jobs",
        { model: "tiny:base", training_file: "file-x", method: { type: "supervised", supervised: { hyperparameters } } },
        400,
        `method.supervised.hyperparameters.${param}`,
      ]),
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, loss_on: "everything" }, 400, "loss_on"],
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, lora: { rank: 1.5 } }, 400, "lora.rank"],
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, shuffle: true }, 400, "shuffle"],
      ["POST", "/api/forge/finetune", { model: "tiny:base", records: RECORDS, shuffle: -1 }, 400, "shuffle"],
      ["POST", "/v1/fine_tuning/jobs", { model: "tiny:base", training_file: "file-x", seed: 1.5 }, 400, "seed"],
      ["GET", "/v1/fine_tuning/jobs/ftjob-nope", undefined, 404, null],
      ["GET", "/v1/fine_tuning/jobs?limit=0", undefined, 400, "limit"],
      ["GET", "/v1/files/file-000000000000000000000000", undefined, 404, null],
      ["DELETE", "/v1/files/file-nope", undefined, 404, null],
    ];
    for (const [method, path, body, status, param, message] of cases) {
      const response = await api(method, path, body);
      const label = `${method} ${path} ${typeof body === "string" ? body : JSON.stringify(body)?.slice(0, 80)}`;
      assert.equal(response.status, status, `${label}: ${JSON.stringify(response.body)}`);
      assert.equal(typeof response.body.error.message, "string", label);
      if (param !== null) assert.equal(response.body.error.param, param, `${label}: ${JSON.stringify(response.body)}`);
      if (message !== undefined) assert.match(response.body.error.message, message, label);
    }
    await assert.rejects(
      client.files.create({ file: await toFile(Buffer.from('{"text": "fine"}\n{"text": oops}\n'), "bad.jsonl"), purpose: "fine-tune" }),
      (error: any) => error.status === 400 && error.param === "file" && /bad\.jsonl line 2 is not valid JSON/.test(error.message),
    );
    await assert.rejects(
      client.files.create({ file: await toFile(Buffer.from('{"text": "fine"}\n'), "ok.jsonl"), purpose: "assistants" }),
      (error: any) => error.status === 400 && error.param === "purpose",
    );
    const notMultipart = await api("POST", "/v1/files", { purpose: "fine-tune" });
    assert.equal(notMultipart.status, 400);
    await assert.rejects(client.fineTuning.jobs.retrieve("job-000000000000"), (error: any) => error.status === 404);
    assert.deepEqual(await modelNames(), models);
    assert.equal(await jobCount(), jobs, "no job created");
    assert.equal((await client.files.list()).data.length, files, "no file stored");
  });
});

describe("forge jobs without a store", () => {
  test("a server of one --model FILE answers 409: forge jobs need a store", async () => {
    const model = await createTestModel("test-tiny", 7);
    const single = await startTestGrove(model);
    try {
      for (const [method, path] of [["POST", "/api/forge/quantize"], ["GET", "/api/forge/jobs"], ["GET", "/v1/fine_tuning/jobs"], ["POST", "/v1/files"]] as const) {
        const response = await fetch(`${single.url}${path}`, { method, ...(method === "POST" ? { headers: { "content-type": "application/json" }, body: "{}" } : {}) });
        const body = (await response.json()) as { error: { message: string; code: string } };
        assert.equal(response.status, 409, path);
        assert.match(body.error.message, /Forge jobs need a store/);
      }
    } finally {
      await single.close();
      await model.cleanup();
    }
  });
});
