import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { UpstreamError, UpstreamUnavailableError } from "../core/errors.js";
import type { UpstreamEngine } from "../engine/upstream-engine.js";
import { toErrorResponse } from "./error-table.js";
import { meterOf, type RequestMeter } from "./gateway-hooks.js";
import { clientGoneSignal } from "./generation.js";
import { upstreamDigest } from "../serving/upstream-catalog.js";
import type { UpstreamRouter } from "../serving/upstream-router.js";

type Kind = "chat" | "completions" | "embeddings";

/** The routes an upstream answers, and the path each is sent to under the upstream's `/v1`. */
const PROXIED: Readonly<Record<string, { kind: Kind; path: string }>> = {
  "/v1/chat/completions": { kind: "chat", path: "/chat/completions" },
  "/v1/completions": { kind: "completions", path: "/completions" },
  "/v1/embeddings": { kind: "embeddings", path: "/embeddings" },
};

/** Upstream statuses that mean "try the next step" (no byte has reached the client yet). */
const FAIL_OVER_STATUSES = new Set([502, 503, 504]);

/** Reserved completion tokens when a chat request sets no max_tokens (its real count is settled after). */
export const DEFAULT_UPSTREAM_MAX_TOKENS = 4096;

/** Largest upstream answer read whole (non-streaming). */
const MAX_ANSWER_BYTES = 64 << 20;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);
const count = (value: unknown): number | undefined => (typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined);

/** Tokens of text Grove cannot tokenize (the upstream's tokenizer is not here): about four bytes each. */
const approximateTokens = (text: string) => Math.ceil(Buffer.byteLength(text) / 4);

interface Reservation {
  /** An upper bound of the prompt's tokens: its UTF-8 bytes (a token is at least one byte of text or template). */
  readonly promptBytes: number;
  readonly maxCompletionTokens: number;
}

function reservationOf(kind: Kind, body: Json): Reservation {
  const input = kind === "chat" ? body.messages : kind === "completions" ? body.prompt : body.input;
  const promptBytes = Buffer.byteLength(JSON.stringify(input ?? ""));
  if (kind === "embeddings") return { promptBytes, maxCompletionTokens: 0 };
  const asked = count(body.max_completion_tokens) ?? count(body.max_tokens);
  const prompts = kind === "completions" && Array.isArray(body.prompt) && typeof body.prompt[0] !== "number" ? body.prompt.length : 1;
  const choices = count(body.n) ?? 1;
  return { promptBytes, maxCompletionTokens: (asked ?? (kind === "chat" ? DEFAULT_UPSTREAM_MAX_TOKENS : 16)) * Math.max(1, prompts) * Math.max(1, choices) };
}

/**
 * Puts the upstreams in front of the OpenAI routes: a request whose `model` is an upstream's
 * name is sent there (its fallbacks in turn when it is unhealthy, unreachable or answers
 * 502/503/504), metered like a local one (same scope check, reservation and usage row), and the
 * answer relayed (SSE passed through event by event). A local fallback hands the request back to
 * the route under the fallback's name. Runs as a preHandler, so the gateway has authenticated it.
 */
