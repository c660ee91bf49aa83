import { basename } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ContextLengthError, InvalidRequestError, NotSupportedError } from "../../core/errors.js";
import type { ChatTemplateCapabilities } from "../../engine/chat-template-capabilities.js";
import type { GenerateDone, GenerateOptions, LoadedModel, TokenLogprob } from "../../engine/engine.js";
import { ChatTurn } from "../../serving/chat-turn.js";
import { GenerationSession, shareMeter, type CollectedChoice } from "../../serving/generation-session.js";
import { withLora } from "../../serving/lora-mix.js";
import type { LoraChoice, ModelCatalog } from "../../serving/model-catalog.js";
import { meterOf } from "../gateway-hooks.js";
import { chatMessagesOf, checkLogitBias, clientGoneSignal, probabilityOf, promptProgressOf, templateOptions, timingsOf } from "../generation.js";
import {
  applyTemplateSchema,
  detokenizeSchema,
  infillSchema,
  nativeCompletionSchema,
  tokenizeSchema,
  type InfillRequest,
  type NativeCompletionRequest,
} from "../llama-schemas.js";
import { parseBody } from "../openai-schemas.js";
import { promptsOf, tokenizeMixed } from "../prompt-input.js";
import { SseStream } from "../sse.js";

/**
 * llama-server's own endpoints, for its clients and its test suite: `/completion` (and `/infill`
 * for models with fill-in-the-middle tokens), `/tokenize`, `/detokenize`, `/apply-template`,
 * `/props`, and `/slots` when enabled. They translate into the one generation path
 * (GenerationSession) like the OpenAI and Ollama routes; the wire shapes are llama-server's.
 */
export interface LlamaNativeOptions {
  readonly catalog: ModelCatalog;
  /** The model a request without `model` (and `/props`, `/slots`) means. */
  readonly defaultModel: () => string | undefined;
  /** Serve `GET /slots` (llama-server's `--slots`); otherwise it answers 501. */
  readonly slots: boolean;
  /** The seed of generations that set none (`--seed`), for `/props`; undefined: a new one each (-1). */
  readonly seed?: number;
}

const modelOf = (request: FastifyRequest, body: { model?: string | undefined }, options: LlamaNativeOptions): string => {
  const name = body.model ?? options.defaultModel();
  if (name === undefined) throw new InvalidRequestError("Name a model: this server has no default model", { param: "model" });
  meterOf(request).checkModel(name);
  return name;
};

function logitBiasOf(model: LoadedModel, bias: NativeCompletionRequest["logit_bias"]): Map<number, number> | undefined {
  if (bias === undefined) return undefined;
  const result = new Map<number, number>();
  const set = (key: number | string, value: number | false) => {
    const amount = value === false ? -Infinity : value;
    // A string names every token of its text, as llama-server does.
    const tokens = typeof key === "number" ? [key] : /^\d+$/.test(key) && !Array.isArray(bias) ? [Number(key)] : model.tokenize(key);
    for (const token of tokens) result.set(token, amount);
  };
  if (Array.isArray(bias)) for (const [key, value] of bias) set(key, value);
  else for (const [key, value] of Object.entries(bias)) set(key, value);
  return result;
}

