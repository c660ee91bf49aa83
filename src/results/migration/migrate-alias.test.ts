import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Digest } from "../../core/digest.js";
import { ConflictError, GroveError, InvalidRequestError, ModelNotFoundError, NotFoundError } from "../../core/errors.js";
import { CORPUS } from "../../forge/generate/corpus.js";
import { generateModel } from "../../forge/generate/generate-model.js";
import { quantizeFork } from "../../forge/quantize/quantize-fork.js";
import { AliasBook } from "../../store/alias-book.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli } from "../../test-support/run-cli.js";
import { taskEvaluator } from "../../bench/quality/evaluate.js";
import { runEvalWorker } from "../../bench/quality/run-eval-worker.js";
import { ResultStore } from "../result-store.js";
import { formatScore, migrateAlias, regressionOf } from "./migrate-alias.js";

// Evaluation-gated migration on real models: a test-tiny base (F16), its Q8_0 (close to it) and
// its Q2_K (far worse), compared on a generation task made of the base's own greedy answers
// (so the base scores 1.0 and each quantization scores what it still reproduces) and perplexity.

let directory: string;
let home: string;
let store: ModelStore;
let results: ResultStore;
let book: AliasBook;
let task: string;
const digests: Record<string, string> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-migrate-"));
  home = join(directory, "home");
  store = await ModelStore.open(home);
  results = await ResultStore.open(store.home);
  book = new AliasBook(store);
  const path = join(directory, "base.gguf");
  await generateModel({ preset: "test-tiny", seed: 7, dtype: "f16", outPath: path });
  digests.base = (await store.importFile(path, { name: "tiny:f16" })).model.digest;
  for (const type of ["Q8_0", "Q2_K"]) await quantizeFork(store, { model: "tiny:f16", type, name: `tiny:${type.toLowerCase()}` });
  digests.q8 = (await store.resolve("tiny:q8_0")).digest;
  digests.q2 = (await store.resolve("tiny:q2_k")).digest;
  const sentences = CORPUS.split(/(?<=[.!?])\s+/).filter((sentence) => sentence.split(" ").length > 6).slice(0, 40);
  const contexts = [...new Set(sentences.map((sentence) => sentence.split(" ").slice(0, 5).join(" ")))];
  const answers = await runEvalWorker<string[]>({ op: "generate", model: store.blobs.pathOf(digests.base as never), contextSize: 256, threads: 1, requests: contexts.map((context) => ({ context, until: ["\n"], maxTokens: 6 })) });
  const docs = contexts.map((context, index) => ({ type: "generate_until", context, answer: answers[index]!, max_tokens: 6 })).filter((doc) => doc.answer.trim() !== "");
  assert.ok(docs.length >= 20, `enough documents (${docs.length})`);
  task = join(directory, "continue.jsonl");
  await writeFile(task, docs.map((doc) => JSON.stringify(doc)).join("\n"));
});

after(async () => {
  results?.close();
  await store?.close();
  await rm(directory, { recursive: true, force: true });
});

const evaluate = (model: string, task: string) => taskEvaluator(store, results, { contextSize: 256, threads: 1 })(model as never, task);
const targetsOf = async (name: string) => (await store.resolver.alias(name))?.targets;