export function registerUpstreamProxy(app: FastifyInstance, router: UpstreamRouter): void {
  app.addHook("preHandler", async (request, reply) => {
    const target = request.method === "POST" ? PROXIED[request.routeOptions.url ?? ""] : undefined;
    if (target === undefined || !isObject(request.body) || typeof request.body.model !== "string") return;
    const steps = router.route(request.body.model);
    if (steps === undefined) return;
    const body = request.body;
    const requested = body.model as string;
    const meter = meterOf(request);
    meter.checkModel(requested);
    const reservation = reservationOf(target.kind, body);
    const signal = clientGoneSignal(reply);
    const failures: string[] = [];
    for (const step of steps) {
      if (step.kind === "local") {
        request.log.warn({ model: requested, fallback: step.name, failures }, "upstream unavailable: serving the local fallback");
        body.model = step.name;
        return;
      }
      const { engine } = step;
      if (!engine.healthy) {
        failures.push(`upstream '${engine.name}' is unhealthy (${engine.health.reason ?? "failed"})`);
        continue;
      }
      await meter.admit({
        model: requested,
        digest: upstreamDigest(engine.name),
        promptTokens: reservation.promptBytes,
        maxCompletionTokens: reservation.maxCompletionTokens,
      });
      const stream = body.stream === true;
      const forward = stream && target.kind !== "embeddings" ? { ...body, stream_options: { ...(isObject(body.stream_options) ? body.stream_options : {}), include_usage: true } } : body;
      let response: Response;
      try {
        response = await engine.send(target.path, forward, signal);
      } catch (error) {
        if (signal.aborted) return cancelled(reply, meter);
        if (error instanceof UpstreamUnavailableError) {
          request.log.warn({ upstream: engine.name, url: engine.url, err: error }, "upstream request failed");
          failures.push(error.message);
          continue;
        }
        await meter.fail(error);
        throw error;
      }
      if (FAIL_OVER_STATUSES.has(response.status)) {
        await response.body?.cancel().catch(() => undefined);
        failures.push(`upstream '${engine.name}' answered ${response.status}`);
        continue;
      }
      request.log.debug({ upstream: engine.name, status: response.status }, "proxied to upstream");
      const relay = { request, reply, meter, engine, requested, kind: target.kind, reservation, signal };
      if (stream && response.ok && (response.headers.get("content-type") ?? "").includes("text/event-stream")) {
        await relayStream(relay, response, isObject(body.stream_options) && body.stream_options.include_usage === true);
      } else {
        await relayAnswer(relay, response);
      }
      return reply;
    }
    const first = steps[0]!.kind === "upstream" ? (steps[0] as { engine: UpstreamEngine }).engine : undefined;
    const error = new UpstreamUnavailableError(
      first?.name ?? requested,
      `The model '${requested}' is served by upstream '${first?.name}' (${first?.url}), which cannot answer now: ${failures.join("; ")}`,
    );
    await meter.fail(error);
    throw error;
  });
}

interface Relay {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly meter: RequestMeter;
  readonly engine: UpstreamEngine;
  readonly requested: string;
  readonly kind: Kind;
  readonly reservation: Reservation;
  readonly signal: AbortSignal;
}

async function cancelled(reply: FastifyReply, meter: RequestMeter): Promise<FastifyReply> {
  await meter.finish({ promptTokens: 0, completionTokens: 0, status: 499, cancelled: true });
  return reply.code(499).send();
}

/** The text a choice carries, for counting when the upstream reports no usage. */
function choiceText(kind: Kind, choices: unknown): string {
  if (!Array.isArray(choices)) return "";
  let text = "";
  for (const choice of choices) {
    if (!isObject(choice)) continue;
    if (kind === "completions" && typeof choice.text === "string") text += choice.text;
    const message = isObject(choice.delta) ? choice.delta : isObject(choice.message) ? choice.message : undefined;
    if (message && typeof message.content === "string") text += message.content;
  }
  return text;
}

