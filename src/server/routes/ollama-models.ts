import type { FastifyInstance } from "fastify";
import type { Digest } from "../../core/digest.js";
import { ConflictError, GroveError, InvalidRequestError, ModelNotFoundError, NotFoundError } from "../../core/errors.js";
import type { ChatTemplateCapabilities } from "../../engine/chat-template-capabilities.js";
import type { LoadedModel } from "../../engine/engine.js";
import { modelConfigOf } from "../../core/model-config.js";
import { modelfileOf } from "../../forge/modelfile/config-fork.js";
import { formatParametersText } from "../../forge/modelfile/modelfile.js";
import { inspectGgufFile } from "../../gguf/gguf-inspect.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { chooseModelFile, type HubClient, type HubFile } from "../../store/hub/hub-client.js";
import { DEFAULT_REVISION, parseHubRef, type HubRef } from "../../store/hub/hub-ref.js";
import { importPulledModel } from "../../store/hub/import-pulled.js";
import { pullModel } from "../../store/hub/pull-model.js";
import { formatModelName, parseModelName } from "../../store/model-ref.js";
import type { ModelStore } from "../../store/model-store.js";
import { clientGoneSignal } from "../generation.js";
import type { CatalogEntry } from "../../serving/model-catalog.js";
import { NdjsonStream } from "../ndjson.js";
import { ollamaCopySchema, ollamaDeleteSchema, ollamaPullSchema, ollamaShowSchema } from "../ollama-schemas.js";
import { copyModelName, deleteModelName } from "../../store/model-names.js";
import { parseBody } from "../openai-schemas.js";
import type { OllamaServices } from "./ollama.js";

/**
 * The Ollama version `/api/version` reports. Clients gate features on it (structured outputs
 * need 0.5); Grove implements the API of this release for the routes it serves.
 */
export const OLLAMA_API_VERSION = "0.12.0";

/** Ollama's `expires_at` for a model kept until evicted for room (`keep_alive` negative, Grove's default). */
export const NEVER = "9999-12-31T23:59:59Z";

/** Ollama's hub syntax `hf.co/OWNER/REPO[:TAG]` (or `huggingface.co/…`). */
const HUB_NAME = /^(?:hf\.co|huggingface\.co)\/([^/:]+)\/([^/:]+)(?::([^/:]+))?$/i;

/**
 * The store name an Ollama-style name stands for: `hf.co/Acme/Tiny-GGUF:Q8_0` is what `/api/pull`
 * stores as `acme/tiny-gguf:q8_0`, so the name a client pulled is the name it chats with. Other
 * names pass unchanged.
 */
export function servedName(name: string): string {
  const match = HUB_NAME.exec(name);
  if (!match) return name;
  return `${match[1]}/${match[2]}:${match[3] ?? "latest"}`.toLowerCase();
}

/** Facts about a model file, as Ollama's listings show them. */
interface ModelFacts {
  size: number;
  architecture: string;
  parameterCount: number;
  quantization: string;
  modifiedAt: string;
  path: string;
  license?: string;
  chatTemplate?: string;
}

/** 7.6B, 494.03M, 1.2K: Ollama's `parameter_size`. */
function humanNumber(count: number): string {
  const units: [number, string][] = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
  for (const [scale, unit] of units) {
    if (count >= scale) return `${Number((count / scale).toFixed(scale >= 1e9 ? 1 : 2))}${unit}`;
  }
  return String(count);
}

/** Per server: model facts by digest (files never change under a digest), and pulls in flight. */
class OllamaModels {
  private readonly facts = new Map<string, Promise<ModelFacts>>();
  private readonly pulls = new Map<string, Promise<unknown>>();

  constructor(private readonly services: OllamaServices) {}

  /** Facts from the store's record when it has the model, else from the loaded file's header. */
  factsOf(digest: string, loaded?: LoadedModel): Promise<ModelFacts> {
    let facts = this.facts.get(digest);
    if (facts === undefined) {
      facts = this.readFacts(digest, loaded);
      this.facts.set(digest, facts);
      facts.catch(() => this.facts.delete(digest));
    }
    return facts;
  }