/** The engine options of a `/completion` or `/infill` request, after the prompt. */
function generationOf(model: LoadedModel, body: NativeCompletionRequest | InfillRequest, promptTokens: number[], signal: AbortSignal): GenerateOptions {
  const room = model.info.contextSize - promptTokens.length;
  if (promptTokens.length === 0) throw new InvalidRequestError("The prompt is empty", { param: "prompt" });
  if (room < 1) throw new ContextLengthError(`This model's context holds ${model.info.contextSize} tokens; the prompt has ${promptTokens.length}`, { param: "prompt", sizes: { promptTokens: promptTokens.length, contextSize: model.info.contextSize } });
  // A config fork's defaults come before llama-server's.
  const defaults = model.info.defaults ?? {};
  const asked = body.n_predict ?? body.max_tokens ?? defaults.maxTokens ?? -1;
  const maxTokens = asked < 0 ? room : Math.min(asked, room);
  const logitBias = logitBiasOf(model, body.logit_bias);
  const problem = checkLogitBias(model, logitBias);
  if (problem) throw new InvalidRequestError(problem, { param: "logit_bias" });
  if (body.grammar !== undefined && body.json_schema !== undefined) throw new InvalidRequestError("Give grammar or json_schema, not both", { param: "grammar" });
  return {
    promptTokens,
    maxTokens,
    // llama-server's defaults.
    temperature: body.temperature ?? defaults.temperature ?? 0.8,
    topK: body.top_k ?? defaults.topK ?? 40,
    topP: body.top_p ?? defaults.topP ?? 0.95,
    minP: body.min_p ?? defaults.minP ?? 0.05,
    ...(body.seed !== undefined && body.seed >= 0 ? { seed: body.seed } : defaults.seed === undefined ? {} : { seed: defaults.seed }),
    stop: body.stop ?? defaults.stop ?? [],
    repeatPenalty: body.repeat_penalty ?? defaults.repeatPenalty ?? 1,
    presencePenalty: body.presence_penalty ?? defaults.presencePenalty ?? 0,
    frequencyPenalty: body.frequency_penalty ?? defaults.frequencyPenalty ?? 0,
    ...(logitBias === undefined ? {} : { logitBias }),
    ignoreEos: body.ignore_eos ?? false,
    ...(body.grammar === undefined ? {} : { grammar: body.grammar }),
    ...(body.json_schema === undefined ? {} : { json: body.json_schema }),
    ...(body.n_probs ? { logprobs: body.n_probs, postSamplingProbs: body.post_sampling_probs ?? false } : {}),
    // llama-server reports progress on streams only.
    progress: (body.stream ?? false) && (body.return_progress ?? false),
    signal,
  };
}

const bytesOf = (text: string) => [...Buffer.from(text, "utf8")];

/** llama-server's `completion_probabilities` entries (`prob`/`top_probs` after the sampler chain with `post_sampling_probs`). */
function probabilities(logprobs: readonly TokenLogprob[], postSampling: boolean) {
  if (postSampling) return logprobs.map((entry) => ({ ...probabilityOf(entry.token, entry.text, entry.logprob), top_probs: entry.top.map((top) => probabilityOf(top.token, top.text, top.logprob)) }));
  return logprobs.map((entry) => ({
    id: entry.token,
    token: entry.text,
    bytes: bytesOf(entry.text),
    logprob: entry.logprob ?? 0,
    top_logprobs: entry.top.map((top) => ({ id: top.token, token: top.text, bytes: bytesOf(top.text), logprob: top.logprob })),
  }));
}

function settingsOf(name: string, options: GenerateOptions, asked: number | undefined) {
  return {
    model: name,
    n_predict: asked ?? -1,
    seed: options.seed ?? -1,
    temperature: options.temperature,
    top_k: options.topK,
    top_p: options.topP,
    min_p: options.minP,
    repeat_penalty: options.repeatPenalty,
    presence_penalty: options.presencePenalty,
    frequency_penalty: options.frequencyPenalty,
    ignore_eos: options.ignoreEos,
    n_probs: options.logprobs ?? 0,
    post_sampling_probs: options.postSamplingProbs ?? false,
    stop: options.stop,
    stream: false,
  };
}

const stopTypeOf = (done: GenerateDone) => (done.finishReason === "length" ? "limit" : done.stopString !== undefined ? "word" : done.finishReason === "stop" ? "eos" : "none");

