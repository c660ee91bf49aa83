import { createHash } from "node:crypto";

/** A model digest: `sha256:` and 64 lower-case hex digits. */
import type { Digest } from "./wire.js";

/** Declared with the wire contract, which the web app reads without Node types. */
export type { Digest };

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** True when `value` is a well-formed digest. Validate before building any path from one. */
export function isDigest(value: string): value is Digest {
  return DIGEST_PATTERN.test(value);
}

/** The digest of a buffer. */
export function digestOfBytes(bytes: Uint8Array): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
