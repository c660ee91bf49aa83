import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ConflictError, InvalidRequestError, NotSupportedError } from "../../core/errors.js";
import { modelConfigFromFields } from "../../forge/modelfile/config-fork.js";
import { createFromModelfile } from "../../forge/modelfile/create-from-modelfile.js";
import { parseModelfile } from "../../forge/modelfile/modelfile.js";
import { parseHubRef } from "../../store/hub/hub-ref.js";
import { importPulledModel } from "../../store/hub/import-pulled.js";
import { pullModel } from "../../store/hub/pull-model.js";
import { NdjsonStream } from "../ndjson.js";
import { LIMITS, parseBody } from "../openai-schemas.js";
import type { OllamaServices } from "./ollama.js";

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);

/**
 * Ollama's `POST /api/create` body (`api.CreateRequest`): the current fields, and the older
 * `modelfile` text (with `name` for `model`). Values are bounded here and typed as Modelfile lines
 * are by `modelConfigFromFields`.
 */
export const ollamaCreateSchema = z.object({
  model: nullable(z.string().min(1).max(LIMITS.modelName)),
  name: nullable(z.string().min(1).max(LIMITS.modelName)),
  from: nullable(z.string().min(1).max(1024)),
  modelfile: nullable(z.string().max(4 * 1024 * 1024)),
  files: nullable(z.record(z.string(), z.string())),
  adapters: nullable(z.record(z.string(), z.string())),
  template: nullable(z.string().max(LIMITS.messageChars)),
  license: nullable(z.union([z.string().max(LIMITS.messageChars), z.array(z.string().max(LIMITS.messageChars)).max(16)])),
  system: nullable(z.string().max(LIMITS.messageChars)),
  parameters: nullable(z.record(z.string(), z.unknown())),
  messages: nullable(z.array(z.object({ role: z.string(), content: z.string().max(LIMITS.messageChars) })).max(256)),
  quantize: nullable(z.string().max(32)),
  stream: nullable(z.boolean()),
});

/**
 * `POST /api/create`: a config fork of a store model (`from`, or the FROM of a `modelfile`),
 * with its system prompt, parameters, messages, template and license, under `model` — the same
 * function as `grove create NAME -f Modelfile`. Status lines stream as NDJSON unless `stream` is
 * false. Blobs (`files`, `adapters`) and FROM a path name server files, which no request may:
 * they are refused, as is `quantize` (POST /api/forge/quantize makes quantized forks).
 */
export function registerOllamaCreateRoute(app: FastifyInstance, services: OllamaServices): void {
  app.post("/api/create", async (request, reply) => {
    const body = parseBody(ollamaCreateSchema, request.body);
    const name = body.model ?? body.name;
    if (name === undefined) throw new InvalidRequestError("model is required", { param: "model" });
    const { store, hub } = services;
    if (!store) throw new ConflictError("Creating a model needs the model store: start grove serve without --model FILE");
    if (body.quantize !== undefined) throw new NotSupportedError("quantize is not supported by /api/create here: make a quantized fork with POST /api/forge/quantize or grove quantize, then create from it", { param: "quantize" });
    if (Object.keys(body.files ?? {}).length > 0 || Object.keys(body.adapters ?? {}).length > 0) {
      throw new NotSupportedError("files and adapters name uploaded blobs, which Grove does not take over HTTP: import the GGUF (grove import, or grove import --base for a LoRA adapter) and create from its name", { param: body.files ? "files" : "adapters" });
    }
    const spec = body.modelfile === undefined ? undefined : parseModelfile(body.modelfile);
    if (spec !== undefined && spec.adapters.length > 0) throw new NotSupportedError(`Modelfile line ${spec.adapters[0]!.line}: ADAPTER names a server file, which a request cannot; import the adapter first`, { param: "modelfile" });
    const from = body.from ?? spec?.from;
    if (from === undefined) throw new InvalidRequestError("from is required: the name of the model to start from", { param: "from" });
    const fields = modelConfigFromFields({ system: body.system, template: body.template, license: body.license, parameters: body.parameters, messages: body.messages });
    const config = { ...spec?.config, ...fields, ...(spec?.config.parameters && fields.parameters ? { parameters: { ...spec.config.parameters, ...fields.parameters } } : {}) };
    const stream = body.stream === false ? undefined : new NdjsonStream(reply);
    try {
      stream?.send({ status: "parsing modelfile" });
      const result = await createFromModelfile(
        store,
        { from, ...(body.from === undefined && spec ? { fromLine: spec.fromLine } : {}), config, name },
        {
          ...(hub === undefined
            ? {}
            : {
                pull: async (ref: string) => {
                  const pulled = await pullModel({ ref: parseHubRef(ref), client: hub, partialDirectory: store.blobs.tempDirectory, isAlreadyStored: async (sha256) => (await store.model(`sha256:${sha256}`)) !== undefined });
                  return (await importPulledModel(store, pulled, undefined)).result.model.digest;
                },
              }),
          onStatus: (status) => stream?.send({ status }),
        },
      );
      stream?.send({ status: `using existing layer ${result.parents[0]!.parent}` });
      stream?.send({ status: `${result.created ? "creating new" : "using existing"} layer ${result.model.digest}` });
      if (!stream) return { status: "success" };
      stream.send({ status: "success" });
      stream.end();
    } catch (error) {
      if (!stream) throw error;
      request.log.info({ err: error }, "create failed");
      stream.fail(error);
    }
    return reply;
  });
}
