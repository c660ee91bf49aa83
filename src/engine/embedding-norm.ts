/**
 * Normalises an embedding as llama.cpp's `common_embd_normalize` does (llama-server's
 * `embd_normalize`): -1 leaves it, 0 scales it so its largest absolute value is 32760 (int16's
 * range), 1 divides by the sum of absolute values, 2 by the Euclidean length (a unit vector:
 * OpenAI's and Ollama's embeddings), p > 2 by the p-norm. A zero vector stays zero.
 */
export function normalizeEmbedding(vector: readonly number[], norm: number): number[] {
  let sum = 0;
  if (norm === -1) return [...vector];
  if (norm === 0) {
    for (const value of vector) sum = Math.max(sum, Math.abs(value));
    sum /= 32760;
  } else if (norm === 2) {
    for (const value of vector) sum += value * value;
    sum = Math.sqrt(sum);
  } else {
    for (const value of vector) sum += Math.abs(value) ** norm;
    sum **= 1 / norm;
  }
  const scale = sum > 0 ? 1 / sum : 0;
  return vector.map((value) => value * scale);
}
