import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * Paths pino replaces with `[Redacted]`: API keys in request headers (should a serializer or a
 * debug line ever log them) and key secrets in any logged object.
 */
export const REDACTED_PATHS = ["req.headers.authorization", "headers.authorization", "*.headers.authorization", "authorization", "secret", "*.secret"];

/** Creates Grove's JSON-lines logger on stderr (stdout is for results), or on `destination` (tests). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: undefined, redact: REDACTED_PATHS }, destination ?? pino.destination(2));
}
