import type { ChatHistoryItem, Token } from "node-llama-cpp";
import { EngineError, InvalidRequestError } from "../../core/errors.js";
import type { TrainingRecord } from "./training-data.js";

/** The training stream of a data set, and how it was made. */
export interface TokenizedData {
  /**
   * Every record's tokens, joined: BOS (when the model adds one), the record, EOS. With a
   * `windowSize`, each record is padded with EOS to the window, and one more window and token of
   * EOS close the stream (llama.cpp's windowing needs them to take the last record's window).
   */
  tokens: Int32Array;
  /** The chat wrapper used for chat records, e.g. `ChatML`; null when there were none. */
  chatFormat: string | null;
}

/**
 * Tokenizes training records with the model's own vocabulary (node-llama-cpp, vocabulary only —
 * no weights are loaded): text records as they are, chat records rendered with the model's
 * chat template (node-llama-cpp's wrapper for it, Jinja included). Each record ends with EOS so
 * the model learns where answers stop.
 *
 * llama.cpp's trainer computes the loss on every token of a window (its labels have no ignore
 * index), so a chat record trains on the user and system turns too, not only the assistant's.
 *
 * @throws InvalidRequestError when the data has chat records and the model has no chat template
 */
export async function tokenizeRecords(modelPath: string, records: readonly TrainingRecord[], options: { windowSize?: number } = {}): Promise<TokenizedData> {
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
    const parts: number[][] = [];
    let total = 0;
    for (const record of records) {
      let tokens: Token[];
      if (record.kind === "text") {
        tokens = model.tokenize(record.text, false);
        if (bos !== null && model.tokens.shouldPrependBosToken) tokens.unshift(bos);
      } else {
        const chatHistory: ChatHistoryItem[] = record.messages.map((message) =>
          message.role === "assistant" ? { type: "model", response: [message.content] } : { type: message.role, text: message.content },
        );
        tokens = chatWrapper!.generateContextState({ chatHistory }).contextText.tokenize(model.tokenizer);
      }
      if (eos !== null && tokens.at(-1) !== eos) tokens.push(eos);
      if (windowSize !== undefined) {
        if (tokens.length > windowSize) {
          throw new InvalidRequestError(`Record ${parts.length + 1} of the data is ${tokens.length} tokens, longer than a window of ${windowSize}: without packing each record must fit in --ctx`, { param: "data" });
        }
        while (tokens.length < windowSize) tokens.push(eos!);
      }
      parts.push(tokens);
      total += tokens.length;
    }
    if (windowSize !== undefined) {
      parts.push(new Array<Token>(windowSize + 1).fill(eos!));
      total += windowSize + 1;
    }
    const stream = new Int32Array(total);
    let offset = 0;
    for (const part of parts) {
      stream.set(part, offset);
      offset += part.length;
    }
    return { tokens: stream, chatFormat: chatWrapper?.wrapperName ?? null };
  } finally {
    await model.dispose();
  }
}
