/**
 * Grove's error hierarchy. Every error carries a stable machine `code`; callers branch on
 * `instanceof` or `code`, never on message text. The HTTP layer maps codes to statuses in
 * one table (server/error-table.ts); the CLI prints the message and cause chain.
 */
export type GroveErrorCode =
  | "invalid_request"
  | "invalid_parameter"
  | "context_length_exceeded"
  | "model_not_found"
  | "model_not_local"
  | "invalid_model_file"
  | "overloaded"
  | "payload_too_large"
  | "config_invalid"
  | "engine_failure"
  | "aborted"
  | "unauthorized"
  | "not_found"
  | "upstream_failure"
  | "upstream_unavailable"
  | "digest_mismatch"
  | "conflict"
  | "invalid_api_key"
  | "permission_denied"
  | "rate_limit_exceeded"
  | "insufficient_quota"
  | "host_not_allowed"
  | "origin_not_allowed"
  | "unsupported_media_type"
  | "path_not_allowed"
  | "not_supported"
  | "internal";

export interface GroveErrorOptions {
  /** The underlying error, kept for the log and `--verbose`. */
  cause?: unknown;
  /** The request parameter or flag at fault, if one is. */
  param?: string;
}

/** Base class of every error Grove raises on purpose. */
export class GroveError extends Error {
  readonly code: GroveErrorCode;
  readonly param: string | undefined;

  constructor(code: GroveErrorCode, message: string, options: GroveErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.param = options.param;
  }
}

/** A request (HTTP body, CLI flag) is malformed or out of bounds. */
export class InvalidRequestError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super(options.param ? "invalid_parameter" : "invalid_request", message, options);
  }
}

/** Prompt plus requested output does not fit in the model's context. */
export class ContextLengthError extends GroveError {
  /** The prompt's tokens and the context's size, where known (llama-server's `n_prompt_tokens`, `n_ctx`). */
  readonly sizes: { readonly promptTokens: number; readonly contextSize: number } | undefined;

  constructor(message: string, options: GroveErrorOptions & { sizes?: { promptTokens: number; contextSize: number } } = {}) {
    super("context_length_exceeded", message, options);
    this.sizes = options.sizes;
  }
}

/** A model name or digest that the service does not know. */
export class ModelNotFoundError extends GroveError {
  constructor(model: string, options: GroveErrorOptions = {}) {
    super("model_not_found", `The model '${model}' does not exist or is not served here`, {
      param: "model",
      ...options,
    });
  }
}

/**
 * A model the shared registry (`--database`) knows but whose file this replica does not hold:
 * it was imported or pulled on another replica. Import or pull it here to serve it.
 */
export class ModelNotLocalError extends GroveError {
  /** The model's digest. */
  readonly digest: string;

  constructor(model: string, digest: string, options: GroveErrorOptions = {}) {
    super(
      "model_not_local",
      `The model '${model}' (${digest}) is in the registry but its file is not on this machine (another replica sharing the registry imported it, or the blob was lost); import or pull it on this machine (grove import FILE, or grove pull) to serve it here`,
      { param: "model", ...options },
    );
    this.digest = digest;
  }
}

/** A GGUF file that Grove refuses to hand to llama.cpp. */
export class InvalidModelFileError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("invalid_model_file", message, options);
  }
}

/** Every slot is busy and the wait queue is full. */
export class OverloadedError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("overloaded", message, options);
  }
}

/** A request body over the configured limit. */
export class PayloadTooLargeError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("payload_too_large", message, options);
  }
}

/** A configuration value (file, GROVE_* variable or flag) is invalid. */
export class ConfigError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("config_invalid", message, options);
  }
}

/** The inference engine failed underneath a request. */
export class EngineError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("engine_failure", message, options);
  }
}

/** The caller cancelled the operation. */
export class AbortedError extends GroveError {
  constructor(message = "The operation was cancelled", options: GroveErrorOptions = {}) {
    super("aborted", message, options);
  }
}

/** A request without a valid API key. */
export class UnauthorizedError extends GroveError {
  constructor(message = "Missing or invalid API key: send 'Authorization: Bearer <key>'", options: GroveErrorOptions = {}) {
    super("unauthorized", message, options);
  }
}

/** A missing, unknown or malformed API key (OpenAI's `invalid_api_key`); the message never echoes the key. */
export class InvalidApiKeyError extends GroveError {
  constructor(message = "Missing or invalid API key: send 'Authorization: Bearer <key>'", options: GroveErrorOptions = {}) {
    super("invalid_api_key", message, options);
  }
}

