import { createHash, randomBytes } from "node:crypto";

/** Every Grove key starts with this, so leaked keys are easy to recognise (and to scan for). */
export const KEY_SECRET_PREFIX = "grove-sk-";

/** Characters of the secret kept for display: the fixed prefix and 4 of the 43 random ones. */
const DISPLAY_LENGTH = KEY_SECRET_PREFIX.length + 4;

/** A new secret and what is stored of it. */
export interface KeySecret {
  /** `grove-sk-` + 32 random bytes in base64url: shown once, never stored. */
  readonly secret: string;
  /** sha256 hex of the secret: what the store keeps and looks keys up by. */
  readonly hash: string;
  /** The first characters, for people to tell keys apart. */
  readonly prefix: string;
}

/** sha256 hex of a presented secret. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Generates a new key secret (256 random bits). */
export function generateSecret(): KeySecret {
  const secret = KEY_SECRET_PREFIX + randomBytes(32).toString("base64url");
  return { secret, hash: hashSecret(secret), prefix: secret.slice(0, DISPLAY_LENGTH) };
}

/** The bearer token of an `Authorization` header, or `undefined`. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match?.[1];
}
