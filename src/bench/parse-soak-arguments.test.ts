import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidRequestError } from "../core/errors.js";
import { parseSoakArguments } from "./parse-soak-arguments.js";
import { parseResidentBytes } from "./soak.js";

test("no arguments: issue 23's soak (100,000 requests, 64 clients, 80% abandoned, a report every 10,000)", () => {
  const options = parseSoakArguments([]);
  assert.equal(options.requests, 100_000);
  assert.equal(options.clients, 64);
  assert.equal(options.abortShare, 0.8);
  assert.equal(options.reportEvery, 10_000);
  assert.equal(options.parallel, 4);
  assert.equal(options.model, undefined);
  assert.equal(options.heapSnapshots, undefined);
});

test("options are read; a report interval defaults to no more than the request count", () => {
  const options = parseSoakArguments(["--requests", "500", "--clients", "8", "--abort-share", "0.25", "--max-tokens", "4", "--model", "m.gguf", "--json"]);
  assert.deepEqual([options.requests, options.clients, options.abortShare, options.reportEvery, options.maxTokens, options.model, options.json], [500, 8, 0.25, 500, 4, "m.gguf", true]);
});

test("bad input names its flag", () => {
  const cases: [string[], string][] = [
    [["--requests", "0"], "--requests"],
    [["--requests", "1e5"], "--requests"],
    [["--clients", "-3"], "--clients"],
    [["--abort-share", "1.5"], "--abort-share"],
    [["--abort-share", ""], "--abort-share"],
    [["--abort-share", "half"], "--abort-share"],
    [["--requests", "100", "--report-every", "200"], "--report-every"],
    [["--model", " "], "--model"],
    [["--settle-ms", "soon"], "--settle-ms"],
    [["--heap-snapshots", ""], "--heap-snapshots"],
  ];
  for (const [argv, flag] of cases) {
    assert.throws(() => parseSoakArguments(argv), (error: unknown) => error instanceof InvalidRequestError && error.message.includes(flag), argv.join(" "));
  }
  assert.throws(() => parseSoakArguments(["--bogus"]), InvalidRequestError);
  assert.throws(() => parseSoakArguments(["stray"]), InvalidRequestError);
});

test("parseResidentBytes reads VmRSS in bytes and refuses a status without it", () => {
  assert.equal(parseResidentBytes("Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t  181200 kB\nThreads:\t12\n"), 181200 * 1024);
  assert.throws(() => parseResidentBytes("Name:\tnode\n"), /VmRSS/);
});
