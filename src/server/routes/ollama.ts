import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ContextLengthError, GroveError, InvalidRequestError, NotSupportedError, PayloadTooLargeError } from "../../core/errors.js";
import { normalizeEmbedding } from "../../engine/embedding-norm.js";
import type { ChatMessage, GenerateDone, LoadedModel, TokenLogprob } from "../../engine/engine.js";
import { DEFAULT_EMBEDDING_NORM, requirePooledEmbeddings } from "../embedding-output.js";
import { toErrorResponse } from "../error-table.js";
import { meterOf } from "../gateway-hooks.js";
import { clientGoneSignal, utf8Bytes } from "../generation.js";
import { ChatTurn } from "../../serving/chat-turn.js";
import { GenerationSession } from "../../serving/generation-session.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { drainRejectedBody, jsonBodyParser, unsupportedMediaType } from "../json-body.js";
import { NdjsonStream } from "../ndjson.js";
import {
  ollamaChatSchema,
  ollamaEmbeddingsSchema,
  ollamaEmbedSchema,
  ollamaGenerateSchema,
  ollamaJsonConstraint,
  ollamaSampling,
  type OllamaChatRequest,
  type OllamaGenerateRequest,
} from "../ollama-schemas.js";
import { parseBody } from "../openai-schemas.js";
import { registerOllamaCreateRoute } from "./ollama-create.js";
import type { OllamaServices } from "./ollama-services.js";
import { registerOllamaModelRoutes, servedName } from "./ollama-models.js";

/**
 * The Ollama-compatible API (ollama/ollama `docs/api.md`): `/api/chat`, `/api/generate`,
 * `/api/embed`, `/api/embeddings`, and the model routes of `ollama-models.ts`. They live in their
 * own fastify scope so that errors take Ollama's shape, `{"error": "…"}`, with the status Grove's
 * error table gives, while `/v1` keeps OpenAI's; and so that bodies sent without a JSON content
 * type (as `curl -d` sends them in Ollama's examples) still parse as JSON.
 */
export function registerOllamaRoutes(app: FastifyInstance, services: OllamaServices): void {
  void app.register(async (scope) => {
    // `curl -d '{…}'`, as Ollama's docs show it, sends a form content type: taken as JSON from a
    // client that is not a browser. A browser (Origin or Sec-Fetch-Site sent: every browser sends
    // one on a POST; Node's fetch sends neither) gets 415, since a page may post a form cross-site
    // without a preflight.
    const parseJson = jsonBodyParser(scope);
    scope.addContentTypeParser(["application/x-www-form-urlencoded", "text/plain"], { parseAs: "buffer" }, (request, body, done) => {
      const headers = request.headers;
      if (headers.origin !== undefined || headers["sec-fetch-site"] !== undefined) {
        done(unsupportedMediaType(undefined), undefined);
        return;
      }
      parseJson(request, body as Buffer, done);
    });
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      const { status, body } = toErrorResponse(fromFastifyError(error));
      if (status >= 500) request.log.error({ err: error }, "request failed");
      else request.log.info({ code: body.error.code, status }, body.error.message);
      if (status === 503) reply.header("retry-after", "1");
      if (status === 413) drainRejectedBody(request, reply);
      return reply.code(status).send({ error: body.error.message });
    });
    registerGenerationRoutes(scope, services.catalog);
    registerOllamaModelRoutes(scope, services);
    registerOllamaCreateRoute(scope, services);
  });
}

function fromFastifyError(error: FastifyError): unknown {
  if (error instanceof GroveError) return error;
  if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new PayloadTooLargeError(error.message, { cause: error });
  if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return unsupportedMediaType(error);
  if (error instanceof SyntaxError || (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)) {
    return new InvalidRequestError(`Malformed request: ${error.message}`, { cause: error });
  }
  return error;
}

/** Nanoseconds since `start`, as Ollama's duration fields count them. */
const nanosecondsSince = (start: bigint) => Number(process.hrtime.bigint() - start);

/**
 * Loads (or finds) the model a request names, timing the load for `load_duration`; the request's
 * `keep_alive` (milliseconds) says how long it stays loaded after this request.
 */
async function loadModel(request: FastifyRequest, catalog: ModelCatalog, name: string, keepAliveMs: number | undefined): Promise<{ model: LoadedModel; loadNs: number }> {
  meterOf(request).checkModel(servedName(name));
  const start = process.hrtime.bigint();
  const model = await catalog.get(servedName(name), keepAliveMs === undefined ? {} : { keepAliveMs });
  return { model, loadNs: nanosecondsSince(start) };
}

/**
 * Ollama's answer to `keep_alive: 0` without a prompt or messages (`ollama stop`): the model is
 * unloaded now — or, with requests running on it, as soon as they end — and the answer says
 * `done_reason: "unload"`, loaded or not (as Ollama's `expireRunner`). An unknown name is a 404.
 */