/** Keeps only the asked fields, by `a/b` paths, as llama-server's `response_fields`. */
function pickFields(result: Record<string, unknown>, fields: readonly string[] | undefined): Record<string, unknown> {
  if (fields === undefined || fields.length === 0) return result;
  const picked: Record<string, unknown> = {};
  for (const field of fields) {
    let value: unknown = result;
    for (const part of field.split("/")) value = value !== null && typeof value === "object" ? (value as Record<string, unknown>)[part] : undefined;
    if (value !== undefined) picked[field] = value;
  }
  return picked;
}

/** Runs `/completion` or `/infill`: one prompt streamed, or each prompt collected. */
async function complete(
  request: FastifyRequest,
  reply: FastifyReply,
  model: LoadedModel,
  name: string,
  body: NativeCompletionRequest | InfillRequest,
  prompts: number[][],
  /** The `lora` the generation runs with (the request's, else the served file's `--lora`), echoed in `generation_settings`. */
  lora: readonly LoraChoice[],
): Promise<unknown> {
  const meter = meterOf(request);
  const signal = clientGoneSignal(reply);
  const asked = body.n_predict ?? body.max_tokens;
  const options = prompts.map((tokens) => generationOf(model, body, tokens, signal));
  if (body.stream && prompts.length > 1) throw new InvalidRequestError("Streaming takes one prompt per request", { param: "prompt" });
  const postSampling = body.post_sampling_probs ?? false;
  const result = (index: number, collected: { text: string; tokens: readonly number[]; logprobs: readonly TokenLogprob[]; done: GenerateDone }) => ({
    index,
    content: collected.text,
    tokens: body.return_tokens ? [...collected.tokens] : [],
    id_slot: -1,
    stop: true,
    model: name,
    tokens_predicted: collected.done.completionTokens,
    tokens_evaluated: collected.done.promptTokens,
    generation_settings: { ...settingsOf(name, options[index]!, asked), lora },
    prompt: model.detokenize(prompts[index]!, { special: true }),
    has_new_line: collected.text.includes("\n"),
    // Stopped by the context's end rather than n_predict (llama-server's `truncated`).
    truncated: collected.done.finishReason === "length" && (asked === undefined || asked < 0 || collected.done.completionTokens < asked),
    stop_type: stopTypeOf(collected.done),
    stopping_word: collected.done.stopString ?? "",
    tokens_cached: collected.done.promptTokens,
    timings: timingsOf(collected.done),
    ...(body.n_probs ? { completion_probabilities: probabilities(collected.logprobs, postSampling) } : {}),
  });

  if (!body.stream) {
    const answers: Record<string, unknown>[] = [];
    // The request is admitted once for all its prompts, then they run one after another.
    await meter.admit({ model: name, digest: model.info.digest, promptTokens: prompts.reduce((sum, tokens) => sum + tokens.length, 0), maxCompletionTokens: options.reduce((sum, each) => sum + each.maxTokens, 0) });
    const shares = shareMeter(meter, prompts.length);
    for (let index = 0; index < prompts.length; index++) {
      let session: GenerationSession;
      try {
        session = await GenerationSession.start({ model, name, meter: shares[index]!, generate: options[index]! });
      } catch (error) {
        for (let rest = index + 1; rest < prompts.length; rest++) await shares[rest]!.fail(error);
        throw error;
      }
      const [choice] = (await session.collect()) as [CollectedChoice];
      if (session.cancelled) {
        for (let rest = index + 1; rest < prompts.length; rest++) await shares[rest]!.finish({ promptTokens: 0, completionTokens: 0, status: 499, cancelled: true });
        return reply.code(499).send();
      }
      answers.push(pickFields(result(index, choice), body.response_fields));
    }
    return prompts.length === 1 ? answers[0] : answers;
  }

  const session = await GenerationSession.start({ model, name, meter, generate: options[0]! });
  session.streaming();
  const stream = new SseStream(reply);
  const collected = { text: "", tokens: [] as number[], logprobs: [] as TokenLogprob[] };
  try {
    for await (const event of session.events()) {
      if (event.type === "progress") {
        stream.send({ index: 0, content: "", tokens: [], stop: false, id_slot: -1, tokens_predicted: 0, tokens_evaluated: event.total, prompt_progress: promptProgressOf(event) });
        continue;
      }
      if (event.type === "text") {
        collected.text += event.text;
        collected.tokens.push(...(event.tokens ?? []));
        if (event.logprobs) collected.logprobs.push(...event.logprobs);
        stream.send({
          index: 0,
          content: event.text,
          tokens: [...(event.tokens ?? [])],
          stop: false,
          id_slot: -1,
          ...(event.logprobs && body.n_probs ? { completion_probabilities: probabilities(event.logprobs, postSampling) } : {}),
        });
        continue;
      }
      if (event.finishReason === "aborted") return reply;
      const last = result(0, { ...collected, done: event });
      stream.send({ ...last, content: "", tokens: [], generation_settings: { ...last.generation_settings, stream: true } });
    }
    stream.end({ done: false });
  } catch (error) {
    request.log.error({ err: error }, "completion stream failed");
    stream.fail(error);
  }
  return reply;
}

