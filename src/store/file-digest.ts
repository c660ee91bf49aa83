import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Digest } from "../core/digest.js";

/** Streams a file through SHA-256 and returns its digest. */
export async function digestOfFile(path: string): Promise<Digest> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}