async function unloadAnswer(request: FastifyRequest, catalog: ModelCatalog, name: string, piece: object) {
  meterOf(request).checkModel(servedName(name));
  if (catalog.unload === undefined) {
    throw new NotSupportedError("This server serves one --model file, which stays loaded: keep_alive 0 cannot unload it");
  }
  await catalog.unload(servedName(name));
  return { model: name, created_at: new Date().toISOString(), ...piece, done: true, done_reason: "unload" };
}

/** Ollama's logprobs entries. */
function ollamaLogprobs(logprobs: readonly TokenLogprob[]) {
  return logprobs.map((entry) => ({
    token: entry.text,
    logprob: entry.logprob ?? 0,
    bytes: utf8Bytes(entry.text),
    top_logprobs: entry.top.map((top) => ({ token: top.text, logprob: top.logprob, bytes: utf8Bytes(top.text) })),
  }));
}

/** One generation's shape: what a chunk carries and what the last object adds. */
interface GenerationJob {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly body: OllamaChatRequest | OllamaGenerateRequest;
  readonly model: LoadedModel;
  readonly promptTokens: number[];
  readonly started: bigint;
  readonly loadNs: number;
  /** `{ message: … }` for chat, `{ response: … }` for generate. */
  piece(text: string): object;
  /** Extra fields of the final object (generate's `context`). */
  finish?(text: string): object;
}

/**
 * Runs one generation and answers it as NDJSON lines (the default) or, with `stream: false`,
 * one object. Sampling, stop strings, `num_predict`, `num_ctx` and `format` map onto the same
 * engine call the OpenAI routes make.
 */
async function runGeneration(job: GenerationJob): Promise<unknown> {
  const { body, model, promptTokens, reply } = job;
  const options = body.options;
  const contextSize = Math.min(options?.num_ctx ?? model.info.contextSize, model.info.contextSize);
  const room = contextSize - promptTokens.length;
  if (room < 1) {
    throw new ContextLengthError(`The context holds ${contextSize} tokens; the prompt takes ${promptTokens.length}`, {
      param: options?.num_ctx === undefined ? "prompt" : "options.num_ctx",
    });
  }
  // Ollama generates until the context is full for -1 and -2, and stops there for larger values too.
  const predict = options?.num_predict ?? model.info.defaults?.maxTokens;
  const maxTokens = predict === undefined || predict < 0 ? room : Math.min(predict, room);
  const session = await GenerationSession.start({
    model,
    name: body.model,
    meter: meterOf(job.request),
    generate: {
      ...ollamaSampling(options),
      promptTokens,
      maxTokens,
      json: ollamaJsonConstraint(body.format),
      logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
      signal: clientGoneSignal(reply),
    },
  });
  const head = () => ({ model: body.model, created_at: new Date().toISOString() });
  const last = (done: GenerateDone, text: string, content: string) => ({
    ...head(),
    ...job.piece(content),
    ...doneFields(done, job.started, job.loadNs),
    ...(job.finish?.(text) ?? {}),
  });

  if (body.stream === false) {
    const [choice] = await session.collect();
    if (session.cancelled || choice === undefined) return reply.code(499).send();
    return { ...last(choice.done, choice.text, choice.text), ...(body.logprobs ? { logprobs: ollamaLogprobs(choice.logprobs) } : {}) };
  }

  session.streaming();
  const stream = new NdjsonStream(reply);
  let text = "";
  try {
    for await (const event of session.events()) {
      if (event.type === "text") {
        text += event.text;
        const logprobs = body.logprobs && event.logprobs ? { logprobs: ollamaLogprobs(event.logprobs) } : {};
        stream.send({ ...head(), ...job.piece(event.text), done: false, ...logprobs });
        continue;
      }
      if (event.type === "progress") continue; // never asked for here
      if (event.finishReason === "aborted") return reply;
      stream.send(last(event, text, ""));
    }
    stream.end();
  } catch (error) {
    job.request.log.error({ err: error }, "ollama stream failed");
    stream.fail(error);
  }
  return reply;
}

/** The fields Ollama's last object of a generation carries: how it ended and its timings, in nanoseconds. */
function doneFields(done: GenerateDone, started: bigint, loadNs: number) {
  const promptNs = Math.round(done.timeToFirstTokenMs * 1e6);
  return {
    done: true,
    done_reason: done.finishReason,
    total_duration: nanosecondsSince(started),
    load_duration: loadNs,
    prompt_eval_count: done.promptTokens,
    prompt_eval_duration: promptNs,
    eval_count: done.completionTokens,
    eval_duration: Math.max(0, Math.round(done.totalMs * 1e6) - promptNs),
  };
}

