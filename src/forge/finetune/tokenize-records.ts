import type { ChatHistoryItem, Token } from "node-llama-cpp";
import { EngineError, InvalidRequestError } from "../../core/errors.js";
import { chatLossMask, type LossOn } from "./loss-mask.js";
import type { TrainingRecord } from "./training-data.js";

/** The training stream of a data set, and how it was made. */
export interface TokenizedData {
  /**
   * Every record's tokens, joined: BOS (when the model adds one), the record, EOS. With a
   * `windowSize`, each record is padded with EOS to the window, and one more window and token of
   * EOS close the stream (llama.cpp's windowing needs them to take the last record's window).
   */
  tokens: Int32Array;
  /**
   * One byte per token, 1 where the loss counts the token as a label: with `lossOn: "answers"`
   * and chat records, the assistant turns' content and end-of-turn tokens (and every token of a
   * text record); null when every token counts.
   */
  lossMask: Uint8Array | null;
  /** The chat wrapper used for chat records, e.g. `ChatML`; null when there were none. */
  chatFormat: string | null;
}

/**
 * Tokenizes training records with the model's own vocabulary (node-llama-cpp, vocabulary only —
 * no weights are loaded): text records as they are, chat records rendered with the model's
 * chat template (node-llama-cpp's wrapper for it, Jinja included). Each record ends with EOS so
 * the model learns where answers stop.
 *
 * With `lossOn: "answers"`, a loss mask marks the tokens of the assistant turns (see
 * {@link chatLossMask}), so a chat record does not teach the model to write the user's questions.
 *
 * @throws InvalidRequestError when the data has chat records and the model has no chat template
 */
export async function tokenizeRecords(
  modelPath: string,
  records: readonly TrainingRecord[],
  /** `recordNumbers`: each record's 1-based place in the data file, for errors (default: its place here). */
  options: { windowSize?: number; lossOn?: LossOn; recordNumbers?: readonly number[] } = {},
): Promise<TokenizedData> {
  // Loaded here, not at start: the package costs every process that imports it 40 MiB.
  const { getLlama, LlamaLogLevel, resolveChatWrapper } = await import("node-llama-cpp");
  let llama;
  try {
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  } catch (error) {
    throw new EngineError("Could not start llama.cpp to tokenize the training data", { cause: error });
  }
  const model = await llama.loadModel({ modelPath, vocabOnly: true });
  try {
    const chatWrapper = records.some((record) => record.kind === "chat") ? resolveChatWrapper(model) : undefined;
    if (chatWrapper !== undefined && model.fileInfo.metadata.tokenizer?.chat_template === undefined) {
      throw new InvalidRequestError("The data has chat records but the model has no chat template (tokenizer.chat_template) to render them", { param: "data" });
    }
    const bos = model.tokens.bos;
    const eos = model.tokens.eos;
    const windowSize = options.windowSize;
    if (windowSize !== undefined && eos === null) throw new InvalidRequestError("Training without packing pads records with EOS, and this model has no EOS token", { param: "packing" });
    const masked = options.lossOn === "answers" && chatWrapper !== undefined;
    const render = (chatHistory: ChatHistoryItem[]): Token[] => chatWrapper!.generateContextState({ chatHistory }).contextText.tokenize(model.tokenizer);
    const parts: number[][] = [];
    const masks: Uint8Array[] = [];
    let total = 0;
    for (const record of records) {
      let tokens: Token[];
      let turns: { prompt: Token[]; withAnswer: Token[] }[] | undefined;
      if (record.kind === "text") {
        tokens = model.tokenize(record.text, false);
        if (bos !== null && model.tokens.shouldPrependBosToken) tokens.unshift(bos);
      } else {
        const chatHistory: ChatHistoryItem[] = record.messages.map((message) =>
          message.role === "assistant" ? { type: "model", response: [message.content] } : { type: message.role, text: message.content },
        );
        tokens = render(chatHistory);
        // Each assistant turn rendered twice: up to its opening (an empty model turn is rendered
        // as the generation prompt), and up to the end of its content.
        if (masked) {
          turns = record.messages.flatMap((message, index) =>
            message.role === "assistant" ? [{ prompt: render([...chatHistory.slice(0, index), { type: "model", response: [] }]), withAnswer: render(chatHistory.slice(0, index + 1)) }] : [],
          );
        }
      }
      if (eos !== null && tokens.at(-1) !== eos) tokens.push(eos);
      const mask = turns === undefined ? new Uint8Array(tokens.length).fill(1) : chatLossMask(tokens, turns, (token) => model.isEogToken(token as Token));
      if (windowSize !== undefined) {
        if (tokens.length > windowSize) {
          throw new InvalidRequestError(`Record ${options.recordNumbers?.[parts.length] ?? parts.length + 1} of the data is ${tokens.length} tokens, longer than a window of ${windowSize}: without packing each record must fit in --ctx`, { param: "data" });
        }
        while (tokens.length < windowSize) tokens.push(eos!);
      }
      parts.push(tokens);
      masks.push(mask);
      total += tokens.length;
    }
    if (windowSize !== undefined) {
      parts.push(new Array<Token>(windowSize + 1).fill(eos!));
      total += windowSize + 1;
    }
    const stream = new Int32Array(total);
    const lossMask = masked ? new Uint8Array(total) : null; // padding stays 0
    let offset = 0;
    for (const [index, part] of parts.entries()) {
      stream.set(part, offset);
      if (lossMask !== null && index < masks.length) lossMask.set(masks[index]!, offset);
      offset += part.length;
    }
    return { tokens: stream, lossMask, chatFormat: chatWrapper?.wrapperName ?? null };
  } finally {
    await model.dispose();
  }
}
