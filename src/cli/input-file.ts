import { stat } from "node:fs/promises";
import { InvalidRequestError } from "../core/errors.js";

/**
 * Refuses a path that is not an existing regular file with an InvalidRequestError naming
 * `param`, before any parsing.
 */
export async function checkInputFile(path: string, param: string): Promise<void> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidRequestError(
      error.code === "ENOENT" ? `No such file: ${path}` : `Cannot read ${path} (${error.code ?? error.message})`,
      { param, cause: error },
    );
  });
  if (!info.isFile()) throw new InvalidRequestError(`${path} is not a regular file`, { param });
}
