import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { PathNotAllowedError } from "../../../core/errors.js";
import { SHIPPED_FAMILY_DIR } from "../../../demo/embedded.js";
import { ResultStore } from "../../../results/result-store.js";
import { ModelStore } from "../../../store/model-store.js";
import { localBackend } from "../backends.js";
import { evaluateModel } from "../evaluate.js";
import { scoreTask, type EvalBackend, type TaskDoc } from "../tasks.js";
import { PythonRandom } from "./python-random.js";
import { readLmEvalTask } from "./read-lm-eval-task.js";

const PARQUET = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "src", "bench", "quality", "lm-eval", "testdata", "arith-test.parquet");

const jsonl = (rows: object[]): string => rows.map((row) => JSON.stringify(row)).join("\n") + "\n";

test("PythonRandom draws what CPython's random.Random draws (values printed by python3)", () => {
  // python3 -c "import random; r=random.Random(1234); print(r.sample(range(10),3), r.sample(range(100),7), r.getrandbits(32))"
  const random = new PythonRandom(1234);
  const range = (n: number): number[] => Array.from({ length: n }, (_, index) => index);
  assert.deepEqual(random.sample(range(10), 3), [7, 1, 0]);
  assert.deepEqual(random.sample(range(100), 7), [11, 74, 4, 85, 88, 10, 12], "a population above setsize takes the set method");
  assert.equal(random.getrandbits(32), 3292010550);
  assert.deepEqual(new PythonRandom(0).sample(range(30), 5), [27, 12, 24, 28, 13]);
  assert.deepEqual(new PythonRandom(2 ** 40 + 5).sample(range(8), 8), [4, 5, 0, 7, 6, 3, 2, 1], "a seed wider than 32 bits is two key words");
});

