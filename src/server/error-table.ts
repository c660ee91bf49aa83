import { ContextLengthError, GroveError, type GroveErrorCode } from "../core/errors.js";

/** The OpenAI-style error body every route returns (a context overflow adds llama-server's sizes). */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null; n_prompt_tokens?: number; n_ctx?: number };
}

/** Each Grove error code's HTTP status and OpenAI error `type`; the one place they are chosen. */
export const ERROR_TABLE: Record<GroveErrorCode, { status: number; type: string }> = {
  invalid_request: { status: 400, type: "invalid_request_error" },
  invalid_parameter: { status: 400, type: "invalid_request_error" },
  // llama-server's type (clients of local servers read it); the code stays OpenAI's.
  context_length_exceeded: { status: 400, type: "exceed_context_size_error" },
  model_not_found: { status: 404, type: "invalid_request_error" },
  model_not_local: { status: 503, type: "unavailable_error" },
  invalid_model_file: { status: 422, type: "invalid_request_error" },
  overloaded: { status: 503, type: "unavailable_error" },
  payload_too_large: { status: 413, type: "invalid_request_error" },
  config_invalid: { status: 500, type: "server_error" },
  engine_failure: { status: 500, type: "server_error" },
  aborted: { status: 499, type: "invalid_request_error" },
  internal: { status: 500, type: "server_error" },
  unauthorized: { status: 401, type: "authentication_error" },
  not_found: { status: 404, type: "invalid_request_error" },
  upstream_failure: { status: 502, type: "server_error" },
  upstream_unavailable: { status: 503, type: "unavailable_error" },
  digest_mismatch: { status: 502, type: "server_error" },
  conflict: { status: 409, type: "invalid_request_error" },
  invalid_api_key: { status: 401, type: "authentication_error" },
  permission_denied: { status: 403, type: "permission_error" },
  rate_limit_exceeded: { status: 429, type: "rate_limit_error" },
  insufficient_quota: { status: 429, type: "insufficient_quota" },
  host_not_allowed: { status: 403, type: "permission_error" },
  origin_not_allowed: { status: 403, type: "permission_error" },
  unsupported_media_type: { status: 415, type: "invalid_request_error" },
  path_not_allowed: { status: 403, type: "permission_error" },
  not_supported: { status: 501, type: "not_supported_error" },
};

/** Maps an error to a status and body. Unknown errors become a plain 500: the stack goes to the log only. */
export function toErrorResponse(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof GroveError) {
    const entry = ERROR_TABLE[error.code];
    return {
      status: entry.status,
      body: {
        error: {
          message: error.message,
          type: entry.type,
          param: error.param ?? null,
          code: error.code,
          ...(error instanceof ContextLengthError && error.sizes ? { n_prompt_tokens: error.sizes.promptTokens, n_ctx: error.sizes.contextSize } : {}),
        },
      },
    };
  }
  return {
    status: 500,
    body: { error: { message: "Internal server error", type: "server_error", param: null, code: "internal" } },
  };
}
