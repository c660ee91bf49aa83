import type { GenerateDone, GenerateEvent, GenerateOptions, LoadedModel, TokenLogprob } from "../engine/engine.js";
import type { RequestOutcome } from "../gateway/gateway.js";

/** What a session needs from the request's metering (the gateway hooks' RequestMeter is one). */
export interface SessionMeter {
  /** Reserves the worst case from the key's limits and budget; throws when over them. */
  admit(options: { model: string; digest: string; promptTokens: number; maxCompletionTokens: number }): Promise<void>;
  /** Settles with what was used (once). */
  finish(outcome: RequestOutcome): Promise<void>;
  /** Settles a failed request (once), counting `used` tokens. */
  fail(error: unknown, used?: { promptTokens: number; completionTokens: number }): Promise<void>;
  /** Set once a route streams: a later error is the stream's to report. */
  streaming: boolean;
}

/** One choice, collected whole (non-streaming answers). */
export interface CollectedChoice {
  readonly text: string;
  /** The generated tokens. */
  readonly tokens: number[];
  readonly logprobs: TokenLogprob[];
  readonly done: GenerateDone;
}

/** Options of {@link GenerationSession.start}. */
export interface GenerationSessionOptions {
  readonly model: LoadedModel;
  /** The name the client asked for (metering and answers use it). */
  readonly name: string;
  readonly meter: SessionMeter;
  readonly generate: GenerateOptions;
}

/**
 * The one generation path every API uses (OpenAI chat and completions, Ollama, llama-server's
 * routes): admission against the key's limits (the worst case reserved before a slot is taken),
 * the engine's event stream, and metering settled exactly once with what was generated, whether
 * the stream ended, failed or was cancelled. Routes translate their request into GenerateOptions,
 * then encode {@link events} or {@link collect} into their wire format, and nothing else.
 */
export class GenerationSession {
  readonly #options: GenerationSessionOptions;
  readonly #events: AsyncGenerator<GenerateEvent, void, void>;
  readonly #first: IteratorResult<GenerateEvent, void>;
  readonly #dones: GenerateDone[] = [];
  #settled = false;

  private constructor(options: GenerationSessionOptions, events: AsyncGenerator<GenerateEvent, void, void>, first: IteratorResult<GenerateEvent, void>) {
    this.#options = options;
    this.#events = events;
    this.#first = first;
  }

  /**
   * Admits the request and starts generating; resolves at the first event, so errors before it
   * (over a limit, no free slot and a full queue, a bad grammar) reach the client as a status.
   */
  static async start(options: GenerationSessionOptions): Promise<GenerationSession> {
    const { model, meter, generate } = options;
    if (generate.json !== undefined) await model.prepareJsonGrammar(generate.json);
    const choices = generate.n ?? 1;
    await meter.admit({ model: options.name, digest: model.info.digest, promptTokens: generate.promptTokens.length, maxCompletionTokens: generate.maxTokens * choices });
    const events = model.generate(generate);
    let first: IteratorResult<GenerateEvent, void>;
    try {
      first = await events.next();
    } catch (error) {
      await meter.fail(error);
      throw error;
    }
    return new GenerationSession(options, events, first);
  }

  /** The events, first to last; metering settles when the iteration ends, however it ends. */
  async *events(): AsyncGenerator<GenerateEvent, void, void> {
    let failure: unknown;
    try {
      for (let result = this.#first; !result.done; result = await this.#events.next()) {
        if (result.value.type === "done") this.#dones.push(result.value);
        yield result.value;
      }
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      // Closing the engine's stream releases its slots whatever happened above.
      await this.#events.return(undefined);
      await this.#settle(failure);
    }
  }

  /** Every choice collected whole, by choice index (non-streaming answers). */
  async collect(): Promise<CollectedChoice[]> {
    const choices: { text: string; tokens: number[]; logprobs: TokenLogprob[]; done?: GenerateDone }[] = [];
    const of = (index: number | undefined) => (choices[index ?? 0] ??= { text: "", tokens: [], logprobs: [] });
    for await (const event of this.events()) {
      if (event.type === "progress") continue;
      const choice = of(event.choice);
      if (event.type === "done") choice.done = event;
      else {
        choice.text += event.text;
        if (event.tokens) choice.tokens.push(...event.tokens);
        if (event.logprobs) choice.logprobs.push(...event.logprobs);
      }
    }
    return choices.map((choice) => ({ text: choice.text, tokens: choice.tokens, logprobs: choice.logprobs, done: choice.done! }));
  }

  /** True when a choice ended because the client went away (the answer is then a bare 499). */
  get cancelled(): boolean {
    return this.#dones.length < (this.#options.generate.n ?? 1) || this.#dones.some((done) => done.finishReason === "aborted");
  }

  /** Marks the request as streaming: from here on an error ends the stream instead of becoming a status. */
  streaming(): void {
    this.#options.meter.streaming = true;
  }

  async #settle(failure: unknown): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    const meter = this.#options.meter;
    const promptTokens = this.#dones[0]?.promptTokens ?? 0;
    const completionTokens = this.#dones.reduce((sum, done) => sum + done.completionTokens, 0);
    if (failure !== undefined) {
      await meter.fail(failure, { promptTokens, completionTokens });
      return;
    }
    const cancelled = this.cancelled;
    const firstTokens = this.#dones.filter((done) => done.completionTokens > 0).map((done) => done.timeToFirstTokenMs);
    await meter.finish({
      promptTokens,
      completionTokens,
      ...(firstTokens.length > 0 ? { ttftMs: Math.min(...firstTokens) } : {}),
      status: cancelled ? 499 : 200,
      cancelled,
    });
  }
}

/**
 * Splits one request's meter among several sessions (a completions request with several
 * prompts): the request is admitted once for all of them, and settled once, when every share
 * has settled, with the sum of what they used (a failure wins over success, a cancellation
 * over completion).
 */
export function shareMeter(meter: SessionMeter, shares: number): SessionMeter[] {
  let left = shares;
  let failure: unknown;
  const total = { promptTokens: 0, completionTokens: 0, cancelled: false, ttftMs: undefined as number | undefined };
  const settle = async () => {
    if (--left > 0) return;
    const used = { promptTokens: total.promptTokens, completionTokens: total.completionTokens };
    if (failure !== undefined) await meter.fail(failure, used);
    else await meter.finish({ ...used, ...(total.ttftMs === undefined ? {} : { ttftMs: total.ttftMs }), status: total.cancelled ? 499 : 200, cancelled: total.cancelled });
  };
  return Array.from({ length: shares }, () => ({
    admit: async () => undefined,
    async finish(outcome: RequestOutcome) {
      total.promptTokens += outcome.promptTokens;
      total.completionTokens += outcome.completionTokens;
      total.cancelled ||= outcome.cancelled;
      if (outcome.ttftMs !== undefined) total.ttftMs = Math.min(total.ttftMs ?? Infinity, outcome.ttftMs);
      await settle();
    },
    async fail(error: unknown, used?: { promptTokens: number; completionTokens: number }) {
      failure ??= error;
      total.promptTokens += used?.promptTokens ?? 0;
      total.completionTokens += used?.completionTokens ?? 0;
      await settle();
    },
    get streaming() {
      return meter.streaming;
    },
    set streaming(value: boolean) {
      meter.streaming = value;
    },
  }));
}