  private async readFacts(digest: string, loaded: LoadedModel | undefined): Promise<ModelFacts> {
    const { store } = this.services;
    const record = digest.startsWith("sha256:") ? await store?.model(digest as Digest) : undefined;
    if (store && record) {
      return {
        size: record.size,
        architecture: record.architecture,
        parameterCount: record.parameterCount,
        quantization: record.quantization,
        modifiedAt: record.createdAt,
        // A config fork's file is its weights' (ModelStore.weightsOf).
        path: store.blobs.pathOf(await store.weightsOf(record.digest)),
        ...(record.license === undefined ? {} : { license: record.license }),
        ...(record.chatTemplate === undefined ? {} : { chatTemplate: record.chatTemplate }),
      };
    }
    if (!loaded) throw new ModelNotFoundError(digest);
    const summary = await validateGgufFile(loaded.info.path);
    return {
      size: summary.fileSize,
      architecture: summary.architecture,
      parameterCount: summary.parameterCount,
      quantization: summary.fileType ?? "unknown",
      modifiedAt: new Date(loaded.info.loadedAt * 1000).toISOString(),
      path: loaded.info.path,
      ...(summary.chatTemplate === undefined ? {} : { chatTemplate: summary.chatTemplate }),
    };
  }

  /** The first name of a model's first parent, as Ollama's `parent_model`. */
  async parentOf(digest: string): Promise<string> {
    const { store } = this.services;
    if (!store || !digest.startsWith("sha256:")) return "";
    const edge = (await store.parentsOf(digest as Digest))[0];
    if (!edge) return "";
    return (await store.namesOf(edge.parent))[0] ?? edge.parent;
  }

  async details(digest: string, loaded?: LoadedModel) {
    const facts = await this.factsOf(digest, loaded);
    return {
      facts,
      details: {
        parent_model: await this.parentOf(digest),
        format: "gguf",
        family: facts.architecture,
        families: [facts.architecture],
        parameter_size: humanNumber(facts.parameterCount),
        quantization_level: facts.quantization,
      },
    };
  }

  /** One `/api/tags` entry. */
  async describe(entry: CatalogEntry) {
    const { facts, details } = await this.details(entry.digest, entry.loaded);
    return { name: entry.id, model: entry.id, modified_at: facts.modifiedAt, size: facts.size, digest: hex(entry.digest), details };
  }

  /** Runs pulls of one hub file one after another, so two never write the same partial file. */
  exclusive<T>(key: string, run: () => Promise<T>): Promise<T> {
    const previous = this.pulls.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.pulls.set(key, next);
    void next.catch(() => undefined).then(() => {
      if (this.pulls.get(key) === next) this.pulls.delete(key);
    });
    return next;
  }
}

/** A digest as Ollama prints it: hex without the `sha256:` scheme. */
const hex = (digest: string) => (digest.startsWith("sha256:") ? digest.slice(7) : digest);

