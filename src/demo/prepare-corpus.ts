// `npm run demo:corpus [-- --out data/demo/corpus]`: the demo family's corpus from WordNet 3.0
// (Debian's `wordnet-base`: `apt-get install wordnet-base`), split into train and held-out text
// by a stable hash of each synset's id. Writes train.txt (not committed: ~10 MB, rebuilt by this
// script), heldout.txt and SOURCE.md (source, licence, digests of both files).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isHeldOut, parseWordnetData, synsetText, type Synset, type WordnetPos } from "./wordnet.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WORDNET = "/usr/share/wordnet";
const COPYRIGHT = "/usr/share/doc/wordnet-base/copyright";
/** Share of synsets held out for evaluation. */
export const HELD_OUT_SHARE = 0.05;
/**
 * How held-out synsets are separated in heldout.txt: by the demo tokenizer's end-of-turn token,
 * as in the training stream (`grove finetune` ends every record with the model's EOS,
 * `<|im_end|>`, and adds no BOS). Joined by newlines instead, every synset boundary is text the
 * models never saw there, and the held-out perplexity measures that rather than the language
 * (demo-m scored 388.8 that way against demo-s's 352.0, and 289.3 against 309.6 this way).
 */
export const RECORD_END = "<|im_end|>";

/** Reads every synset of the four WordNet data files, in file order. */
export async function readWordnet(directory = WORDNET): Promise<Synset[]> {
  if (!existsSync(join(directory, "data.noun"))) {
    throw new Error(`WordNet 3.0 is not at ${directory}: install Debian's wordnet-base (apt-get install wordnet-base)`);
  }
  const synsets: Synset[] = [];
  for (const pos of ["noun", "verb", "adj", "adv"] as WordnetPos[]) synsets.push(...parseWordnetData(await readFile(join(directory, `data.${pos}`), "utf8"), pos));
  return synsets;
}

async function main(): Promise<void> {
  const outIndex = process.argv.indexOf("--out");
  const out = resolve(ROOT, outIndex >= 0 ? process.argv[outIndex + 1]! : "data/demo/corpus");
  const synsets = await readWordnet();
  const train = synsets.filter((synset) => !isHeldOut(synset, HELD_OUT_SHARE));
  const heldOut = synsets.filter((synset) => isHeldOut(synset, HELD_OUT_SHARE));
  const trainText = `${train.map(synsetText).join("\n")}\n`;
  const heldOutText = heldOut.map((synset) => `${synsetText(synset)}${RECORD_END}`).join("");
  const digest = (text: string): string => `sha256:${createHash("sha256").update(text).digest("hex")}`;
  await mkdir(out, { recursive: true });
  await writeFile(join(out, "train.txt"), trainText);
  await writeFile(join(out, "heldout.txt"), heldOutText);
  const licence = existsSync(COPYRIGHT) ? await readFile(COPYRIGHT, "utf8") : "see https://wordnet.princeton.edu/license-and-commercial-use";
  await writeFile(
    join(out, "SOURCE.md"),
    [
      "# The demo family's corpus",
      "",
      "Made by `npm run demo:corpus` (src/demo/prepare-corpus.ts) from WordNet 3.0 as Debian's",
      "`wordnet-base` package installs it (`/usr/share/wordnet/data.{noun,verb,adj,adv}`): for each",
      "synset, `word: definition.` and its example sentences, one per line. In heldout.txt each",
      "synset ends with `<|im_end|>`, the demo tokenizer's end-of-record token, as in the training",
      "stream `grove finetune` makes of the records (train.txt, which only seeds the tokenizer, has",
      "newlines between synsets). A synset is held out",
      `when the first four bytes of sha256(its id) fall in the lowest ${HELD_OUT_SHARE * 100}% (stable across runs).`,
      "",
      "| file | synsets | bytes | digest |",
      "| --- | ---: | ---: | --- |",
      `| train.txt (not committed; rebuilt by the script) | ${train.length} | ${Buffer.byteLength(trainText)} | \`${digest(trainText)}\` |`,
      `| heldout.txt | ${heldOut.length} | ${Buffer.byteLength(heldOutText)} | \`${digest(heldOutText)}\` |`,
      "",
      "## Licence",
      "",
      "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. Used under the",
      "WordNet 3.0 licence, reproduced here from the Debian package as it requires:",
      "",
      "```",
      licence.trim(),
      "```",
      "",
    ].join("\n"),
  );
  process.stdout.write(`train ${train.length} synsets (${trainText.length} chars), held out ${heldOut.length} (${heldOutText.length} chars) → ${out}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
