import { parseArgs } from "node:util";
import { InvalidRequestError } from "../core/errors.js";

/** The soak's settings, validated. */
export interface SoakArguments {
  /** Requests to send in all (completed, aborted and failed ones all count). @default 100000 */
  readonly requests: number;
  /** Streaming clients sending at once. @default 64 */
  readonly clients: number;
  /** Share of requests the client abandons (closes the connection) at a random time, 0–1. @default 0.8 */
  readonly abortShare: number;
  /** Report the server's resident size at rest after every this many requests. @default 10000 */
  readonly reportEvery: number;
  /**
   * After the last request of an interval ends and the server shows no busy slot, wait this long
   * before reading its resident size: V8 shrinks its heap some seconds after allocation stops
   * (its memory reducer), so an earlier read counts garbage not yet collected. @default 10000
   */
  readonly settleMs: number;
  /** `max_tokens` of each request: short, so a request is quick. @default 8 */
  readonly maxTokens: number;
  /** The server's `--parallel`. @default 4 */
  readonly parallel: number;
  /** The server's `--threads`; 0 leaves Grove's default. @default 0 */
  readonly threads: number;
  /** A GGUF file or store reference for `--model`; undefined serves the embedded default, as `npm start` does. */
  readonly model: string | undefined;
  /**
   * Folder for V8 heap snapshots of the server, one at each report (the server runs with
   * `--heapsnapshot-signal=SIGUSR2`); compare two in Chrome DevTools' Memory tab. Undefined: none.
   */
  readonly heapSnapshots: string | undefined;
  /** Print the series as JSON at the end instead of a markdown table. @default false */
  readonly json: boolean;
  /** Print usage and exit. @default false */
  readonly help: boolean;
}

/** The usage text of `npm run soak -- --help`. */
export const SOAK_USAGE = `Usage: npm run soak -- [options]

Starts \`grove serve\` as a child process (fresh temporary home, port 0) and drives streaming
chat requests at it from many clients, a share of which disconnect at random times. Every
--report-every requests it stops sending, waits until the server is at rest (no request in
flight, no slot busy) and reports the server's resident size (VmRSS) as it stands and after
a full garbage collection of its main thread, and the errors seen.

Options:
  --requests N        requests in all (default 100000)
  --clients N         streaming clients at once (default 64)
  --abort-share X     share of requests abandoned at a random time, 0-1 (default 0.8)
  --report-every N    report the resident size at rest every N requests (default 10000)
  --settle-ms N       wait this long at rest before reading the size (default 10000)
  --max-tokens N      max_tokens per request (default 8)
  --parallel N        the server's --parallel (default 4)
  --threads N         the server's --threads (default: Grove's own)
  --model FILE|REF    serve this model (default: the embedded default, as npm start does)
  --heap-snapshots DIR  write a heap snapshot of the server into DIR at each report
  --json              print the series as JSON
  --help              this text
`;

function integer(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidRequestError(`${flag} must be a whole number from ${min} to ${max}; got "${text}"`, { param: flag });
  }
  return value;
}

/**
 * Parses `npm run soak` arguments (argv without `node` and the script).
 * @throws InvalidRequestError naming the flag, for an unknown flag or a value out of range
 */
export function parseSoakArguments(argv: readonly string[]): SoakArguments {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        requests: { type: "string" },
        clients: { type: "string" },
        "abort-share": { type: "string" },
        "report-every": { type: "string" },
        "max-tokens": { type: "string" },
        "settle-ms": { type: "string" },
        parallel: { type: "string" },
        threads: { type: "string" },
        model: { type: "string" },
        "heap-snapshots": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean" },
        verbose: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw new InvalidRequestError(`${error instanceof Error ? error.message : String(error)}\n\n${SOAK_USAGE}`, { cause: error });
  }
  const requests = integer("--requests", values.requests, 100_000, 1, 100_000_000);
  const abortText = values["abort-share"];
  const abortShare = abortText === undefined ? 0.8 : Number(abortText);
  if (abortText !== undefined && (abortText.trim() === "" || !Number.isFinite(abortShare) || abortShare < 0 || abortShare > 1)) {
    throw new InvalidRequestError(`--abort-share must be a number from 0 to 1; got "${abortText}"`, { param: "--abort-share" });
  }
  if (values.model !== undefined && values.model.trim() === "") throw new InvalidRequestError("--model is empty", { param: "--model" });
  if (values["heap-snapshots"] !== undefined && values["heap-snapshots"].trim() === "") {
    throw new InvalidRequestError("--heap-snapshots is empty", { param: "--heap-snapshots" });
  }
  return {
    requests,
    clients: integer("--clients", values.clients, 64, 1, 4096),
    abortShare,
    reportEvery: integer("--report-every", values["report-every"], Math.min(10_000, requests), 1, requests),
    settleMs: integer("--settle-ms", values["settle-ms"], 10_000, 0, 600_000),
    maxTokens: integer("--max-tokens", values["max-tokens"], 8, 1, 4096),
    parallel: integer("--parallel", values.parallel, 4, 1, 256),
    threads: integer("--threads", values.threads, 0, 0, 1024),
    model: values.model,
    heapSnapshots: values["heap-snapshots"],
    json: values.json ?? false,
    help: values.help ?? false,
  };
}