/** Ollama's messages as chat messages: calls' arguments as JSON text, a tool message's `tool_name` as its name. */
function ollamaMessages(body: OllamaChatRequest): ChatMessage[] {
  let call = 0;
  const ids: string[] = [];
  return body.messages.map((message) => {
    const toolCalls = (message.tool_calls ?? []).map((entry) => {
      // Ollama's calls carry no ids: number them so results can answer them in order.
      const id = `call_${call++}`;
      ids.push(id);
      return { id, name: entry.function.name, arguments: JSON.stringify(entry.function.arguments) };
    });
    return {
      role: message.role,
      content: message.content,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(message.role === "tool" && ids.length > 0 ? { toolCallId: ids.shift()! } : {}),
      ...(message.tool_name === undefined ? {} : { name: message.tool_name }),
      ...(message.thinking === undefined ? {} : { reasoningContent: message.thinking }),
    };
  });
}

const argumentsObject = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

/**
 * `/api/chat` through the one chat turn every chat API shares: the template with the tools, and
 * the model's calls parsed in its family's syntax, answered in Ollama's shape (`tool_calls` with
 * arguments as objects, each call whole in its chunk; reasoning as `thinking`).
 */
async function runChat(job: { request: FastifyRequest; reply: FastifyReply; body: OllamaChatRequest; model: LoadedModel; started: bigint; loadNs: number }): Promise<unknown> {
  const { body, model, reply } = job;
  const options = body.options;
  const predict = options?.num_predict;
  const contextLimit = Math.min(options?.num_ctx ?? model.info.contextSize, model.info.contextSize);
  const tools = body.tools ?? [];
  const turn = await ChatTurn.start({
    model,
    name: body.model,
    meter: meterOf(job.request),
    messages: ollamaMessages(body),
    maxTokens: predict === undefined || predict < 0 ? undefined : predict,
    maxTokensParam: "options.num_predict",
    contextLimit,
    generate: {
      ...ollamaSampling(options),
      json: ollamaJsonConstraint(body.format),
      logprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined,
      signal: clientGoneSignal(reply),
    },
    ...(tools.length === 0 ? {} : { tools: { definitions: tools, choice: "auto" as const } }),
  });
  const head = () => ({ model: body.model, created_at: new Date().toISOString() });
  const message = (content: string, extra: object = {}) => ({ message: { role: "assistant", content, ...extra } });
  const callsOf = (calls: readonly { name: string; arguments: string }[]) => calls.map((call) => ({ function: { name: call.name, arguments: argumentsObject(call.arguments) } }));
  const last = (done: GenerateDone, extra: object) => ({ ...head(), ...message("", extra), ...doneFields(done, job.started, job.loadNs) });

  if (body.stream === false) {
    const [result] = await turn.collect();
    if (turn.cancelled || result === undefined) return reply.code(499).send();
    const extra = { ...(result.reasoning === "" ? {} : { thinking: result.reasoning }), ...(result.toolCalls.length === 0 ? {} : { tool_calls: callsOf(result.toolCalls) }) };
    const answer = last(result.done, extra);
    return { ...answer, message: { ...answer.message, content: result.content }, ...(body.logprobs ? { logprobs: ollamaLogprobs(result.logprobs) } : {}) };
  }

  turn.session.streaming();
  const stream = new NdjsonStream(reply);
  try {
    for await (const event of turn.events()) {
      if (event.type === "content") {
        const logprobs = body.logprobs && event.logprobs ? { logprobs: ollamaLogprobs(event.logprobs) } : {};
        stream.send({ ...head(), ...message(event.text), done: false, ...logprobs });
      } else if (event.type === "reasoning") {
        stream.send({ ...head(), ...message("", { thinking: event.text }), done: false });
      } else if (event.type === "done") {
        if (event.done.finishReason === "aborted") return reply;
        // Ollama sends each call whole: the calls go out once the output is read to its end.
        if (event.toolCalls.length > 0) stream.send({ ...head(), ...message("", { tool_calls: callsOf(event.toolCalls) }), done: false });
        stream.send(last(event.done, {}));
      }
    }
    stream.end();
  } catch (error) {
    job.request.log.error({ err: error }, "ollama stream failed");
    stream.fail(error);
  }
  return reply;
}

/** Ollama answers a request without a prompt by loading the model and saying so. */
function loadedAnswer(name: string, piece: object, loadNs: number, started: bigint) {
  return {
    model: name,
    created_at: new Date().toISOString(),
    ...piece,
    done: true,
    done_reason: "load",
    total_duration: nanosecondsSince(started),
    load_duration: loadNs,
  };
}

