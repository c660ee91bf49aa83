import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidRequestError } from "../core/errors.js";
import { readBoundedFile } from "./bounded-file.js";

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-bounded-"));
});
after(() => rm(directory, { recursive: true, force: true }));

describe("readBoundedFile", () => {
  const options = { limit: 16, what: "the data", param: "data" };

  it("reads a regular file within the limit, through a link too", async () => {
    await writeFile(join(directory, "ok.txt"), "0123456789abcdef");
    await symlink(join(directory, "ok.txt"), join(directory, "link.txt"));
    assert.equal((await readBoundedFile(join(directory, "ok.txt"), options)).toString(), "0123456789abcdef");
    assert.equal((await readBoundedFile(join(directory, "link.txt"), options)).length, 16);
  });

  it("refuses what would read forever or block: /dev/zero, a FIFO, a directory", async () => {
    execFileSync("mkfifo", [join(directory, "fifo")]);
    for (const path of ["/dev/zero", "/dev/urandom", join(directory, "fifo"), directory]) {
      await assert.rejects(readBoundedFile(path, options), (error: unknown) => error instanceof InvalidRequestError && /not a regular file/.test(error.message) && error.param === "data", path);
    }
  });

  it("refuses a file over the limit before reading it, naming sizes but never contents", async () => {
    await writeFile(join(directory, "big.txt"), "root:*:20200:0:99999:7:::");
    const error = await readBoundedFile(join(directory, "big.txt"), options).catch((caught: unknown) => caught);
    assert.ok(error instanceof InvalidRequestError);
    assert.match(error.message, /25 bytes; at most 16/);
    assert.doesNotMatch(error.message, /root/);
  });

  it("names a missing file's error code", async () => {
    await assert.rejects(readBoundedFile(join(directory, "missing"), options), /Cannot read the data .*ENOENT/);
  });
});
