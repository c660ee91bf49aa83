import { pino, type Logger } from "pino";

export type { Logger };

/** Creates Grove's JSON-lines logger on stderr (stdout is for results). */
export function createLogger(level: string): Logger {
  return pino({ level, base: undefined, redact: ["req.headers.authorization"] }, pino.destination(2));
}
