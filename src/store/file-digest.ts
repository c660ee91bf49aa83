import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Digest } from "../core/digest.js";

/** Streams a file through SHA-256 and returns its digest; `onProgress` hears the bytes hashed so far. */
export async function digestOfFile(path: string, onProgress?: (doneBytes: number) => void): Promise<Digest> {
  const hash = createHash("sha256");
  let done = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    onProgress?.(done);
  }
  return `sha256:${hash.digest("hex")}`;
}
