/** What {@link postJson} reads back: the status, the body as text, and as JSON when it parses. */
export interface PostJsonResult {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers of many shapes
  readonly json: any;
  readonly text: string;
}

/** POSTs `body` as JSON to `base` + `path` (a real server in an integration test) and reads the answer whole. */
export async function postJson(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<PostJsonResult> {
  const response = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}
