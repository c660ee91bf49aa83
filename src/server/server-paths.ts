import { realpath } from "node:fs/promises";
import { basename, extname, isAbsolute, relative, resolve, sep } from "node:path";
import { InvalidRequestError, NotFoundError, PathNotAllowedError } from "../core/errors.js";
import type { TrainingFiles } from "../forge/jobs/training-files.js";

/**
 * Turns a path an HTTP request names (fine-tune `data`, a migration task) into a file under the
 * directory the operator opened to requests (`--data-dir`), or refuses it. A relative path is taken
 * from that directory; an absolute one must lie inside it. The check is made on the words first
 * (so nothing outside is touched: no existence oracle), then again on the real path, so a symbolic
 * link inside cannot lead out. Messages quote only the request's own words.
 *
 * @param dataDirectory the configured directory (absolute), or undefined when none is: then every path is refused
 * @param param the request field, for the error
 * @throws PathNotAllowedError (403) outside the directory or with none configured; InvalidRequestError (400) for a malformed or missing path
 */
export async function resolveDataPath(dataDirectory: string | undefined, requested: string, param: string): Promise<string> {
  if (dataDirectory === undefined || dataDirectory === "") {
    throw new PathNotAllowedError(
      `${param} names a file on the server, and this server reads none for requests: upload it with POST /v1/files and give its id, ` +
        "or start Grove with --data-dir DIR (GROVE_DATA_DIR) to let requests name files inside DIR",
      { param },
    );
  }
  if (requested.includes("\0") || requested.length > 4096) throw new InvalidRequestError(`${param} is not a usable path`, { param });
  const root = resolve(dataDirectory);
  const lexical = resolve(root, requested);
  if (!isInside(root, lexical)) throw outside(param, requested);
  let real: string;
  let realRoot: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(lexical);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidRequestError(`${param}: ${JSON.stringify(requested)} ${code === "ENOENT" ? "does not exist" : `cannot be opened (${code ?? "error"})`} in the data directory`, { param, cause: error });
  }
  if (!isInside(realRoot, real)) throw outside(param, requested);
  return real;
}

function isInside(root: string, path: string): boolean {
  const rest = relative(root, path);
  return rest !== "" && !rest.startsWith(`..${sep}`) && rest !== ".." && !isAbsolute(rest);
}

function outside(param: string, requested: string): PathNotAllowedError {
  return new PathNotAllowedError(`${param}: ${JSON.stringify(requested.slice(0, 200))} lies outside the server's data directory (--data-dir); requests may name files inside it only`, { param });
}

/** Where a request's file may come from: uploads (`/v1/files`) and the operator's data directory. */
export interface RequestFileSources {
  readonly files?: TrainingFiles;
  /** `--data-dir`, absolute; undefined when none is configured. */
  readonly dataDirectory?: string;
}

/**
 * The file a request names in `param`: an upload's id (`file-…`, uploaded with `purpose`) or a
 * path inside the data directory (see {@link resolveDataPath}).
 * @returns the path to read and a name for it (the upload's file name, or the path's base name)
 * @throws NotFoundError for an unknown id, InvalidRequestError for an upload of another purpose, PathNotAllowedError
 */
export async function resolveRequestFile(sources: RequestFileSources, value: string, param: string, purpose: string): Promise<{ path: string; name: string }> {
  if (UPLOAD_ID.test(value)) {
    if (sources.files === undefined) throw new NotFoundError(`No file '${value}': this server keeps no uploads`, { param });
    const file = await sources.files.get(value).catch((error: unknown) => {
      throw error instanceof NotFoundError ? new NotFoundError(`No file '${value}'`, { param, cause: error }) : error;
    });
    if (file.purpose !== purpose) throw new InvalidRequestError(`${file.id} was uploaded with purpose '${file.purpose}', not '${purpose}'`, { param });
    return { path: sources.files.pathOf(file.id), name: basename(file.filename, extname(file.filename)) };
  }
  const path = await resolveDataPath(sources.dataDirectory, value, param);
  return { path, name: basename(path, extname(path)) };
}

const UPLOAD_ID = /^file-[0-9a-f]{24}$/;