/** A whole (non-streaming) answer: relayed with the client's model name; usage from it, or counted. */
async function relayAnswer(relay: Relay, response: Response): Promise<void> {
  const { reply, meter, engine } = relay;
  let text: string;
  try {
    const length = Number(response.headers.get("content-length") ?? 0);
    if (length > MAX_ANSWER_BYTES) throw new UpstreamError(`Upstream '${engine.name}' answered ${length} bytes, over the limit`);
    text = await response.text();
  } catch (error) {
    if (relay.signal.aborted) {
      await cancelled(reply, meter);
      return;
    }
    const failure = error instanceof UpstreamError ? error : new UpstreamError(`Upstream '${engine.name}' (${engine.url}) broke off its answer: ${(error as Error).message}`, { cause: error });
    await meter.fail(failure);
    throw failure;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    await meter.finish({ promptTokens: 0, completionTokens: 0, status: response.status, cancelled: false });
    // The upstream's own error (a 4xx: bad parameter, context too long) is the client's to read.
    if (isObject(json) && isObject(json.error) && response.status < 500) {
      void reply.code(response.status).send(json);
      return;
    }
    throw new UpstreamError(`Upstream '${engine.name}' (${engine.url}) answered ${response.status}`, { status: response.status });
  }
  if (!isObject(json)) {
    const error = new UpstreamError(`Upstream '${engine.name}' (${engine.url}) answered something that is not a JSON object`);
    await meter.fail(error);
    throw error;
  }
  const usage = isObject(json.usage) ? json.usage : {};
  const promptTokens = count(usage.prompt_tokens) ?? Math.ceil(relay.reservation.promptBytes / 4);
  const completionTokens = relay.kind === "embeddings" ? 0 : (count(usage.completion_tokens) ?? approximateTokens(choiceText(relay.kind, json.choices)));
  await meter.finish({ promptTokens, completionTokens, status: 200, cancelled: false });
  void reply.code(200).send({ ...json, model: relay.requested });
}

/**
 * An SSE answer, passed through event by event: `model` set to the client's name, the usage
 * chunk (always asked of the upstream, for metering) dropped unless the client asked for it.
 * Without a usage chunk, completion tokens are the content chunks counted (one token each, as
 * llama.cpp's server and vLLM send them).
 */
async function relayStream(relay: Relay, response: Response, clientWantsUsage: boolean): Promise<void> {
  const { reply, meter, engine, request } = relay;
  meter.streaming = true;
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  raw.flushHeaders();
  const write = (text: string) => {
    if (!raw.destroyed && !raw.writableEnded) raw.write(text);
  };
  let usage: Json | undefined;
  let contentChunks = 0;
  let ttftMs: number | undefined;
  let upstreamError = false;
  const handle = (event: string) => {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
    if (data === "") return;
    let json: unknown;
    try {
      json = data === "[DONE]" ? undefined : JSON.parse(data);
    } catch {
      json = undefined;
    }
    if (!isObject(json)) {
      write(`data: ${data}\n\n`);
      return;
    }
    if (isObject(json.error)) upstreamError = true;
    if (isObject(json.usage)) usage = json.usage;
    const text = choiceText(relay.kind, json.choices);
    if (text.length > 0) {
      contentChunks++;
      ttftMs ??= reply.elapsedTime;
    }
    if (!clientWantsUsage && "usage" in json) {
      if (Array.isArray(json.choices) && json.choices.length === 0) return;
      delete json.usage;
    }
    write(`data: ${JSON.stringify({ ...json, model: relay.requested })}\n\n`);
  };
  let failure: unknown;
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let match = /\r?\n\r?\n/.exec(buffer); match; match = /\r?\n\r?\n/.exec(buffer)) {
        handle(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
    }
    if (buffer.trim() !== "") handle(buffer);
  } catch (error) {
    if (!relay.signal.aborted) failure = error;
  }
  const aborted = relay.signal.aborted && failure === undefined;
  if (failure !== undefined) {
    const error = new UpstreamError(`Upstream '${engine.name}' (${engine.url}) broke off the stream: ${(failure as Error).message}`, { cause: failure });
    request.log.warn({ err: error, upstream: engine.name }, "upstream stream failed");
    write(`data: ${JSON.stringify(toErrorResponse(error).body)}\n\n`);
  }
  // A cancelled stream is left open: the client is gone, or a shutdown ends it with its own event.
  if (!aborted && !raw.writableEnded) raw.end();
  const status = aborted ? 499 : failure !== undefined ? 502 : upstreamError ? 500 : 200;
  await meter.finish({
    promptTokens: count(usage?.prompt_tokens) ?? Math.ceil(relay.reservation.promptBytes / 4),
    completionTokens: count(usage?.completion_tokens) ?? contentChunks,
    ...(ttftMs === undefined ? {} : { ttftMs }),
    status,
    cancelled: aborted,
  });
}