describe("lm-evaluation-harness task configs", () => {
  let directory: string;
  let store: ModelStore;
  let results: ResultStore;
  const modelPath = join(SHIPPED_FAMILY_DIR, "demo-s-chat-f16.gguf");

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "grove-lm-eval-"));
    store = await ModelStore.open(join(directory, "home"));
    results = await ResultStore.open(store.home);
    await store.importFile(modelPath, { name: "demo:chat" });
    const train = [
      { word: "avow", label: 1 },
      { word: "postdoc", label: 0 },
      { word: "outspoken", label: 2 },
    ];
    const testDocs = [
      { word: "table", label: 0 },
      { word: "swim", label: 1 },
      { word: "happy", label: 2 },
      { word: "river", label: 0 },
    ];
    await writeFile(join(directory, "train.jsonl"), jsonl(train));
    await writeFile(join(directory, "test.jsonl"), jsonl(testDocs));
    await writeFile(
      join(directory, "pos-mc.yaml"),
      [
        "task: pos_mc",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        "    train: train.jsonl",
        "    test: test.jsonl",
        "test_split: test",
        "fewshot_split: train",
        "fewshot_config:",
        "  sampler: first_n",
        "num_fewshot: 2",
        "output_type: multiple_choice",
        'doc_to_text: "Word: {{word}}\\nPart of speech:"',
        "doc_to_target: label",
        "doc_to_choice: ['noun', 'verb', 'adjective']",
        "metric_list:",
        "  - metric: acc",
        "  - metric: acc_norm",
        "",
      ].join("\n"),
    );
    await writeFile(
      join(directory, "pos-gen.yaml"),
      [
        "task: pos_gen",
        "dataset_path: .",
        "test_split: test",
        "fewshot_split: train",
        "output_type: generate_until",
        'doc_to_text: "What part of speech is {{word}}?"',
        "doc_to_target: \"{{ ['noun', 'verb', 'adjective'][label] }}\"",
        "generation_kwargs:",
        "  until: ['<|im_end|>', '\\n']",
        "  max_gen_toks: 8",
        "  do_sample: false",
        "filter_list:",
        "  - name: strict",
        "    filter:",
        "      - function: take_first",
        "  - name: extract",
        "    filter:",
        "      - function: regex",
        "        regex_pattern: '(noun|verb|adjective|adverb)'",
        "        group_select: 0",
        "      - function: take_first",
        "metric_list:",
        "  - metric: exact_match",
        "    ignore_case: true",
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await results.close();
    await store.close();
    await rm(directory, { recursive: true, force: true });
  });

  test("multiple_choice: the contexts lm-eval builds (first_n few-shot, delimiters), and acc / acc_norm computed by hand from Grove's log-likelihoods", async () => {
    const task = await readLmEvalTask(join(directory, "pos-mc.yaml"));
    const docs = task.docs as Extract<TaskDoc, { type: "multiple_choice" }>[];
    // fewshot_context: each example is doc_to_text + target_delimiter " " + the gold choice +
    // fewshot_delimiter "\n\n"; then the document's doc_to_text with nothing after it. first_n
    // takes the first 2 training documents in order (the fewshot split is not the test split).
    assert.equal(docs[0]!.context, "Word: avow\nPart of speech: verb\n\nWord: postdoc\nPart of speech: noun\n\nWord: table\nPart of speech:");
    assert.deepEqual(docs[0]!.choices, ["noun", "verb", "adjective"]);
    assert.equal(docs[0]!.delimiter, " ", "each continuation is ' ' + choice");
    assert.deepEqual(docs.map((doc) => doc.answer), [0, 1, 2, 0]);

    const outcome = await evaluateModel(store, results, "demo:chat", { task: join(directory, "pos-mc.yaml"), contextSize: 256, threads: 1 });
    // Grove's own per-choice log-likelihoods for the same requests ...
    const backend = localBackend({ model: modelPath, contextSize: 256, threads: 1 });
    const lls = await backend.loglikelihood(docs.flatMap((doc) => doc.choices.map((choice) => ({ context: doc.context, continuation: ` ${choice}` }))));
    // ... and the harness's definitions by hand: acc counts documents whose highest ll is the
    // gold choice; acc_norm divides each ll by len(choice) — 4 for "noun" and "verb", 9 for
    // "adjective" (characters of the choice, without the delimiter) — before the argmax.
    const lengths = [4, 4, 9];
    let acc = 0;
    let accNorm = 0;
    docs.forEach((doc, index) => {
      const row = lls.slice(3 * index, 3 * index + 3).map((answer) => answer.logLikelihood);
      const best = row.indexOf(Math.max(...row));
      const normalized = row.map((ll, choice) => ll / lengths[choice]!);
      const bestNorm = normalized.indexOf(Math.max(...normalized));
      if (best === doc.answer) acc += 1;
      if (bestNorm === doc.answer) accNorm += 1;
    });
    assert.equal(outcome.result.metrics.acc, acc / 4);
    assert.equal(outcome.result.metrics.accNorm, accNorm / 4);
    // The shipped demo-s-chat-f16 (pinned by its digest) gives per document about
    // (noun, verb, adjective) = (−9.2, −10.3, −12.9): "noun" always wins by acc → 2 of 4 (table,
    // river); per character (−2.3, −2.6, −1.4) "adjective" always wins → 1 of 4 (happy).
    assert.deepEqual([acc, accNorm], [2, 1], "the two definitions disagree here, so the test tells them apart");
    assert.equal(outcome.result.task, "pos_mc");
    assert.deepEqual(outcome.result.settings, { ctx: 256, applyChatTemplate: false, fewshotAsMultiturn: false });
  });

  test("generate_until with --apply-chat-template: chat turns as lm-eval builds them, and exact_match after the regex filter by hand", async () => {
    const chat = { render: (messages: { role: string; content: string }[]) => messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("") + "<|im_start|>assistant\n", multiturn: true };
    const multi = await readLmEvalTask(join(directory, "pos-gen.yaml"), { numFewshot: 1, chat });
    const single = await readLmEvalTask(join(directory, "pos-gen.yaml"), { numFewshot: 1, chat: { ...chat, multiturn: false } });
    // The default sampler, seeded 1234, draws 1 of the 3 training documents per test document,
    // one generator for the whole task: python3 -c "import random; r=random.Random(1234);
    // print(r.sample([0,1,2],1), r.sample([0,1,2],1))" prints [1] [0] — postdoc, then avow.
    const contexts = multi.docs.map((doc) => (doc as Extract<TaskDoc, { type: "generate_until" }>).context);
    assert.equal(contexts[0], "<|im_start|>user\nWhat part of speech is postdoc?<|im_end|>\n<|im_start|>assistant\nnoun<|im_end|>\n<|im_start|>user\nWhat part of speech is table?<|im_end|>\n<|im_start|>assistant\n");
    assert.ok(contexts[1]!.startsWith("<|im_start|>user\nWhat part of speech is avow?<|im_end|>\n<|im_start|>assistant\nverb<|im_end|>\n"), contexts[1]);
    // Without multi-turn, everything is one user turn joined by the plain-text delimiters
    // (question, target_delimiter " ", answer, fewshot_delimiter "\n\n", question).
    assert.equal((single.docs[0] as Extract<TaskDoc, { type: "generate_until" }>).context, "<|im_start|>user\nWhat part of speech is postdoc? noun\n\nWhat part of speech is table?<|im_end|>\n<|im_start|>assistant\n");

    const outcome = await evaluateModel(store, results, "demo:chat", { task: join(directory, "pos-gen.yaml"), applyChatTemplate: true, numFewshot: 0, contextSize: 256, threads: 1 });
    const task = await readLmEvalTask(join(directory, "pos-gen.yaml"), { numFewshot: 0, chat });
    const docs = task.docs as Extract<TaskDoc, { type: "generate_until" }>[];
    assert.equal(docs[0]!.context, "<|im_start|>user\nWhat part of speech is table?<|im_end|>\n<|im_start|>assistant\n", "the model's own template (ChatML) renders the same text");
    const texts = await localBackend({ model: modelPath, contextSize: 256, threads: 1 }).generate(docs.map((doc) => ({ context: doc.context, until: doc.until!, maxTokens: 8 })));
    // By hand: "strict" compares the whole generation (ignore_case) with the target; "extract"
    // first keeps the first match of (noun|verb|adjective|adverb), or "[invalid]".
    const golds = ["noun", "verb", "adjective", "noun"];
    const strict = texts.filter((text, index) => text.toLowerCase() === golds[index]).length / 4;
    const extracted = texts.map((text) => /(noun|verb|adjective|adverb)/.exec(text)?.[1] ?? "[invalid]");
    const extract = extracted.filter((text, index) => text.toLowerCase() === golds[index]).length / 4;
    assert.equal(outcome.result.metrics.exactMatch, strict, `generations ${JSON.stringify(texts)}`);
    assert.equal(outcome.result.metrics["exactMatch,extract"], extract);
    assert.equal(outcome.result.settings.applyChatTemplate, true);
    // The shipped model answers "verb." / "verb." / "noun." / "verb.": strict matches none
    // ("verb." ≠ "verb"), the regex extracts verb, verb, noun, verb → only "swim" → 1/4.
    assert.deepEqual([strict, extract], [0, 0.25], `generations ${JSON.stringify(texts)}`);
  });

  test("loglikelihood_rolling: word and byte perplexity and bits per byte by hand from Grove's log-likelihoods (each text after the BOS id)", async () => {
    const texts = ["The cat sat on the mat.", "A river runs  through it"];
    await writeFile(join(directory, "texts.jsonl"), jsonl(texts.map((text) => ({ text }))));
    const yaml = join(directory, "rolling.yaml");
    await writeFile(yaml, "task: rolling\ndataset_path: texts.jsonl\ntest_split: train\noutput_type: loglikelihood_rolling\ndoc_to_target: text\n");
    const outcome = await evaluateModel(store, results, "demo:chat", { task: yaml, contextSize: 256, threads: 1 });
    const lls = await localBackend({ model: modelPath, contextSize: 256, threads: 1 }).loglikelihood(texts.map((text) => ({ context: "", continuation: text })));
    const total = lls[0]!.logLikelihood + lls[1]!.logLikelihood;
    // Words: len(re.split(r"\s+", text)) = 6 and 5 (the double space is one separator) = 11.
    // Bytes: 23 + 24 = 47 (ASCII). word_perplexity = exp(−Σll / 11), byte_perplexity =
    // exp(−Σll / 47), bits_per_byte = −Σll / 47 / ln 2.
    assert.equal(outcome.result.metrics.wordPerplexity, Math.exp(-total / 11));
    assert.equal(outcome.result.metrics.bytePerplexity, Math.exp(-total / 47));
    assert.equal(outcome.result.metrics.bitsPerByte, -total / 47 / Math.LN2);
    assert.ok(lls[0]!.tokens >= 6, "every token of the text is scored, the first one included");
  });

  test("the scoring definitions on fixed answers: acc_norm by characters, exact_match's options, the regex filter's fallback and group_select", async () => {
    const yaml = join(directory, "worked.yaml");
    await writeFile(join(directory, "worked.jsonl"), jsonl([{ q: "2+2", a: "4" }, { q: "3+4", a: "7" }, { q: "1+1", a: "2" }]));
    await writeFile(
      yaml,
      "task: worked\ndataset_path: worked.jsonl\ntest_split: train\noutput_type: generate_until\ndoc_to_text: 'Q: {{q}}\\nA:'\ndoc_to_target: a\nfilter_list:\n  - name: last-number\n    filter:\n      - function: regex\n        regex_pattern: '(\\d+)'\n        group_select: -1\n      - function: take_first\n",
    );
    const task = await readLmEvalTask(yaml);
    const answers = ["3 or 4", "The sum is seven.", "2"];
    const backend: EvalBackend = { loglikelihood: () => Promise.reject(new Error("not used")), generate: () => Promise.resolve(answers) };
    // group_select -1 takes the last match: "4" (= "4" ✓), none → fallback "[invalid]" (≠ "7"),
    // "2" (= "2" ✓): exact_match = 2/3.
    const score = await scoreTask(task, backend);
    assert.equal(score.metrics.exactMatch, 2 / 3);
    assert.equal((task.docs[0] as Extract<TaskDoc, { type: "generate_until" }>).until?.[0], "\n\n", "until defaults to the fewshot_delimiter");

    // acc_norm divides by characters: ll −6 over "ab" (2) is −3 per character and beats −8 over
    // "éèêë" (4 characters, 8 bytes: −2 per character but −1 per byte) only by bytes.
    const mcYaml = join(directory, "mc.yaml");
    await writeFile(join(directory, "mc.jsonl"), jsonl([{ q: "x", choices: ["ab", "éèêë"], gold: 1 }]));
    await writeFile(mcYaml, "task: mc\ndataset_path: mc.jsonl\ntest_split: train\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_choice: choices\ndoc_to_target: gold\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n  - metric: acc_bytes\n");
    const mc = await readLmEvalTask(mcYaml);
    const lls = [-6, -8];
    const fixed: EvalBackend = { loglikelihood: (requests) => Promise.resolve(requests.map((_, index) => ({ logLikelihood: lls[index]!, isGreedy: false, tokens: 1 }))), generate: () => Promise.reject(new Error("not used")) };
    const mcScore = await scoreTask(mc, fixed);
    // acc: argmax(−6, −8) = 0 ≠ 1 → 0; acc_norm: argmax(−3, −2) = 1 → 1; acc_bytes: argmax(−3, −1) = 1 → 1.
    assert.deepEqual({ acc: mcScore.metrics.acc, accNorm: mcScore.metrics.accNorm, accBytes: mcScore.metrics.accBytes }, { acc: 0, accNorm: 1, accBytes: 1 });
  });

  test("Parquet data, found in a directory laid out as on the hub (data/<split>-*.parquet) or named by data_files", async () => {
    const hub = join(directory, "hub");
    await mkdir(join(hub, "data"), { recursive: true });
    await copyFile(PARQUET, join(hub, "data", "test-00000-of-00001.parquet"));
    const config = "output_type: generate_until\ndoc_to_text: \"Q: {{question}}\\nA:\"\ndoc_to_target: answer\nmetric_list:\n  - metric: exact_match\n    regexes_to_ignore: ['\\.$']\n";
    await writeFile(join(directory, "pq-dir.yaml"), `task: pq\ndataset_path: hub\ntest_split: test\n${config}`);
    await writeFile(join(directory, "pq-files.yaml"), `task: pq\ndataset_path: parquet\ndataset_kwargs:\n  data_files:\n    test: hub/data/test-00000-of-00001.parquet\ntest_split: test\n${config}`);
    for (const name of ["pq-dir.yaml", "pq-files.yaml"]) {
      const task = await readLmEvalTask(join(directory, name));
      const docs = task.docs as Extract<TaskDoc, { type: "generate_until" }>[];
      assert.deepEqual(docs.map((doc) => [doc.context, doc.answer]), [["Q: 2+2\nA:", "4"], ["Q: 3+4\nA:", "7"], ["Q: 1+1\nA:", "2"]], name);
      // regexes_to_ignore removes a final period from both sides: "4." = "4" ✓, " 7" ≠ "7" (no
      // trimming), "2" = "2" ✓ → exact_match 2/3.
      const score = await scoreTask(task, { loglikelihood: () => Promise.reject(new Error("not used")), generate: () => Promise.resolve(["4.", " 7", "2"]) });
      assert.equal(score.metrics.exactMatch, 2 / 3, name);
    }
  });

  test("bad configs are refused with the file and the key", async () => {
    const cases: [string, RegExp][] = [
      ["task: [unclosed\n", /is not valid YAML/],
      ["- a list\n", /not a YAML mapping/],
      ["dataset_path: worked.jsonl\ntest_split: train\n", /task/],
      ["task: t\ntest_split: train\n", /dataset_path/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: train\noutput_type: ranking\ndoc_to_text: q\ndoc_to_target: a\n", /output_type must be one of/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: train\ndoc_to_text: !function utils.doc_to_text\ndoc_to_target: a\n", /Python function/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: train\ndoc_to_text: q\ndoc_to_target: a\nprocess_docs: x\n", /'process_docs' is not supported/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: train\ndoc_to_text: q\ndoc_to_target: a\nmetric_list:\n  - metric: bleu\n", /metric 'bleu' is not one Grove computes/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: train\ndoc_to_text: q\ndoc_to_target: a\nfilter_list:\n  - name: v\n    filter:\n      - function: majority_vote\n", /filter 'majority_vote' is not supported/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: validation\ndoc_to_text: q\ndoc_to_target: a\n", /no data for split 'validation'/],
      ["task: t\ndataset_path: cais/mmlu\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n", /not a local file or directory/],
      ["task: t\ndataset_path: worked.jsonl\ntest_split: train\ndoc_to_text: q\ndoc_to_target: a\ngeneration_kwargs:\n  do_sample: true\n", /decodes greedily/],
      ["task: t\ndataset_path: broken.jsonl\ntest_split: train\ndoc_to_text: q\ndoc_to_target: a\n", /line 2 is not valid JSON/],
      ["task: t\ndataset_path: broken.parquet\ntest_split: train\ndoc_to_text: q\ndoc_to_target: a\n", /not a readable Parquet file/],
    ];
    await writeFile(join(directory, "broken.jsonl"), '{"q":"1","a":"1"}\n{"q": \n');
    await writeFile(join(directory, "broken.parquet"), "PAR1 not really");
    for (const [index, [text, pattern]] of cases.entries()) {
      const path = join(directory, `bad-${index}.yaml`);
      await writeFile(path, text);
      await assert.rejects(readLmEvalTask(path), pattern, text);
    }
    await assert.rejects(evaluateModel(store, results, "demo:chat", { task: join(directory, "worked.yaml"), fewshotAsMultiturn: true }), /--fewshot-as-multiturn needs --apply-chat-template/);
  });
});