/** A valid key that may not do this: a model outside its scope, a revoked or expired key, an admin route. */
export class PermissionDeniedError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("permission_denied", message, options);
  }
}

/**
 * A key over one of its limits: requests or tokens per minute, concurrent requests
 * (`rate_limit_exceeded`), or its budget for the period (`insufficient_quota`). Both are 429;
 * `retryAfterSeconds` becomes the `Retry-After` header.
 */
export class RateLimitError extends GroveError {
  readonly retryAfterSeconds: number;

  constructor(message: string, options: GroveErrorOptions & { retryAfterSeconds: number; quota?: boolean }) {
    super(options.quota ? "insufficient_quota" : "rate_limit_exceeded", message, options);
    this.retryAfterSeconds = Math.max(1, Math.ceil(options.retryAfterSeconds));
  }
}

/** A route or resource that does not exist. */
export class NotFoundError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("not_found", message, options);
  }
}

/** A remote service (the model hub, a CDN it redirects to) failed or answered something unusable. */
export class UpstreamError extends GroveError {
  /** The HTTP status the remote answered, or `undefined` when no answer came (network error, stall). */
  readonly status: number | undefined;

  constructor(message: string, options: GroveErrorOptions & { status?: number } = {}) {
    super("upstream_failure", message, options);
    this.status = options.status;
  }
}

/** An upstream engine (`grove upstream add`) cannot be reached or is marked unhealthy, and no fallback could answer. */
export class UpstreamUnavailableError extends GroveError {
  /** The upstream's name. */
  readonly upstream: string;

  constructor(upstream: string, message: string, options: GroveErrorOptions = {}) {
    super("upstream_unavailable", message, options);
    this.upstream = upstream;
  }
}

/** Bytes whose sha256 or size differs from what their source declared. */
export class DigestMismatchError extends GroveError {
  /** The declared value (a sha256 in hex, or a size in bytes). */
  readonly expected: string;
  /** The value the bytes actually have. */
  readonly actual: string;

  constructor(message: string, expected: string, actual: string, options: GroveErrorOptions = {}) {
    super("digest_mismatch", message, options);
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A reference (digest prefix) that matches more than one model. `candidates` holds the digests
 * it matches (possibly only the first few), so callers can ask for a longer prefix.
 */
export class AmbiguousModelError extends InvalidRequestError {
  /** Digests the reference matched. */
  readonly candidates: readonly string[];

  constructor(message: string, candidates: readonly string[], options: GroveErrorOptions = {}) {
    super(message, { param: "model", ...options });
    this.candidates = candidates;
  }
}

/**
 * A request carries image (or audio) input. Grove's models read text only (it loads no multimodal
 * projector), so the input is refused by name instead of being dropped, as llama-server does for a
 * model without its `--mmproj` (there with a 500; the client's input is at fault, so 400 here).
 */
export class MediaInputError extends InvalidRequestError {
  constructor(kind: "image" | "audio" | "media", options: GroveErrorOptions = {}) {
    super(`${kind[0]!.toUpperCase()}${kind.slice(1)} input is not supported: this model has no multimodal projector (Grove serves text-only models)`, options);
  }
}

/** The request is valid but the current state forbids it (removing a model that has forks, ...). */
export class ConflictError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("conflict", message, options);
  }
}

/** A request whose `Host` header this server does not answer to (DNS rebinding): see `--allowed-hosts`. */
export class ForbiddenHostError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("host_not_allowed", message, options);
  }
}

/** A cross-site browser request (an `Origin` that is neither the server's own nor allowed): see `--cors-origins`. */
export class ForbiddenOriginError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("origin_not_allowed", message, options);
  }
}

/** A body sent with a content type the route does not take (a JSON route given a form or plain text). */
export class UnsupportedMediaTypeError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("unsupported_media_type", message, options);
  }
}

/** A request names a server path outside the directory the operator opened to requests (`--data-dir`), or names one when none is open. */
export class PathNotAllowedError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("path_not_allowed", message, options);
  }
}

/** A feature this server or this model does not offer (an endpoint left off, a model without fill-in-the-middle tokens). */
export class NotSupportedError extends GroveError {
  constructor(message: string, options: GroveErrorOptions = {}) {
    super("not_supported", message, options);
  }
}

/** Formats an error and its cause chain, one line each, for humans (CLI `--verbose`). */
export function describeErrorChain(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    lines.push(current instanceof Error ? `${depth === 0 ? "" : "caused by: "}${current.message}` : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join("\n");
}
