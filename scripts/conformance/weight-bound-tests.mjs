// Tests of llama.cpp's server suite (the files run.mjs runs by default, and the slow ones) that no
// generated model can pass, read from their assertions: they check text the suite's own weights
// write, token counts of the stories models' 512-token vocabulary, or need a model of another
// kind. A pass on a generated model is chance (a long random text that happens to hold "small").
// An entry without [params] covers every parametrisation.

/** @type {readonly [test: string, needs: string][]} */
export const WEIGHT_BOUND_TESTS = Object.freeze([
  ["test_basic::test_load_split_model", "weights: `match_regex(\"(little|girl)+\", content)` on stories15M's text, loaded from a 3-file split GGUF"],
  ["test_completion::test_completion", "vocabulary + weights: `timings.prompt_n == 18` / `46` (stories260K's 512-token vocabulary), `match_regex(\"(going|bed)+\")`…"],
  ["test_completion::test_completion_stream", "vocabulary + weights: `prompt_n == 18` / `46`, the content regex"],
  ["test_completion::test_completion_with_openai_library", "weights: `match_regex(\"(going|bed)+\", text)` (and the openai package)"],
  ["test_completion::test_completion_stream_with_openai_library", "weights: `match_regex(\"(going|bed)+\", text)` (and the openai package)"],
  ["test_completion::test_completion_stream_with_openai_library_stops", "weights: Phi-3.5-mini writes \"Sure, here's one for\" (slow)"],
  ["test_completion::test_nocache_long_input_prompt", "vocabulary: expects 400 because 32 × \"I believe the meaning of life is\" exceeds 256 tokens in stories260K's vocabulary (224 in Llama's)"],
  ["test_completion::test_completion_prompt_cache", "vocabulary: `prompt_n + cache_n == (40 + r) * 5 + 2`, the token count of \" Hello r\" × (40 + r) in stories260K's vocabulary"],
  ["test_chat_completion::test_chat_completion", "vocabulary + weights: `usage.prompt_tokens == n_prompt` (stories260K's vocabulary), `match_regex(re_content, content)`"],
  ["test_chat_completion::test_chat_completion_cached_tokens", "vocabulary: `prompt_tokens == n_prompt`, `cached_tokens == n_cache` in stories260K's vocabulary"],
  ["test_chat_completion::test_chat_completion_stream", "vocabulary + weights: the content regex and `prompt_tokens == n_prompt`"],
  ["test_chat_completion::test_chat_completion_with_openai_library", "weights: `match_regex(\"(Suddenly)+\", content)` (and the openai package)"],
  ["test_chat_completion::test_return_progress[64-4-False]", "vocabulary: `total_batch_count == 4`, the prompt's length in stories260K's vocabulary over n_batch 64"],
  ["test_ctx_shift::test_ctx_shift_enabled", "vocabulary: `prompt_n == 226` for SHORT_TEXT in stories260K's vocabulary"],
  ["test_ctx_shift::test_ctx_shift_disabled_short_prompt[-1-248-True]", "vocabulary: \"8 tokens prompt + 248 tokens generated\" (\"Hi how are you\" in stories260K's vocabulary)"],
  ["test_ctx_shift::test_ctx_shift_disabled_long_prompt", "vocabulary: expects an error because LONG_TEXT exceeds 256 tokens in stories260K's vocabulary"],
  ["test_embedding::test_embedding_error_prompt_too_long", "model: `\"too large\" in message`, BERT's non-causal attention needing the whole input in one ubatch (a Llama substitute reports the context size)"],
  ["test_infill::test_infill_without_input_extra", "weights: `match_regex(\"(Ann|small|shiny|Daddy|Jimmy)+\", content)` on stories260K-infill's text"],
  ["test_infill::test_infill_with_input_extra", "weights: `match_regex(\"(Dad|excited|park|Jimmy)+\", content)`"],
  ["test_infill::test_with_qwen_model", "weights: Qwen2.5-Coder-1.5B's exact completion (slow)"],
  ["test_security::test_local_media_file", "model: tinygemma3 with its multimodal projector reads the image"],
  ["test_compat_anthropic::test_anthropic_vision_base64_with_multimodal_model", "model + network: tinygemma3 with its projector, and an image downloaded from huggingface.co"],
  ["test_compat_anthropic::test_anthropic_thinking_with_reasoning_model", "weights: a reasoning model's thinking blocks (slow)"],
  ["test_compat_oai_responses::test_responses_with_openai_library", "weights: `match_regex(\"(Suddenly)+\", output_text)` (and the openai package)"],
  ["test_compat_oai_responses::test_responses_stream_with_openai_library", "weights: `match_regex(\"(Suddenly)+\", output_text)` (and the openai package)"],
  ["test_tool_call::test_completion_with_required_tool_real_model", "weights: a 1–8B instruct model calls the tool (slow)"],
  ["test_tool_call::test_weather", "weights: a 1–8B instruct model calls get_current_weather (slow)"],
  ["test_tool_call::test_calc_result", "weights: a 1–8B instruct model reads a tool result (slow)"],
  ["test_tool_call::test_thoughts", "weights: a reasoning model's thoughts (slow)"],
  ["test_tool_call::test_hello_world", "weights: a 1–8B instruct model writes a python call (slow)"],
]);

/** llama-server failures that come from the reference build, not from Grove's conditions. */
export const REFERENCE_BUILD_LIMITS = Object.freeze([
  ["test_basic::test_no_ui", "the reference llama-server is built without web UI assets: `/` answers 404"],
  ["test_security::test_access_static_assets_without_api_key", "the reference llama-server is built without web UI assets: `/` answers 404"],
]);

function lookup(entries, id) {
  const bare = id.replace(/\[.*\]$/, "");
  return entries.find(([pattern]) => pattern === id || pattern === bare)?.[1];
}

/** What a test needs beyond a generated model, or undefined. */
export function weightBoundReason(id) {
  return lookup(WEIGHT_BOUND_TESTS, id);
}

/** Why the reference build fails a test whatever the model, or undefined. */
export function referenceBuildLimit(id) {
  return lookup(REFERENCE_BUILD_LIMITS, id);
}