function registerGenerationRoutes(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/api/chat", async (request, reply) => {
    const started = process.hrtime.bigint();
    const body = parseBody(ollamaChatSchema, request.body);
    const piece = (content: string) => ({ message: { role: "assistant", content } });
    if (body.messages.length === 0 && body.keep_alive === 0) return unloadAnswer(request, catalog, body.model, piece(""));
    const { model, loadNs } = await loadModel(request, catalog, body.model, body.keep_alive);
    if (body.messages.length === 0) return loadedAnswer(body.model, piece(""), loadNs, started);
    return runChat({ request, reply, body, model, started, loadNs });
  });

  app.post("/api/generate", async (request, reply) => {
    const started = process.hrtime.bigint();
    const body = parseBody(ollamaGenerateSchema, request.body);
    const piece = (response: string) => ({ response });
    if (body.prompt === "" && body.keep_alive === 0) return unloadAnswer(request, catalog, body.model, piece(""));
    const { model, loadNs } = await loadModel(request, catalog, body.model, body.keep_alive);
    if (body.prompt === "" && body.system === undefined) return loadedAnswer(body.model, piece(""), loadNs, started);
    let tokens: number[];
    if (body.raw) {
      if (body.system !== undefined) throw new InvalidRequestError("system cannot be combined with raw: a raw prompt is sent as it is", { param: "system" });
      tokens = model.tokenize(body.prompt, { special: true });
    } else {
      const messages: ChatMessage[] = [];
      if (body.system !== undefined) messages.push({ role: "system", content: body.system });
      messages.push({ role: "user", content: body.prompt });
      tokens = model.applyChatTemplate(messages);
    }
    const context = body.context ?? [];
    const stray = context.find((token) => token >= model.info.vocabularySize);
    if (stray !== undefined) {
      throw new InvalidRequestError(`context holds token ${stray}; the vocabulary has ${model.info.vocabularySize}`, { param: "context" });
    }
    const promptTokens = [...context, ...tokens];
    if (promptTokens.length === 0) throw new InvalidRequestError("The prompt is empty", { param: "prompt" });
    // Ollama returns the conversation's tokens for the next call, except for raw prompts. The
    // generated part is the response re-tokenized: the engine reports text, not token ids.
    const finish = body.raw ? undefined : (text: string) => ({ context: [...promptTokens, ...model.tokenize(text)] });
    return runGeneration({ request, reply, body, model, promptTokens, started, loadNs, piece, ...(finish ? { finish } : {}) });
  });

  app.post("/api/embed", async (request, reply) => {
    const started = process.hrtime.bigint();
    const body = parseBody(ollamaEmbedSchema, request.body);
    const { model, loadNs } = await loadModel(request, catalog, body.model, body.keep_alive);
    const texts = typeof body.input === "string" ? [body.input] : body.input;
    const limit = Math.min(body.options?.num_ctx ?? model.info.contextSize, model.info.contextSize, model.info.trainContextSize);
    // Ollama truncates inputs to the context unless told not to.
    const inputs = texts.map((text, index) => {
      const tokens = model.tokenize(text);
      if (tokens.length <= limit) return tokens;
      if (body.truncate === false) {
        throw new ContextLengthError(`input[${index}] has ${tokens.length} tokens; at most ${limit} fit`, { param: "input" });
      }
      return tokens.slice(0, limit);
    });
    const { vectors, promptTokens } = await meteredEmbed(request, model, body.model, inputs, clientGoneSignal(reply));
    return {
      model: body.model,
      embeddings: vectors.map((vector) => normalizeEmbedding(vector, DEFAULT_EMBEDDING_NORM)),
      total_duration: nanosecondsSince(started),
      load_duration: loadNs,
      prompt_eval_count: promptTokens,
    };
  });

  app.post("/api/embeddings", async (request, reply) => {
    const body = parseBody(ollamaEmbeddingsSchema, request.body);
    const { model } = await loadModel(request, catalog, body.model, body.keep_alive);
    // Ollama's legacy route answers an empty prompt with an empty vector.
    if (body.prompt === "") return { embedding: [] };
    const { vectors } = await meteredEmbed(request, model, body.model, [model.tokenize(body.prompt)], clientGoneSignal(reply));
    return { embedding: vectors[0] };
  });
}

/** Embeds token lists with the key's limits: reserved before, settled to the real count after. */
async function meteredEmbed(request: FastifyRequest, model: LoadedModel, name: string, inputs: readonly number[][], signal: AbortSignal) {
  requirePooledEmbeddings(model);
  const meter = meterOf(request);
  const reserve = inputs.reduce((sum, tokens) => sum + tokens.length, 0);
  await meter.admit({ model: name, digest: model.info.digest, promptTokens: reserve, maxCompletionTokens: 0 });
  try {
    const result = await model.embed(inputs, signal);
    await meter.finish({ promptTokens: result.promptTokens, completionTokens: 0, status: 200, cancelled: false });
    return result;
  } catch (error) {
    await meter.fail(error);
    throw error;
  }
}

