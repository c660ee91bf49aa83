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

/** A request to the admin or OpenAI API: GET without a body, POST with one unless `method` says otherwise; `key` as a bearer token. */
export interface ApiInit {
  method?: string;
  key?: string;
  body?: unknown;
}

/** Sends `init` to `base` + `path` and reads the answer whole: status, headers, text, and the JSON of a non-empty body (which must parse). */
export async function callApi(base: string, path: string, init: ApiInit = {}) {
  const response = await fetch(`${base}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: {
      ...(init.key === undefined ? {} : { authorization: `Bearer ${init.key}` }),
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers of many shapes
  return { status: response.status, headers: response.headers, text, json: text ? (JSON.parse(text) as any) : undefined };
}
