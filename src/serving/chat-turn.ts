import { ContextLengthError } from "../core/errors.js";
import type { ChatMessage, GenerateDone, GenerateOptions, LoadedModel, TokenLogprob } from "../engine/engine.js";
import { GenerationSession, type SessionMeter } from "./generation-session.js";

/**
 * One assistant turn of a chat, the part every chat-shaped API shares (OpenAI chat completions,
 * the Responses API, Anthropic's Messages, Ollama's chat): the template applied, the context
 * checked, one GenerationSession, and the model's output split into what the APIs name — answer
 * text, reasoning, tool calls. Each route only translates its request into a {@link ChatTurnRequest}
 * and these events into its wire format.
 */
export interface ChatTurnRequest {
  readonly model: LoadedModel;
  /** The name the client asked for. */
  readonly name: string;
  readonly meter: SessionMeter;
  readonly messages: readonly ChatMessage[];
  /** Most tokens to generate; undefined: whatever the context leaves. */
  readonly maxTokens: number | undefined;
  /** The request field `maxTokens` came from, for the error that names it. */
  readonly maxTokensParam: string;
  /** Sampling and stopping, as the engine takes them. */
  readonly generate: Omit<GenerateOptions, "promptTokens" | "maxTokens">;
}

/** What a turn produces, in order, per choice. */
export type ChatTurnEvent =
  | { readonly type: "content"; readonly choice: number; readonly text: string; readonly logprobs?: readonly TokenLogprob[] }
  | { readonly type: "done"; readonly choice: number; readonly done: GenerateDone };

/** One choice, collected whole. */
export interface ChatTurnResult {
  readonly content: string;
  readonly logprobs: readonly TokenLogprob[];
  readonly done: GenerateDone;
}

export class ChatTurn {
  private constructor(
    readonly session: GenerationSession,
    /** Tokens of the templated conversation. */
    readonly promptTokens: number,
  ) {}

  /** Applies the template, checks the context and starts generating (errors before the first token are a status). */
  static async start(request: ChatTurnRequest): Promise<ChatTurn> {
    const { model } = request;
    const promptTokens = model.applyChatTemplate(request.messages);
    const room = model.info.contextSize - promptTokens.length;
    const maxTokens = request.maxTokens ?? room;
    if (room < 1 || maxTokens > room) {
      throw new ContextLengthError(
        `This model's context holds ${model.info.contextSize} tokens; the messages take ${promptTokens.length}` +
          (maxTokens > room && room >= 1 ? ` and ${request.maxTokensParam} asks for ${maxTokens} more` : ""),
        { param: request.maxTokens === undefined ? "messages" : request.maxTokensParam },
      );
    }
    const session = await GenerationSession.start({
      model,
      name: request.name,
      meter: request.meter,
      generate: { ...request.generate, promptTokens, maxTokens },
    });
    return new ChatTurn(session, promptTokens.length);
  }

  /** The turn's events; metering settles when the iteration ends, however it ends. */
  async *events(): AsyncGenerator<ChatTurnEvent, void, void> {
    for await (const event of this.session.events()) {
      const choice = event.choice ?? 0;
      if (event.type === "text") yield { type: "content", choice, text: event.text, ...(event.logprobs ? { logprobs: event.logprobs } : {}) };
      else yield { type: "done", choice, done: event };
    }
  }

  /** Every choice collected whole. */
  async collect(): Promise<ChatTurnResult[]> {
    const results: { content: string; logprobs: TokenLogprob[]; done?: GenerateDone }[] = [];
    for await (const event of this.events()) {
      const result = (results[event.choice] ??= { content: "", logprobs: [] });
      if (event.type === "done") result.done = event.done;
      else {
        result.content += event.text;
        if (event.logprobs) result.logprobs.push(...event.logprobs);
      }
    }
    return results.map((result) => ({ content: result.content, logprobs: result.logprobs, done: result.done! }));
  }

  /** True when the client went away before the turn ended. */
  get cancelled(): boolean {
    return this.session.cancelled;
  }
}