describe("lm-eval configs a request names stay inside the data directory", () => {
  let root: string;
  let outside: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "grove-lmeval-root-"));
    outside = await mkdtemp(join(tmpdir(), "grove-lmeval-outside-"));
    const rows = `${JSON.stringify({ q: "1+1", a: "2" })}\n${JSON.stringify({ q: "2+2", a: "4" })}\n`;
    await writeFile(join(root, "inside.jsonl"), rows);
    await writeFile(join(outside, "secret.jsonl"), rows);
    await writeFile(join(outside, "base.yaml"), "output_type: generate_until\n");
    const config = (dataset: string, extra = ""): string =>
      `task: t\ndataset_path: ${dataset}\ntest_split: train\noutput_type: generate_until\ndoc_to_text: "{{q}}"\ndoc_to_target: "{{a}}"\n${extra}`;
    await writeFile(join(root, "good.yaml"), config("inside.jsonl"));
    await writeFile(join(root, "absolute.yaml"), config(join(outside, "secret.jsonl")));
    await writeFile(join(root, "dotdot.yaml"), config(`../${outside.split("/").pop()}/secret.jsonl`));
    await writeFile(join(root, "files.yaml"), config("json", `dataset_kwargs:\n  data_files:\n    train: ${join(outside, "secret.jsonl")}\n`));
    await writeFile(join(root, "include.yaml"), `include: ${join(outside, "base.yaml")}\n${config("inside.jsonl")}`);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  test("a config inside the root reads its data; one naming a file outside (absolute, .., data_files, include) is refused (PathNotAllowedError: a 403), naming no path", async () => {
    const task = await readLmEvalTask(join(root, "good.yaml"), { root });
    assert.equal(task.docs.length, 2);
    for (const name of ["absolute.yaml", "dotdot.yaml", "files.yaml", "include.yaml"]) {
      await assert.rejects(readLmEvalTask(join(root, name), { root }), (error: unknown) => {
        return error instanceof PathNotAllowedError && /outside the data directory/.test(error.message) && !error.message.includes(outside);
      }, name);
    }
    // Without a root (the CLI), a local user's config may name any file.
    assert.equal((await readLmEvalTask(join(root, "absolute.yaml"))).docs.length, 2);
  });
});