export function registerLlamaNativeRoutes(app: FastifyInstance, options: LlamaNativeOptions): void {
  const { catalog } = options;

  app.post("/completion", async (request, reply) => {
    const body = parseBody(nativeCompletionSchema, request.body);
    const name = modelOf(request, body, options);
    const model = await withLora(catalog, name, await catalog.get(name), body.lora, (fork) => meterOf(request).applyFork(fork));
    const lora = body.lora ?? catalog.defaultLora?.(name) ?? [];
    return complete(request, reply, model, name, body, promptsOf(model, body.prompt), lora);
  });

  app.post("/infill", async (request, reply) => {
    const body = parseBody(infillSchema, request.body);
    const name = modelOf(request, body, options);
    const model = await catalog.get(name);
    const fim = model.vocabulary().fim;
    if (fim === undefined) throw new NotSupportedError("Infill is not supported by this model: it has no fill-in-the-middle tokens (prefix, suffix, middle)");
    // llama.cpp's format_prompt_infill, without repository-level context: [extra chunks] <PRE>prefix <SUF>suffix <MID>prompt.
    const text = (value: string) => model.tokenize(value, { special: false });
    const extra = (body.input_extra ?? []).flatMap((chunk) => text(`${chunk.filename ? `${chunk.filename}\n` : ""}${chunk.text}`));
    const prompt = [fim.prefix, ...extra, ...text(body.input_prefix), fim.suffix, ...text(body.input_suffix), fim.middle, ...text(body.prompt ?? "")];
    const lora = body.lora ?? catalog.defaultLora?.(name) ?? [];
    return complete(request, reply, await withLora(catalog, name, model, body.lora, (fork) => meterOf(request).applyFork(fork)), name, body, [prompt], lora);
  });

  app.post("/tokenize", async (request) => {
    const body = parseBody(tokenizeSchema, request.body);
    const model = await catalog.get(modelOf(request, body, options));
    const tokens = tokenizeMixed(model, body.content, body.add_special ?? false, body.parse_special ?? true);
    if (!body.with_pieces) return { tokens };
    const vocabulary = model.vocabulary();
    return {
      tokens: tokens.map((token) => {
        const bytes = vocabulary.piece(token);
        const text = Buffer.from(bytes).toString("utf8");
        // Bytes that are not whole UTF-8 characters are given as numbers, as llama-server gives them.
        const valid = Buffer.from(text, "utf8").equals(Buffer.from(bytes));
        return { id: token, piece: valid ? text : [...bytes] };
      }),
    };
  });

  app.post("/detokenize", async (request) => {
    const body = parseBody(detokenizeSchema, request.body);
    const model = await catalog.get(modelOf(request, body, options));
    const stray = body.tokens.find((token) => token >= model.info.vocabularySize);
    if (stray !== undefined) throw new InvalidRequestError(`Token ${stray} is not in the vocabulary (${model.info.vocabularySize} tokens)`, { param: "tokens" });
    return { content: model.detokenize(body.tokens, { special: true }) };
  });

  app.post("/apply-template", async (request) => {
    const body = parseBody(applyTemplateSchema, request.body);
    const model = await catalog.get(modelOf(request, body, options));
    const tools = body.tools === undefined ? {} : { tools: { definitions: body.tools, choice: "auto" as const } };
    return { prompt: ChatTurn.promptText({ model, messages: chatMessagesOf(body.messages), ...templateOptions(body), ...tools }) };
  });

  // llama-server's LoRA adapter list: here the served model's adapter forks, oldest first. Their
  // scale is 0 — a request applies them with `lora: [{id, scale}]`; none is applied by default,
  // so the base answers as itself. `path` is the fork's name (never a server path).
  app.get<{ Querystring: { model?: string } }>("/lora-adapters", async (request) => {
    // `?model=` names another model than the default, as llama-server's router mode does.
    const asked = request.query.model;
    if (asked !== undefined && (typeof asked !== "string" || asked.length === 0 || asked.length > 256)) throw new InvalidRequestError("model must be a model name", { param: "model" });
    const name = modelOf(request, { model: asked }, options);
    const adapters = (await catalog.adaptersOf?.(name)) ?? [];
    return adapters.map((adapter) => ({ id: adapter.id, path: adapter.name, scale: adapter.scale ?? 0 }));
  });
  app.post("/lora-adapters", async () => {
    throw new NotSupportedError(
      "Grove does not set adapter scales for every request (they would change other clients' answers): give each request its own lora: [{id, scale}], ids as GET /lora-adapters lists them",
    );
  });

  app.get("/props", async (request) => {
    const name = modelOf(request, {}, options);
    const model = await catalog.get(name);
    const vocabulary = model.vocabulary();
    const { info } = model;
    return {
      default_generation_settings: { n_ctx: info.contextSize, params: { ...settingsOf(name, generationOf(model, {} as NativeCompletionRequest, [0], new AbortController().signal), undefined), seed: options.seed ?? -1, lora: catalog.defaultLora?.(name) ?? [] } },
      total_slots: info.slots,
      model_alias: name,
      // The file's name, never a server path.
      model_path: basename(info.path).endsWith(".gguf") ? basename(info.path) : `${name}.gguf`,
      modalities: { vision: false, audio: false },
      endpoint_slots: options.slots,
      endpoint_props: false,
      endpoint_metrics: true,
      chat_template: vocabulary.chatTemplate,
      chat_template_caps: templateCapsOf(vocabulary.chatTemplateCapabilities),
      bos_token: vocabulary.bosText,
      eos_token: vocabulary.eosText,
      build_info: "grove",
      is_sleeping: false,
    };
  });

  app.get("/slots", async (request) => {
    if (!options.slots) throw new NotSupportedError("This server does not serve slot information: start it with --slots");
    const model = await catalog.get(modelOf(request, {}, options));
    const stats = model.stats();
    return Array.from({ length: model.info.slots }, (_, id) => ({ id, n_ctx: model.info.contextSize, is_processing: id < stats.slotsBusy }));
  });
}

/** A template's capabilities under llama-server's `/props` names (`common_chat_templates_get_caps`). */
function templateCapsOf(caps: ChatTemplateCapabilities): Record<string, boolean> {
  return {
    supports_object_arguments: caps.objectArguments,
    supports_parallel_tool_calls: caps.parallelToolCalls,
    supports_preserve_reasoning: caps.preserveReasoning,
    supports_string_content: caps.stringContent,
    supports_system_role: caps.systemRole,
    supports_tool_calls: caps.toolCalls,
    supports_tools: caps.tools,
    supports_typed_content: caps.typedContent,
  };
}