describe("aliases: set, migrate, rollback", () => {
  test("regression is relative to the current score, in the metric's worse direction", () => {
    assert.equal(regressionOf(1, 0.9, true), 0.09999999999999998);
    assert.ok(Math.abs(regressionOf(100, 103, false) - 0.03) < 1e-12);
    assert.ok(regressionOf(100, 97, false) < 0, "a lower perplexity is an improvement");
    assert.equal(regressionOf(0, 0.5, true), -0.5, "from 0 the difference is absolute");
  });

  test("bad input gives clear errors and changes nothing", async () => {
    await book.set("chat", [{ ref: "tiny:f16" }]);
    const before = { aliases: await book.list(), history: (await book.history("chat")).length, results: (await results.list()).length };
    const cases: [() => Promise<unknown>, (error: unknown) => boolean][] = [
      [() => book.set("chat", [{ ref: "tiny:nope" }]), (error) => error instanceof ModelNotFoundError && /tiny:nope/.test(error.message)],
      [() => book.set("chat", [{ ref: "tiny:f16", weight: 0 }]), (error) => error instanceof InvalidRequestError && /must be a positive number, got 0/.test(error.message)],
      [() => book.set("chat", [{ ref: "tiny:f16", weight: -3 }]), (error) => error instanceof InvalidRequestError && /positive/.test(error.message)],
      [async () => book.set("chat", [AliasBook.parseTarget("tiny:f16=abc")]), (error) => error instanceof InvalidRequestError && /got 'abc'/.test(error.message)],
      [() => book.set("chat", []), (error) => error instanceof InvalidRequestError && /at least one model/.test(error.message)],
      [() => book.set("chat", [{ ref: "tiny:f16" }, { ref: digests.base! }]), (error) => error instanceof InvalidRequestError && /twice/.test(error.message)],
      [() => book.set("tiny:q8_0", [{ ref: "tiny:f16" }]), (error) => error instanceof ConflictError && /already a model name/.test(error.message)],
      [() => book.set("beefcafe", [{ ref: "tiny:f16" }]), (error) => error instanceof InvalidRequestError && /reads as a digest/.test(error.message)],
      [() => store.tag("tiny:f16", "chat"), (error) => error instanceof ConflictError && /is an alias/.test(error.message)],
      [() => migrateAlias(store, { alias: "chat", to: "tiny:q8_0", tasks: [], evaluate }), (error) => error instanceof InvalidRequestError && /at least one task/.test(error.message)],
      [() => migrateAlias(store, { alias: "nope", to: "tiny:q8_0", tasks: [task], evaluate }), (error) => error instanceof NotFoundError && /No alias 'nope:latest'/.test(error.message)],
      [() => migrateAlias(store, { alias: "chat", to: "tiny:nope", tasks: [task], evaluate }), (error) => error instanceof ModelNotFoundError],
      [() => migrateAlias(store, { alias: "chat", to: "tiny:f16", tasks: [task], evaluate }), (error) => error instanceof InvalidRequestError && /already points at/.test(error.message)],
      [() => migrateAlias(store, { alias: "chat", to: "tiny:q8_0", tasks: [task], maxRegression: -1, evaluate }), (error) => error instanceof InvalidRequestError && /max regression/.test(error.message)],
      [() => migrateAlias(store, { alias: "chat", to: "tiny:q8_0", tasks: ["hellaswag"], evaluate }), (error) => error instanceof InvalidRequestError && /Unknown task/.test(error.message)],
      [() => book.rollback("chat"), (error) => error instanceof ConflictError && /Nothing to roll back/.test(error.message)],
    ];
    for (const [run, check] of cases) await assert.rejects(run(), (error: unknown) => error instanceof GroveError && check(error));
    assert.deepEqual(await book.list(), before.aliases);
    assert.equal((await book.history("chat")).length, before.history);
    assert.equal((await results.list()).length, before.results, "nothing measured for refused input");
  });

  test("a candidate that regresses beyond the threshold is refused and the alias unchanged; one within it switches; rollback restores", async () => {
    await book.set("chat", [{ ref: "tiny:f16" }]);
    const refused = await migrateAlias(store, { alias: "chat", to: "tiny:q2_k", tasks: [task, "perplexity"], maxRegression: 0.15, evaluate });
    assert.equal(refused.switched, false);
    const exact = refused.scores.find((score) => score.metric === "exactMatch")!;
    assert.equal(exact.current, 1);
    assert.ok(exact.regression! > 0.15, `Q2_K regression ${exact.regression}`);
    assert.match(refused.reason, /continue: exactMatch 1\.000 → .* worse \(limit 15\.0 %\)/);
    assert.deepEqual(await targetsOf("chat:latest"), [{ digest: digests.base, weight: 1 }]);

    const switched = await migrateAlias(store, { alias: "chat", to: "tiny:q8_0", tasks: [task, "perplexity"], maxRegression: 0.15, evaluate });
    assert.equal(switched.switched, true, switched.reason);
    assert.deepEqual(switched.scores.map((score) => [score.task, score.metric, score.higherIsBetter]), [["continue", "exactMatch", true], ["perplexity", "perplexity", false]]);
    assert.deepEqual(await targetsOf("chat:latest"), [{ digest: digests.q8, weight: 1 }]);

    const history = await book.history("chat");
    const decisions = history.filter((event) => event.action === "migrate").map((event) => [event.decision, event.to[0]!.digest, event.tasks.length, event.scores.length]);
    assert.deepEqual(decisions, [["refused", digests.q2, 2, 2], ["applied", digests.q8, 2, 2]]);

    const rolledBack = await book.rollback("chat");
    assert.equal(rolledBack.action, "rollback");
    assert.deepEqual(await targetsOf("chat:latest"), [{ digest: digests.base, weight: 1 }]);
    // Stored results were reused: migrating again measures nothing new.
    const before = (await results.list()).length;
    await migrateAlias(store, { alias: "chat", to: "tiny:q8_0", tasks: [task, "perplexity"], maxRegression: 0.15, evaluate });
    assert.equal((await results.list()).length, before);
    await book.rollback("chat");
  });

  test("grove alias and grove migrate on the command line: the comparison table, a non-zero exit when refused, rollback", async () => {
    const set = await runCli("alias", "set", "canary", "tiny:f16=90", "tiny:q8_0=10", "--home", home);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /canary:latest .*tiny:f16.* 90 +90\.0 %\n.*tiny:q8_0.* 10 +10\.0 %/);
    const listed = JSON.parse((await runCli("alias", "ls", "--json", "--home", home)).stdout) as { name: string; targets: { weight: number; share: number }[] }[];
    assert.deepEqual(listed.find((alias) => alias.name === "canary:latest")!.targets.map((target) => target.share).sort(), [0.1, 0.9]);

    const refused = await runCli("migrate", "chat", "--to", "tiny:q2_k", "--task", task, "--max-regression", "0.15", "--ctx", "256", "--threads", "1", "--home", home);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /TASK +METRIC +CURRENT +CANDIDATE +REGRESSION +NOISE \(SE\) +VERDICT\ncontinue +exactMatch \(higher is better\) +1\.000 .* ±\S+ paired +REGRESSED/);
    assert.match(refused.stderr, /migration of chat:latest refused: continue: exactMatch/);
    const noTask = await runCli("migrate", "chat", "--to", "tiny:q8_0", "--home", home);
    assert.equal(noTask.code, 1);
    assert.match(noTask.stderr, /at least one task/);

    const passed = await runCli("migrate", "chat", "--to", "tiny:q8_0", "--task", task, "--max-regression", "0.15", "--ctx", "256", "--threads", "1", "--home", home);
    assert.equal(passed.code, 0, passed.stderr);
    assert.match(passed.stdout, /switched chat:latest/);
    const rollback = await runCli("rollback", "chat", "--home", home);
    assert.equal(rollback.code, 0, rollback.stderr);
    assert.deepEqual(await targetsOf("chat:latest"), [{ digest: digests.base, weight: 1 }]);
    const history = await runCli("alias", "history", "chat", "--home", home);
    assert.match(history.stdout, /migrate +refused/);
    assert.match(history.stdout, /rollback +applied/);

    const removed = await runCli("alias", "rm", "canary", "--home", home);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await targetsOf("canary:latest"), undefined);
    assert.equal((await runCli("rollback", "canary", "--home", home)).code, 0, "a removed alias comes back with rollback");
    assert.equal((await targetsOf("canary:latest"))?.length, 2);
  });

  test("grove alias history prints each decision's scores rounded, not as raw floats (issue 23)", async () => {
    await book.set("rounded", [{ ref: "tiny:f16" }]);
    const scores = [{ task: "perplexity", metric: "perplexity", higherIsBetter: false, current: 1313.9668442649076, candidate: 1320.123456789012, regression: 0.004693 }];
    await book.change("rounded:latest", [{ digest: digests.q8 as Digest, weight: 1 }], { action: "migrate", reason: "no task regressed beyond 2.0 %", tasks: ["perplexity"], scores });
    const history = await runCli("alias", "history", "rounded", "--home", home);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /\bSCORES\n/);
    assert.match(history.stdout, /perplexity perplexity 1313\.97 → 1320\.12\n/);
    assert.doesNotMatch(history.stdout, /1313\.966/);
    assert.equal(formatScore(0.42187499), "0.4219");
    assert.equal(formatScore(null), "-");
  });
});
