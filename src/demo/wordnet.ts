import { createHash } from "node:crypto";

/** A WordNet part of speech, as its data file names it. */
export type WordnetPos = "noun" | "verb" | "adj" | "adv";

/** One synset of WordNet 3.0: its words, definition and example sentences. */
export interface Synset {
  /** `noun:00001740`: part of speech and byte offset, unique. */
  id: string;
  pos: WordnetPos;
  /** Lemmas, underscores as spaces, adjective markers like `(a)` removed. */
  words: string[];
  definition: string;
  /** The gloss's quoted example sentences. */
  examples: string[];
}

/**
 * Parses a WordNet 3.0 `data.<pos>` file (wndb(5WN)): license lines start with two spaces;
 * every other line is `offset lex_filenum ss_type w_cnt word lex_id … p_cnt pointers… | gloss`,
 * the gloss a definition followed by `; "example"` sentences.
 *
 * @throws Error naming the line when a record is malformed
 */
export function parseWordnetData(text: string, pos: WordnetPos): Synset[] {
  const synsets: Synset[] = [];
  for (const [index, line] of text.split("\n").entries()) {
    if (line === "" || line.startsWith("  ")) continue;
    const bar = line.indexOf(" | ");
    if (bar < 0) throw new Error(`data.${pos} line ${index + 1}: no gloss`);
    const fields = line.slice(0, bar).split(" ");
    const count = Number.parseInt(fields[3] ?? "", 16);
    if (!Number.isInteger(count) || count < 1) throw new Error(`data.${pos} line ${index + 1}: bad word count`);
    const words = Array.from({ length: count }, (_, word) => fields[4 + word * 2]!.replace(/\(.*\)$/, "").replace(/_/g, " "));
    const gloss = line.slice(bar + 3).trim();
    const examples = [...gloss.matchAll(/"([^"]+)"/g)].map((match) => match[1]!.trim());
    const definition = gloss.split(/;\s*"/)[0]!.replace(/;\s*$/, "").trim();
    synsets.push({ id: `${pos}:${fields[0]}`, pos, words, definition, examples });
  }
  return synsets;
}

/** True for about `share` of the synsets, decided by a hash of the id: the held-out split, stable across runs and machines. */
export function isHeldOut(synset: Synset, share: number): boolean {
  const hash = createHash("sha256").update(synset.id).digest();
  return hash.readUInt32BE(0) / 0x1_0000_0000 < share;
}

/** The corpus text of one synset: `word: definition.` and each example sentence, one per line. */
export function synsetText(synset: Synset): string {
  const head = `${synset.words[0]}: ${synset.definition.replace(/[.;:]?$/, ".")}`;
  return [head, ...synset.examples.map((example) => example.replace(/([^.!?])$/, "$1."))].join("\n");
}
