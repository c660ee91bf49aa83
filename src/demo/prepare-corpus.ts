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
  const heldOutText = `${heldOut.map(synsetText).join("\n")}\n`;
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
      "synset, `word: definition.` and its example sentences, one per line. A synset is held out",
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
