import { createReadStream } from "node:fs";
import { basename, extname } from "node:path";
import type { FastifyInstance } from "fastify";
import multipart from "@fastify/multipart";
import { GroveError, InvalidRequestError, PayloadTooLargeError } from "../../core/errors.js";
import { parseTask } from "../../bench/quality/tasks.js";
import type { TrainingFile } from "../../forge/jobs/training-files.js";
import { forgeScope, type ForgeServices } from "./forge.js";

/** A stored training file as OpenAI's `file` object. */
function toOpenAiFile(file: TrainingFile): Record<string, unknown> {
  return {
    id: file.id,
    object: "file",
    bytes: file.bytes,
    created_at: Math.floor(Date.parse(file.createdAt) / 1000),
    filename: file.filename,
    purpose: file.purpose,
    status: "processed",
    status_details: null,
    expires_at: null,
  };
}

/**
 * OpenAI's files API for fine-tuning data and task files: `POST /v1/files` (multipart,
 * `purpose=fine-tune` for training records or `purpose=evals` for a task file, JSONL of at most
 * `fileLimit` bytes, checked record by record: a bad line is a 400 naming it), `GET /v1/files`, `GET /v1/files/:id`, `GET /v1/files/:id/content`, `DELETE /v1/files/:id`.
 */
export function registerFileRoutes(app: FastifyInstance, forge: ForgeServices | undefined, fileLimit: number): void {
  forgeScope(app, forge, async (scope) => {
    await scope.register(multipart, { limits: { fileSize: fileLimit, files: 1, fields: 8, parts: 9, fieldSize: 1024 } });
    scope.post("/v1/files", async (request) => {
      let purpose: string | undefined;
      let upload: { filename: string; bytes: Buffer } | undefined;
      try {
        for await (const part of request.parts()) {
          if (part.type === "file") {
            const bytes = await part.toBuffer();
            if (part.fieldname === "file") upload = { filename: part.filename, bytes };
          } else if (part.fieldname === "purpose") {
            purpose = String(part.value);
          }
        }
      } catch (error) {
        if (error instanceof GroveError) throw error;
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 413) throw new PayloadTooLargeError(`The file is over the limit of ${fileLimit} bytes`, { cause: error });
        throw new InvalidRequestError(`Send the file as multipart/form-data with 'file' and 'purpose' parts (${(error as Error).message})`, { param: "file", cause: error });
      }
      if (purpose !== "fine-tune" && purpose !== "evals") {
        throw new InvalidRequestError(`purpose must be 'fine-tune' (training data) or 'evals' (a task file), got ${purpose === undefined ? "none" : `'${purpose}'`}`, { param: "purpose" });
      }
      if (upload === undefined) throw new InvalidRequestError("The upload has no 'file' part", { param: "file" });
      const { filename, bytes } = upload;
      try {
        const countTasks = (data: Buffer) => parseTask(data, filename, basename(filename, extname(filename))).docs.length;
        return toOpenAiFile(await forge!.files.add(filename, purpose, bytes, ...(purpose === "evals" ? [countTasks] : [])));
      } catch (error) {
        if (error instanceof InvalidRequestError) throw new InvalidRequestError(error.message, { param: "file", cause: error });
        throw error;
      }
    });
    scope.get("/v1/files", async () => {
      const files = await forge!.files.list();
      return { object: "list", data: files.map(toOpenAiFile), has_more: false, first_id: files[0]?.id ?? null, last_id: files.at(-1)?.id ?? null };
    });
    scope.get<{ Params: { id: string } }>("/v1/files/:id", async (request) => toOpenAiFile(await forge!.files.get(request.params.id)));
    scope.get<{ Params: { id: string } }>("/v1/files/:id/content", async (request, reply) => {
      const file = await forge!.files.get(request.params.id);
      return reply.type("application/jsonl").send(createReadStream(forge!.files.pathOf(file.id)));
    });
    scope.delete<{ Params: { id: string } }>("/v1/files/:id", async (request) => {
      await forge!.files.remove(request.params.id);
      return { id: request.params.id, object: "file", deleted: true };
    });
  });
}