/** `GET /api/tags`, `POST /api/show`, `GET /api/ps`, `GET /api/version`, `POST /api/pull`, `POST /api/copy`, `DELETE /api/delete`. */
export function registerOllamaModelRoutes(app: FastifyInstance, services: OllamaServices): void {
  const models = new OllamaModels(services);
  const { catalog, engine } = services;

  app.get("/api/version", async () => ({ version: OLLAMA_API_VERSION }));

  app.get("/api/tags", async () => {
    const entries = await catalog.list();
    return { models: await Promise.all(entries.filter((entry) => entry.digest !== "").map((entry) => models.describe(entry))) };
  });

  // Ollama's `size` is the memory a loaded model takes: the pool's estimate (weights, KV cache,
  // compute buffers), else the file's size; `expires_at` comes from its keep-alive.
  app.get("/api/ps", async () => {
    const entries = await catalog.list();
    const pooled = new Map((services.pool?.report().models ?? []).map((report) => [report.id, report]));
    const loaded = await Promise.all(
      engine.models.map(async (model) => {
        const report = pooled.get(model.info.id);
        const name = report?.name ?? entries.find((entry) => entry.digest === model.info.digest && entry.details?.["alias"] === undefined)?.id ?? model.info.id;
        const { facts, details } = await models.details(model.info.digest, model);
        return {
          name,
          model: name,
          size: report === undefined ? facts.size : report.estimateBytes,
          digest: hex(model.info.digest),
          details,
          expires_at: report?.expiresAt ?? NEVER,
          size_vram: 0,
          context_length: model.info.contextSize,
        };
      }),
    );
    // As Ollama: the longest time left first.
    return { models: loaded.sort((a, b) => b.expires_at.localeCompare(a.expires_at)) };
  });

  // Ollama's `/api/copy`: 200 and no body; an unknown source 404; a bad name 400; Grove refuses a
  // destination naming another model (409) where Ollama would overwrite it.
  app.post("/api/copy", async (request, reply) => {
    const body = parseBody(ollamaCopySchema, request.body);
    await copyModelName(requireStore(services), servedName(body.source), servedName(body.destination));
    return reply.code(200).send();
  });

  // Ollama's `/api/delete`: one name; the model goes with its last name, unless forks depend on it
  // (409). A model that goes is unloaded too.
  app.delete("/api/delete", async (request, reply) => {
    const body = parseBody(ollamaDeleteSchema, request.body ?? {});
    const name = body.model ?? body.name;
    if (name === undefined) throw new InvalidRequestError("model is required", { param: "model" });
    const result = await deleteModelName(requireStore(services), servedName(name));
    if (result.removed !== undefined) await services.pool?.expire(result.digest);
    return reply.code(200).send();
  });

  app.post("/api/show", async (request) => {
    const body = parseBody(ollamaShowSchema, request.body);
    const name = body.model ?? body.name;
    if (name === undefined) throw new InvalidRequestError("model is required", { param: "model" });
    const entry = (await catalog.list()).find((candidate) => candidate.id === servedName(name));
    // A digest, prefix or a name only the catalog resolves: resolving loads it.
    const loaded = entry?.loaded ?? (entry === undefined ? await catalog.get(servedName(name)) : undefined);
    const digest = entry?.digest ?? loaded!.info.digest;
    const { facts, details } = await models.details(digest, loaded);
    const inspection = await inspectGgufFile(facts.path, { arrayItems: body.verbose ? Number.MAX_SAFE_INTEGER : 0 });
    const modelInfo: Record<string, unknown> = { "general.parameter_count": facts.parameterCount };
    for (const item of inspection.metadata) {
      modelInfo[item.key] = item.length === undefined ? (item.value ?? null) : body.verbose ? (item.items ?? []) : null;
    }
    // A config fork's defaults (grove create -f Modelfile, /api/create), as Ollama shows a created model.
    const record = services.store && digest.startsWith("sha256:") ? await services.store.model(digest as Digest) : undefined;
    const config = record === undefined ? undefined : modelConfigOf(record.card);
    return {
      license: config?.license?.join("\n") ?? facts.license ?? "",
      modelfile: services.store && record ? await modelfileOf(services.store, record.digest) : `# Modelfile generated by Grove\nFROM ${name}\n`,
      parameters: formatParametersText(config?.parameters ?? {}),
      // The template in use (a --chat-template replaces the file's) once the model is loaded.
      template: config?.template ?? loaded?.vocabulary().chatTemplate ?? facts.chatTemplate ?? "",
      ...(config?.system === undefined ? {} : { system: config.system }),
      ...(config?.messages === undefined ? {} : { messages: config.messages }),
      details,
      model_info: modelInfo,
      capabilities: ["completion", "embedding", "tools", ...(loaded?.vocabulary().fim ? ["insert"] : [])],
      ...(loaded === undefined ? {} : { template_notes: templateNotes(loaded.vocabulary().chatTemplateCapabilities) }),
      modified_at: facts.modifiedAt,
    };
  });

  app.post("/api/pull", async (request, reply) => {
    const body = parseBody(ollamaPullSchema, request.body);
    const name = body.model ?? body.name;
    if (name === undefined) throw new InvalidRequestError("model is required", { param: "model" });
    const { store, hub } = services;
    if (!store) throw new ConflictError("Pulling needs the model store: start grove serve without --model FILE");
    const target = await pullTarget(store, name);
    if (target !== undefined && !hub) throw new ConflictError("Pulling needs a hub endpoint (HF_ENDPOINT)");
    const signal = clientGoneSignal(reply);
    const stream = body.stream === false ? undefined : new NdjsonStream(reply);
    const status = (line: object) => stream?.send(line);
    try {
      status({ status: "pulling manifest" });
      if (target !== undefined) {
        await pullFromHub(store, hub!, target, models, status, signal);
        status({ status: "verifying sha256 digest" });
        status({ status: "writing manifest" });
      }
      if (!stream) return { status: "success" };
      status({ status: "success" });
      stream.end();
    } catch (error) {
      if (!stream) throw error;
      request.log.info({ err: error }, "pull failed");
      stream.fail(error);
    }
    return reply;
  });
}

/** The store, for the routes that change it; a server of one `--model FILE` has none (409). */
function requireStore(services: OllamaServices): ModelStore {
  if (!services.store) throw new ConflictError("This server serves one --model file and has no model store: start grove serve without --model FILE");
  return services.store;
}

