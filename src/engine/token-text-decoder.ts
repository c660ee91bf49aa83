/** The detokenizer the decoder needs: tokens plus a few preceding tokens for context. */
export type Detokenize = (tokens: readonly number[], lastTokens: readonly number[]) => string;

const REPLACEMENT = "\uFFFD";
/** A UTF-8 character spans at most 4 bytes, so at most 4 byte-tokens. */
const MAX_HELD_TOKENS = 4;
const CONTEXT_TOKENS = 4;

/**
 * Turns generated tokens into text one token at a time. Byte-level vocabularies split
 * multi-byte characters across tokens; such tokens are held until the character completes,
 * so clients never receive a replacement character that the full text would not contain.
 * Preceding tokens are passed to the detokenizer so SentencePiece leading spaces survive.
 */
export class TokenTextDecoder {
  private readonly emitted: number[] = [];
  private held: number[] = [];

  constructor(private readonly detokenize: Detokenize) {}

  /** Adds a token; returns the text it completes (often "", while a character is partial). */
  push(token: number): { text: string; tokens: number[] } {
    this.held.push(token);
    const text = this.detokenize(this.held, this.emitted.slice(-CONTEXT_TOKENS));
    if (text.endsWith(REPLACEMENT) && this.held.length < MAX_HELD_TOKENS) return { text: "", tokens: [] };
    const tokens = this.held;
    this.emitted.push(...tokens);
    this.held = [];
    return { text, tokens };
  }

  /** Releases held tokens at the end of a generation, replacement characters and all. */
  flush(): { text: string; tokens: number[] } {
    if (this.held.length === 0) return { text: "", tokens: [] };
    const tokens = this.held;
    const text = this.detokenize(tokens, this.emitted.slice(-CONTEXT_TOKENS));
    this.emitted.push(...tokens);
    this.held = [];
    return { text, tokens };
  }
}
