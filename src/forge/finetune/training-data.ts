import { z } from "zod";
import { digestOfBytes, type Digest } from "../../core/digest.js";
import { InvalidRequestError } from "../../core/errors.js";
import { jsonLines } from "../../core/json-error.js";
import { readBoundedFile } from "../../store/bounded-file.js";
import { seededShuffle } from "../generate/seeded-random.js";

/** One chat message of a training record. */
export interface TrainingMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** One training record: plain text, or a conversation rendered with the model's chat template. */
export type TrainingRecord = { kind: "text"; text: string } | { kind: "chat"; messages: TrainingMessage[] };

/** A parsed training data file. */
export interface TrainingData {
  records: TrainingRecord[];
  /** sha256 of the file's bytes: the data input of the fork's recipe. */
  digest: Digest;
  /** Bytes in the file. */
  size: number;
}

const MESSAGE = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});
const TEXT_RECORD = z.strictObject({ text: z.string().min(1, "text is empty") });
const CHAT_RECORD = z.strictObject({ messages: z.array(MESSAGE).min(1, "messages is empty") });

/** The largest data file Grove reads into memory for fine-tuning. */
export const MAX_TRAINING_DATA_BYTES = 512 * 1024 * 1024;

/**
 * Reads a JSONL training file: one JSON object per line, either `{"text": "…"}` or
 * `{"messages": [{"role": "user"|"assistant"|"system", "content": "…"}, …]}` (blank lines
 * skipped). Every record is checked before anything trains.
 *
 * @throws InvalidRequestError naming the file and line of the first bad record: invalid JSON, an
 *   unknown shape, a chat without an assistant turn; or when the file holds no records
 */
export async function readTrainingData(path: string): Promise<TrainingData> {
  const bytes = await readBoundedFile(path, { limit: MAX_TRAINING_DATA_BYTES, what: "the training data", param: "data" });
  const records = parseTrainingData(bytes.toString("utf8"), path);
  return { records, digest: digestOfBytes(bytes), size: bytes.length };
}

/**
 * Parses JSONL training records (see {@link readTrainingData}); `source` names the input in errors.
 * @throws InvalidRequestError for the first bad line, or when there are no records
 */
export function parseTrainingData(text: string, source = "the training data"): TrainingRecord[] {
  const records: TrainingRecord[] = [];
  for (const { value, where } of jsonLines(text, source, "data")) records.push(parseRecord(value, where));
  if (records.length === 0) throw new InvalidRequestError(`${source} holds no records: expected JSON lines of {"text": …} or {"messages": […]}`, { param: "data" });
  return records;
}

function parseRecord(value: unknown, where: string): TrainingRecord {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    if ("messages" in value) {
      const chat = CHAT_RECORD.safeParse(value);
      if (!chat.success) throw new InvalidRequestError(`${where}: ${describeIssue(chat.error)}`, { param: "data" });
      if (!chat.data.messages.some((message) => message.role === "assistant")) {
        throw new InvalidRequestError(`${where}: the conversation has no assistant turn, so there is nothing to learn from it`, { param: "data" });
      }
      return { kind: "chat", messages: chat.data.messages };
    }
    if ("text" in value) {
      const text = TEXT_RECORD.safeParse(value);
      if (!text.success) throw new InvalidRequestError(`${where}: ${describeIssue(text.error)}`, { param: "data" });
      return { kind: "text", text: text.data.text };
    }
  }
  throw new InvalidRequestError(`${where}: expected an object with "text" (a string) or "messages" (a list of {role, content})`, { param: "data" });
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid record";
  const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  return `${path}${issue.message}`;
}


/** The largest seed of {@link shuffleRecords} (OpenAI's fine-tuning `seed` is a 31-bit integer too). */
export const MAX_SHUFFLE_SEED = 2 ** 31 - 1;

/**
 * The records in a seeded random order (Fisher–Yates over xoshiro128**): the same seed gives the
 * same order on every machine, so a recipe rebuilds. Records are packed into windows in the
 * order given, and a window lets the model read the records before its answer — data in a
 * pattern (sorted by label, cycling through classes) teaches the pattern instead of the task.
 */
export function shuffleRecords<T>(records: readonly T[], seed: number): T[] {
  return seededShuffle(records, seed, "finetune-records");
}
