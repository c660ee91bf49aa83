/**
 * Parses the fine-tune form's JSONL: one JSON object a line, each `{"text": "..."}` or a chat
 * `{"messages": [{"role", "content"}, ...]}`, the shapes the server trains on. Blank lines are
 * skipped. Checked here so a typo is named by its line before anything is sent.
 * @throws Error naming the first bad line
 */
export function parseTrainingRecords(jsonl: string): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  const lines = jsonl.split("\n");
  for (const [index, line] of lines.entries()) {
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`Line ${index + 1} is not JSON: ${(error as Error).message}`);
    }
    const record = value as { text?: unknown; messages?: unknown };
    if (typeof value !== "object" || value === null || Array.isArray(value) || (typeof record.text !== "string" && !Array.isArray(record.messages))) {
      throw new Error(`Line ${index + 1} must be an object with a "text" string or a "messages" array`);
    }
    records.push(value as Record<string, unknown>);
  }
  if (records.length === 0) throw new Error("Give at least one training record, one JSON object a line");
  return records;
}
