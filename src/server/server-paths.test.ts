import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidRequestError, NotFoundError, PathNotAllowedError } from "../core/errors.js";
import { TrainingFiles } from "../forge/jobs/training-files.js";
import { resolveDataPath, resolveRequestFile } from "./server-paths.js";

let directory: string;
let data: string;
before(async () => {
  directory = await realpath(await mkdtemp(join(tmpdir(), "grove-server-paths-")));
  data = join(directory, "data");
  await mkdir(join(data, "sub"), { recursive: true });
  await writeFile(join(data, "sub", "a.jsonl"), '{"text":"a"}\n');
  await writeFile(join(directory, "secret.jsonl"), "secret\n");
  await symlink(join(directory, "secret.jsonl"), join(data, "out.jsonl"));
  await symlink(join(data, "sub", "a.jsonl"), join(data, "in.jsonl"));
});
after(() => rm(directory, { recursive: true, force: true }));

describe("resolveDataPath", () => {
  it("resolves relative and absolute paths inside the data directory, links that stay inside too", async () => {
    assert.equal(await resolveDataPath(data, "sub/a.jsonl", "data"), join(data, "sub", "a.jsonl"));
    assert.equal(await resolveDataPath(data, join(data, "sub", "a.jsonl"), "data"), join(data, "sub", "a.jsonl"));
    assert.equal(await resolveDataPath(data, "in.jsonl", "data"), join(data, "sub", "a.jsonl"));
  });

  it("refuses every path when no data directory is configured", async () => {
    await assert.rejects(resolveDataPath(undefined, "sub/a.jsonl", "data"), PathNotAllowedError);
    await assert.rejects(resolveDataPath("", "/etc/passwd", "data"), PathNotAllowedError);
  });

  it("refuses paths that lead outside, by their words or through a link", async () => {
    for (const path of ["../secret.jsonl", "/etc/shadow", join(directory, "secret.jsonl"), "sub/../../secret.jsonl", "out.jsonl", ".", ""]) {
      await assert.rejects(resolveDataPath(data, path, "data"), (error: unknown) => error instanceof PathNotAllowedError && error.param === "data" && !/secret\n/.test(error.message), path);
    }
  });

  it("says a missing file is missing, and refuses NUL bytes", async () => {
    await assert.rejects(resolveDataPath(data, "missing.jsonl", "data"), (error: unknown) => error instanceof InvalidRequestError && /does not exist/.test(error.message));
    await assert.rejects(resolveDataPath(data, "a\0b", "data"), InvalidRequestError);
  });
});

describe("resolveRequestFile", () => {
  it("takes an upload of the right purpose by id, refuses another purpose and unknown ids", async () => {
    const files = new TrainingFiles(join(directory, "home"));
    const upload = await files.add("train.jsonl", "fine-tune", Buffer.from('{"text":"hello"}\n'));
    assert.deepEqual(await resolveRequestFile({ files }, upload.id, "data", "fine-tune"), { path: files.pathOf(upload.id), name: "train" });
    await assert.rejects(resolveRequestFile({ files }, upload.id, "tasks", "evals"), /purpose 'fine-tune', not 'evals'/);
    await assert.rejects(resolveRequestFile({ files }, "file-000000000000000000000000", "data", "fine-tune"), NotFoundError);
    assert.deepEqual(await resolveRequestFile({ files, dataDirectory: data }, "sub/a.jsonl", "data", "fine-tune"), { path: join(data, "sub", "a.jsonl"), name: "a" });
  });
});