/** What to pull: a hub file and the store name it gets. */
interface PullTarget {
  ref: HubRef;
  /** `hf.co/…:TAG` picks the GGUF file whose name holds TAG (case-insensitive), as Ollama does. */
  quantization?: string;
  name: string | undefined;
}

/**
 * `hf:OWNER/REPO[/FILE][@REV]` (Grove's syntax) and `hf.co/OWNER/REPO[:TAG]` (Ollama's) pull
 * from the hub into the name `owner/repo:tag`; a name the store already has needs no pull
 * (undefined); anything else is unknown here, as Grove has no Ollama registry.
 */
async function pullTarget(store: ModelStore, name: string): Promise<PullTarget | undefined> {
  const storeName = (text: string) => {
    try {
      return formatModelName(parseModelName(text.toLowerCase()));
    } catch {
      return undefined;
    }
  };
  const match = HUB_NAME.exec(name);
  if (match) {
    const ref = parseHubRef(`hf:${match[1]}/${match[2]}`);
    return { ref, ...(match[3] === undefined ? {} : { quantization: match[3] }), name: storeName(servedName(name)) };
  }
  if (name.startsWith("hf:")) {
    const ref = parseHubRef(name);
    return { ref, name: storeName(`${ref.owner}/${ref.name}`) };
  }
  try {
    await store.resolve(name);
    return undefined;
  } catch (error) {
    if (!(error instanceof GroveError)) throw error;
    throw new NotFoundError(
      `The model '${name}' is not in the store, and Grove pulls only from a Hugging Face-style hub: ` +
        "name it hf.co/OWNER/REPO[:QUANT] or hf:OWNER/REPO[/FILE.gguf][@REVISION]",
      { cause: error },
    );
  }
}

/** Chooses the file (by quantization tag when given), downloads it with progress lines, imports it. */
async function pullFromHub(
  store: ModelStore,
  hub: HubClient,
  target: PullTarget,
  models: OllamaModels,
  status: (line: object) => void,
  signal: AbortSignal,
): Promise<void> {
  const { ref } = target;
  const listing = await hub.listFiles(ref.repo, ref.revision);
  let file: HubFile;
  if (target.quantization !== undefined) {
    const wanted = target.quantization.toLowerCase();
    const matches = listing.files.filter((entry) => entry.path.toLowerCase().endsWith(".gguf") && entry.path.toLowerCase().includes(wanted));
    if (matches.length !== 1) {
      const problem = matches.length === 0 ? "no GGUF file" : `${matches.length} GGUF files`;
      throw new NotFoundError(`${ref.repo} has ${problem} matching '${target.quantization}': ${listing.files.map((entry) => entry.path).join(", ")}`);
    }
    file = matches[0]!;
  } else {
    file = chooseModelFile(listing, ref.file, `${ref.repo}@${ref.revision}`);
  }
  const layer = file.sha256 === undefined ? {} : { digest: `sha256:${file.sha256}` };
  const label = `pulling ${file.sha256?.slice(0, 12) ?? file.path}`;
  let lastSent = 0;
  await models.exclusive(`${ref.repo}/${file.path}@${ref.revision}`, async () => {
    const pulled = await pullModel({
      ref: { ...ref, file: file.path, revision: ref.revision || DEFAULT_REVISION },
      client: hub,
      partialDirectory: store.blobs.tempDirectory,
      isAlreadyStored: async (sha256) => (await store.model(`sha256:${sha256}`)) !== undefined,
      onProgress: (received, total) => {
        const now = Date.now();
        if (received !== total && now - lastSent < 200) return;
        lastSent = now;
        status({ status: label, ...layer, total: total ?? received, completed: received });
      },
      signal,
    });
    if (pulled.alreadyStored) status({ status: label, ...layer, total: pulled.size ?? 0, completed: pulled.size ?? 0 });
    await importPulledModel(store, pulled, target.name);
  });
}

/** What Grove changes in a conversation for the template in use (llama.cpp's adjustments), in words. */
function templateNotes(caps: ChatTemplateCapabilities): string[] {
  const notes: string[] = [];
  if (!caps.systemRole) notes.push("the template does not read system messages: their text is joined to the first user message");
  if (!caps.tools) notes.push("the template does not read tools: offered tools are described in the system message, calls read as JSON (the generic format)");
  return notes;
}
