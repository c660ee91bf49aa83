/** The context per slot when `--ctx-size` is not given, for a model trained on at least as many tokens. */
export const DEFAULT_CONTEXT_SIZE = 2048;

/**
 * The context per slot a model gets when `--ctx-size` (and its `--model-settings` ctx) is not
 * given: {@link DEFAULT_CONTEXT_SIZE}, or the model's training context when that is smaller, so
 * that llama.cpp does not warn of a context past training (the demo models are trained at 512).
 *
 * @param trainContextSize `<arch>.context_length`; 0 or undefined when unknown
 */
export function defaultContextSize(trainContextSize: number | undefined): number {
  return trainContextSize !== undefined && trainContextSize > 0 ? Math.min(DEFAULT_CONTEXT_SIZE, trainContextSize) : DEFAULT_CONTEXT_SIZE;
}
