// The demo chat fine-tune's task, made from WordNet: "What does X mean?" answered with X's
// definition. One function builds the fine-tune's chat records and the task files that measure
// it, so the questions the model is trained on and scored on are worded identically.
import { SeededRandom } from "../forge/generate/seeded-random.js";
import type { Synset } from "./wordnet.js";

/** The user turn for a word. */
export function question(word: string): string {
  return `What does ${word} mean?`;
}

/** The assistant turn: the definition as a sentence. */
export function answer(synset: Synset): string {
  const text = synset.definition.replace(/[.;:]?$/, ".");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The chat prompt of one question as the demo models' ChatML template renders it (the same bytes
 * node-llama-cpp's wrapper produces for the fine-tune's records), ending where the answer starts.
 */
export function chatPrompt(word: string): string {
  return `<|im_start|>user\n${question(word)}<|im_end|>\n<|im_start|>assistant\n`;
}

/**
 * One synset per head word (the first met), words of letters, spaces and hyphens only, and
 * definitions of 3 to 24 words — the synsets the chat fine-tune is taught, in a seeded order.
 */
export function definitionSynsets(synsets: readonly Synset[], seed: number): Synset[] {
  const seen = new Set<string>();
  const chosen: Synset[] = [];
  for (const synset of synsets) {
    const word = synset.words[0]!;
    if (seen.has(word) || !/^[a-z][a-z -]*$/.test(word)) continue;
    const words = synset.definition.split(/\s+/).length;
    if (words < 3 || words > 24) continue;
    seen.add(word);
    chosen.push(synset);
  }
  const random = new SeededRandom(seed, "demo-definitions");
  for (let index = chosen.length - 1; index > 0; index--) {
    const other = Math.floor(random.nextFloat() * (index + 1));
    [chosen[index], chosen[other]] = [chosen[other]!, chosen[index]!];
  }
  return chosen;
}

/** How the part-of-speech question names each part of speech. */
export const POS_NAMES: Record<Synset["pos"], string> = { noun: "noun", verb: "verb", adj: "adjective", adv: "adverb" };

/**
 * The part-of-speech question: an instruction with a one-word answer. Short on purpose: the
 * trainer's loss covers the user's turn too (llama.cpp's has no label mask), and a long question
 * taught on half the records was what a small model learned to say back.
 */
export function posQuestion(word: string): string {
  return `What part of speech is ${word}?`;
}

/**
 * Words with one part of speech in the whole of WordNet (`all`), each with it: from the head
 * words of `synsets`, plain words only, once each, in a seeded order. Words of several parts of
 * speech ("run") are left out so every question has one right answer.
 */
export function posWords(all: readonly Synset[], synsets: readonly Synset[], seed: number): { word: string; pos: Synset["pos"] }[] {
  const kinds = new Map<string, Set<Synset["pos"]>>();
  for (const synset of all) for (const word of synset.words) kinds.set(word, (kinds.get(word) ?? new Set()).add(synset.pos));
  const seen = new Set<string>();
  const words: { word: string; pos: Synset["pos"] }[] = [];
  for (const synset of synsets) {
    const word = synset.words[0]!;
    if (seen.has(word) || !/^[a-z][a-z-]*$/.test(word) || kinds.get(word)?.size !== 1) continue;
    seen.add(word);
    words.push({ word, pos: synset.pos });
  }
  const random = new SeededRandom(seed, "demo-pos");
  for (let index = words.length - 1; index > 0; index--) {
    const other = Math.floor(random.nextFloat() * (index + 1));
    [words[index], words[other]] = [words[other]!, words[index]!];
  }
  return words;
}

/**
 * The same number of words of each part of speech (as many as the rarest has, at most
 * `perPart`), interleaved noun, verb, adjective, adverb: a model that always says "noun" scores
 * 0.25 on a balanced set, so an accuracy above that is knowledge, not the prior.
 */
export function balancedByPos<T extends { pos: Synset["pos"] }>(items: readonly T[], perPart: number): T[] {
  const parts = Object.keys(POS_NAMES) as Synset["pos"][];
  const byPart = new Map(parts.map((part) => [part, items.filter((item) => item.pos === part)]));
  const count = Math.min(perPart, ...parts.map((part) => byPart.get(part)!.length));
  return Array.from({ length: count }, (_, index) => parts.map((part) => byPart.get(part)![index]!)).flat();
}

/** A part-of-speech fine-tune record. */
export function posRecord(item: { word: string; pos: Synset["pos"] }): { messages: { role: "user" | "assistant"; content: string }[] } {
  return { messages: [{ role: "user", content: posQuestion(item.word) }, { role: "assistant", content: `${POS_NAMES[item.pos]}.` }] };
}

/** The part-of-speech task as exact match of the greedy answer (`noun.` and `Noun` both match `noun`, after normalisation). */
export function posExactDocs(items: readonly { word: string; pos: Synset["pos"] }[]) {
  return items.map((item) => ({ type: "generate_until" as const, context: chatPromptFor(posQuestion(item.word)), answer: POS_NAMES[item.pos], until: ["<|im_end|>", "\n"], max_tokens: 8 }));
}

/** The part-of-speech task as multiple choice over the four names. */
export function posChoiceDocs(items: readonly { word: string; pos: Synset["pos"] }[]) {
  const names = Object.values(POS_NAMES);
  return items.map((item) => ({ type: "multiple_choice" as const, context: chatPromptFor(posQuestion(item.word)), choices: names.map((name) => `${name}.`), answer: names.indexOf(POS_NAMES[item.pos]) }));
}

/** The chat prompt of any user turn. */
export function chatPromptFor(content: string): string {
  return `<|im_start|>user\n${content}<|im_end|>\n<|im_start|>assistant\n`;
}

/** A fine-tune record: `{"messages":[user, assistant]}`. */
export function chatRecord(synset: Synset): { messages: { role: "user" | "assistant"; content: string }[] } {
  return {
    messages: [
      { role: "user", content: question(synset.words[0]!) },
      { role: "assistant", content: answer(synset) },
    ],
  };
}

/**
 * Multiple-choice documents: the question's prompt, the right definition and `distractors`
 * definitions of other synsets of the same part of speech drawn from `pool` (so a choice cannot
 * be told apart by its grammar alone), the right one at a seeded position.
 */
export function multipleChoiceDocs(items: readonly Synset[], pool: readonly Synset[], seed: number, distractors = 3) {
  const random = new SeededRandom(seed, "demo-choices");
  const byPos = new Map<string, Synset[]>();
  for (const synset of pool) byPos.set(synset.pos, [...(byPos.get(synset.pos) ?? []), synset]);
  return items.map((item) => {
    const candidates = byPos.get(item.pos)!;
    const wrong = new Set<string>();
    const choices: string[] = [];
    while (choices.length < distractors) {
      const other = candidates[Math.floor(random.nextFloat() * candidates.length)]!;
      const text = answer(other);
      if (other.id === item.id || wrong.has(text) || text === answer(item)) continue;
      wrong.add(text);
      choices.push(text);
    }
    const position = Math.floor(random.nextFloat() * (distractors + 1));
    choices.splice(position, 0, answer(item));
    return { type: "multiple_choice" as const, context: chatPrompt(item.words[0]!), choices, answer: position };
  });
}

/** Exact-match documents: greedy generation until the end of the turn, compared with the definition. */
export function exactMatchDocs(items: readonly Synset[]) {
  return items.map((item) => ({ type: "generate_until" as const, context: chatPrompt(item.words[0]!), answer: answer(item), until: ["<|im_end|>"], max_tokens: 48 }));
}
