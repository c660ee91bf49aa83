import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import OpenAI, { toFile } from "openai";
import type { RunningGrove } from "../services.js";
import { createTestModel, seedTestStore, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { cleanEnvironment, GROVE_BIN } from "../test-support/run-cli.js";
import { ModelStore } from "../store/model-store.js";

// Issue 16: a web page must not drive a local Grove, and no request reads a file it was not
// given. Each test is one row of the table (or one of its smaller findings), against a
// real server on 127.0.0.1, port 0, started as `grove serve` starts it: no keys, no flags.

let model: TestModel;
let grove: RunningGrove;
let port: number;
/** A stand-in hub that counts the requests it gets: a pull that was attempted shows here. */
let hub: Server;
let hubRequests = 0;

before(async () => {
  model = await createTestModel();
  await seedTestStore(model, "tiny:base");
  hub = createServer((_request, response) => {
    hubRequests++;
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => hub.listen(0, "127.0.0.1", resolve));
  grove = await startTestGrove(model, { model: "tiny:base", contextSize: 256, hubEndpoint: `http://127.0.0.1:${(hub.address() as AddressInfo).port}` });
  port = Number(new URL(grove.url).port);
});

after(async () => {
  await grove?.close();
  await new Promise((resolve) => hub?.close(resolve));
  await model?.cleanup();
});

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Header names as sent. */
  names: string[];
  text: string;
  json: any;
}

/** One request on its own connection, with exactly the headers given (fetch would not send a foreign Host). */
function raw(method: string, path: string, headers: Record<string, string | number>, body?: string | Buffer, target = port): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port: target, method, path, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const names = response.rawHeaders.filter((_, index) => index % 2 === 0);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, names, text, json });
      });
    });
    request.on("error", reject);
    // On a server that reads a request's file forever, the answer never comes: fail, do not hang.
    request.setTimeout(30_000, () => request.destroy(new Error(`no answer to ${method} ${path} within 30 s`)));
    request.end(body);
  });
}

const host = () => `127.0.0.1:${port}`;
const json = (extra: Record<string, string> = {}) => ({ host: host(), "content-type": "application/json", ...extra });
const generate = JSON.stringify({ model: "tiny:base", prompt: "hi", stream: false, options: { num_predict: 2 } });

describe("Host and Origin", () => {
  test("DNS rebinding: a foreign Host cannot mint an admin key (403 naming --allowed-hosts), and no key is made", async () => {
    const response = await raw("POST", "/api/keys", { ...json(), host: `rebind.attacker.example:${port}` }, JSON.stringify({ name: "x", admin: true }));
    assert.equal(response.status, 403);
    assert.equal(response.json.error.code, "host_not_allowed");
    assert.match(response.json.error.message, /--allowed-hosts/);
    assert.doesNotMatch(response.text, /secret|gk-/);
    assert.equal(await grove.gateway.keysRequired(), false, "no key was created");
    // Loopback names of every kind are answered.
    for (const name of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`, "127.0.0.1"]) {
      assert.equal((await raw("GET", "/v1/models", { host: name })).status, 200, name);
    }
    for (const name of [`127.0.0.1.attacker.example:${port}`, `0x7f000001:${port}`, `localhost.attacker.example`, `a b:${port}`]) {
      assert.equal((await raw("GET", "/v1/models", { host: name })).status, 403, JSON.stringify(name));
    }
  });

  test("a cross-site text/plain post to /api/generate is refused before it generates", async () => {
    const response = await raw("POST", "/api/generate", { host: host(), origin: "http://evil.example", "content-type": "text/plain" }, generate);
    assert.equal(response.status, 403);
    assert.equal(typeof response.json.error, "string", "Ollama's error shape");
    assert.match(response.json.error, /--cors-origins/);
    // A browser post without an Origin but with Sec-Fetch-Site is no JSON request either: 415.
    const noOrigin = await raw("POST", "/api/generate", { host: host(), "sec-fetch-site": "cross-site", "content-type": "text/plain" }, generate);
    assert.equal(noOrigin.status, 415);
    // `Origin: null` (sandboxed frames, file: pages) is foreign too.
    assert.equal((await raw("POST", "/api/generate", json({ origin: "null" }), generate)).status, 403);
  });

  test("a cross-site form post to /api/pull is refused and the hub is never asked", async () => {
    const before = hubRequests;
    const body = JSON.stringify({ model: "hf.co/a/b:Q4_0", stream: false });
    const response = await raw("POST", "/api/pull", { host: host(), origin: "http://evil.example", "content-type": "application/x-www-form-urlencoded" }, body);
    assert.equal(response.status, 403);
    assert.equal(hubRequests, before);
  });

  test("every route refuses a foreign Origin: state, compute and reads alike", async () => {
    for (const [method, path, body] of [
      ["POST", "/v1/chat/completions", JSON.stringify({ model: "tiny:base", messages: [{ role: "user", content: "hi" }], max_tokens: 1 })],
      ["POST", "/api/forge/quantize", JSON.stringify({ model: "tiny:base", type: "Q8_0" })],
      ["DELETE", "/api/aliases/x", undefined],
      ["GET", "/api/keys", undefined],
      ["GET", "/v1/models", undefined],
    ] as const) {
      const response = await raw(method, path, json({ origin: "https://evil.example" }), body);
      assert.equal(response.status, 403, `${method} ${path}`);
      assert.equal(response.headers["access-control-allow-origin"], undefined);
    }
  });

  test("a preflight from a foreign origin is answered without CORS headers, so the browser never sends the request; a plain OPTIONS is refused", async () => {
    const preflight = await raw("OPTIONS", "/v1/chat/completions", { host: host(), origin: "https://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization" });
    // llama-server answers 200 too; without Access-Control-Allow-Origin the browser's preflight fails.
    assert.equal(preflight.status, 200);
    assert.deepEqual(preflight.names.filter((name) => /^access-control-/i.test(name)), []);
    assert.equal(preflight.text, "");
    const options = await raw("OPTIONS", "/v1/chat/completions", { host: host(), origin: "https://evil.example" });
    assert.equal(options.status, 403);
    const foreignHost = await raw("OPTIONS", "/v1/chat/completions", { host: "rebind.attacker.example", origin: "https://evil.example", "access-control-request-method": "POST" });
    assert.equal(foreignHost.status, 403, "the Host check comes first");
  });

  test("the web app's own requests (same origin) and a top-level link (no Origin) work", async () => {
    const chat = await raw("POST", "/v1/chat/completions", json({ origin: `http://${host()}`, "sec-fetch-site": "same-origin" }), JSON.stringify({ model: "tiny:base", messages: [{ role: "user", content: "hi" }], max_tokens: 1 }));
    assert.equal(chat.status, 200, chat.text);
    const viaLocalhost = await raw("GET", "/v1/models", { host: `localhost:${port}`, origin: `http://localhost:${port}` });
    assert.equal(viaLocalhost.status, 200);
    const page = await raw("GET", "/", { host: host(), "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" });
    assert.notEqual(page.status, 403);
  });

  test("JSON routes take JSON only: 415 for forms and text from a browser, Ollama's curl -d still works", async () => {
    const form = await raw("POST", "/v1/chat/completions", { host: host(), "content-type": "application/x-www-form-urlencoded" }, "{}");
    assert.equal(form.status, 415);
    assert.equal(form.json.error.code, "unsupported_media_type");
    assert.equal((await raw("POST", "/api/keys", { host: host(), "content-type": "text/plain" }, "{}")).status, 415);
    assert.equal((await raw("POST", "/api/forge/quantize", { host: host(), "content-length": 2 }, "{}")).status, 415);
    // curl sends no Origin and no Sec-Fetch-Site: Ollama's documented `curl -d` keeps working.
    const curl = await raw("POST", "/api/generate", { host: host(), "content-type": "application/x-www-form-urlencoded" }, generate);
    assert.equal(curl.status, 200, curl.text);
    const browser = await raw("POST", "/api/generate", { host: host(), origin: `http://${host()}`, "content-type": "application/x-www-form-urlencoded" }, generate);
    assert.equal(browser.status, 415);
  });

  test("the official openai and ollama clients work against the default server", async () => {
    const openai = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const chat = await openai.chat.completions.create({ model: "tiny:base", messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
    assert.equal(chat.choices.length, 1);
    const ollama = new Ollama({ host: grove.url });
    const reply = await ollama.generate({ model: "tiny:base", prompt: "hi", options: { num_predict: 2 } });
    assert.equal(reply.done, true);
  });
});

describe("--cors-origins and --allowed-hosts", () => {
  let open: RunningGrove;
  let openPort: number;
  before(async () => {
    open = await startTestGrove(model, { model: "tiny:base", contextSize: 256, port: 0, corsOrigins: "https://app.example.com", allowedHosts: "grove.internal" });
    openPort = Number(new URL(open.url).port);
  });
  after(() => open?.close());

  test("an allowed origin gets CORS answers (preflight and request); others are still refused", async () => {
    const preflight = await raw(
      "OPTIONS",
      "/v1/chat/completions",
      { host: `127.0.0.1:${openPort}`, origin: "https://app.example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
      undefined,
      openPort,
    );
    assert.equal(preflight.status, 200);
    assert.equal(preflight.headers["access-control-allow-origin"], "https://app.example.com");
    assert.match(String(preflight.headers["access-control-allow-methods"]), /POST/);
    assert.match(String(preflight.headers["access-control-allow-headers"]), /authorization/i);
    const models = await raw("GET", "/v1/models", { host: `127.0.0.1:${openPort}`, origin: "https://app.example.com" }, undefined, openPort);
    assert.equal(models.status, 200);
    assert.equal(models.headers["access-control-allow-origin"], "https://app.example.com");
    const other = await raw("OPTIONS", "/v1/models", { host: `127.0.0.1:${openPort}`, origin: "https://evil.example", "access-control-request-method": "GET" }, undefined, openPort);
    assert.equal(other.status, 200);
    assert.equal(other.headers["access-control-allow-origin"], undefined);
    const request = await raw("GET", "/v1/models", { host: `127.0.0.1:${openPort}`, origin: "https://evil.example" }, undefined, openPort);
    assert.equal(request.status, 403);
  });

  test("a host named in --allowed-hosts is answered, others still are not", async () => {
    assert.equal((await raw("GET", "/v1/models", { host: "grove.internal" }, undefined, openPort)).status, 200);
    assert.equal((await raw("GET", "/v1/models", { host: "grove.internal.evil.example" }, undefined, openPort)).status, 403);
  });
});

describe("--cors-origins localhost", () => {
  let local: RunningGrove;
  let localPort: number;
  before(async () => {
    local = await startTestGrove(model, { model: "tiny:base", contextSize: 256, port: 0, corsOrigins: "localhost" });
    localPort = Number(new URL(local.url).port);
  });
  after(() => local?.close());

  const preflight = (origin: string) =>
    raw("OPTIONS", "/completion", { host: `127.0.0.1:${localPort}`, origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization" }, undefined, localPort);

  test("allows every origin on this machine, any port, as llama-server's keyword; headers named as llama-server names them", async () => {
    for (const origin of ["http://localhost", "http://localhost:8080", "http://127.0.0.1", "https://127.0.0.1:3000", "http://[::1]", "http://[::1]:3000", "http://app.localhost:5173"]) {
      const answer = await preflight(origin);
      assert.equal(answer.status, 200, origin);
      assert.equal(answer.headers["access-control-allow-origin"], origin);
      assert.ok(answer.names.includes("Access-Control-Allow-Origin"), `${origin}: ${answer.names}`);
    }
    const models = await raw("GET", "/v1/models", { host: `127.0.0.1:${localPort}`, origin: "http://localhost:5173" }, undefined, localPort);
    assert.equal(models.status, 200);
    assert.equal(models.headers["access-control-allow-origin"], "http://localhost:5173");
  });

  test("refuses every other origin: names that only look local, other hosts, null", async () => {
    for (const origin of ["http://localhost.evil.com", "http://notlocalhost", "http://evil.com", "http://web.mydomain.fr", "null", "file://localhost", "http://127.0.0.1.evil.com"]) {
      const answer = await preflight(origin);
      assert.equal(answer.status, 200, origin);
      assert.equal(answer.headers["access-control-allow-origin"], undefined, origin);
      const request = await raw("GET", "/v1/models", { host: `127.0.0.1:${localPort}`, origin }, undefined, localPort);
      assert.equal(request.status, 403, origin);
    }
  });
});

describe("no client-chosen server paths", () => {
  const secret = "root:*:20200:0:99999:7:::\n";
  let dataDir: string;
  let withDir: RunningGrove;
  let dirPort: number;
  before(async () => {
    dataDir = join(model.directory, "data");
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(model.directory, "outside.jsonl"), secret);
    await writeFile(join(dataDir, "shadow-like.jsonl"), secret);
    await writeFile(join(dataDir, "good.jsonl"), `${Array.from({ length: 200 }, (_, index) => JSON.stringify({ text: `Line ${index} of the grove, where the river turned east and the road became a path.` })).join("\n")}\n`);
    await symlink("/dev/zero", join(dataDir, "zero.jsonl"));
    await symlink(join(model.directory, "outside.jsonl"), join(dataDir, "link-out.jsonl"));
    execFileSync("mkfifo", [join(dataDir, "fifo.jsonl")]);
    withDir = await startTestGrove(model, { model: "tiny:base", contextSize: 256, port: 0, dataDir });
    dirPort = Number(new URL(withDir.url).port);
  });
  after(() => withDir?.close());

  const finetune = (data: string, target = port) => raw("POST", "/api/forge/finetune", { host: `127.0.0.1:${target}`, "content-type": "application/json" }, JSON.stringify({ model: "tiny:base", data }), target);

  test("data: /dev/zero is refused at once and the server's memory stays flat", async () => {
    const rss = process.memoryUsage().rss;
    for (const target of [port, dirPort]) {
      const response = await finetune("/dev/zero", target);
      assert.equal(response.status, 403, response.text);
      assert.equal(response.json.error.code, "path_not_allowed");
    }
    // Inside the data directory, a link to /dev/zero leads out of it; a FIFO is not a regular file.
    assert.equal((await finetune("zero.jsonl", dirPort)).status, 403);
    const fifo = await finetune("fifo.jsonl", dirPort);
    assert.equal(fifo.status, 400);
    assert.match(fifo.json.error.message, /not a regular file/);
    assert.ok(process.memoryUsage().rss - rss < 64 << 20, "the server read nothing large");
  });

  test("data: /etc/shadow and friends: refused, and no error quotes a file's bytes", async () => {
    for (const [data, status] of [
      ["/etc/shadow", 403],
      ["/etc/passwd", 403],
      ["../outside.jsonl", 403],
      [join(model.directory, "outside.jsonl"), 403],
      ["link-out.jsonl", 403],
      ["shadow-like.jsonl", 400],
      ["missing.jsonl", 400],
    ] as const) {
      const response = await finetune(data, dirPort);
      assert.equal(response.status, status, `${data}: ${response.text}`);
      assert.doesNotMatch(response.text, /root:|20200/, data);
    }
    // The same words on the server without --data-dir: nothing is even looked at.
    const response = await finetune("shadow-like.jsonl");
    assert.equal(response.status, 403);
    assert.match(response.json.error.message, /--data-dir/);
  });

  test("a file inside --data-dir, or an upload, trains; a migration's task must be one too", async () => {
    const job = await finetune("good.jsonl", dirPort);
    assert.equal(job.status, 202, job.text);
    await raw("POST", `/api/forge/jobs/${job.json.id}/cancel`, { host: `127.0.0.1:${dirPort}` }, undefined, dirPort);
    await raw("PUT", "/api/aliases/prod", { host: host(), "content-type": "application/json" }, JSON.stringify({ targets: [{ model: "tiny:base" }] }));
    const migrate = await raw("POST", "/api/aliases/prod/migrate", json(), JSON.stringify({ to: "tiny:base", tasks: ["/etc/passwd"] }));
    assert.equal(migrate.status, 403, migrate.text);
    assert.doesNotMatch(migrate.text, /root:/);
  });

  test("task files arrive as uploads with purpose evals, checked as tasks", async () => {
    const openai = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const task = `${JSON.stringify({ type: "multiple_choice", context: "2+2=", choices: ["3", "4"], answer: 1 })}\n`;
    const upload = await openai.files.create({ file: await toFile(Buffer.from(task), "arith.jsonl"), purpose: "evals" });
    assert.equal(upload.purpose, "evals");
    assert.equal(upload.bytes, task.length);
    await assert.rejects(openai.files.create({ file: await toFile(Buffer.from('{"text":"not a task"}\n'), "bad.jsonl"), purpose: "evals" }), (error: unknown) => error instanceof OpenAI.BadRequestError && /bad\.jsonl line 1/.test(error.message));
    // Training data and tasks do not mix: a fine-tune refuses an evals upload.
    const wrong = await finetune(upload.id);
    assert.equal(wrong.status, 400);
    assert.match(wrong.json.error.message, /purpose 'evals', not 'fine-tune'/);
  });
});

describe("bodies and parsing", () => {
  /**
   * Sends `size` bytes of body with a declared length, all of it, as curl does, and only then
   * reads the answer: the status, or the error that came instead of it (a reset).
   */
  function sendWhole(path: string, body: Buffer | number): Promise<{ status?: number; error?: string }> {
    const size = typeof body === "number" ? body : body.length;
    return new Promise((resolve) => {
      let received = "";
      let settled = false;
      const settle = (result: { status?: number; error?: string }) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        resolve(result);
      };
      const socket = connect(port, "127.0.0.1", () => {
        socket.write(`POST ${path} HTTP/1.1\r\nHost: ${host()}\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
        const chunk = typeof body === "number" ? Buffer.alloc(1 << 20, 0x20) : undefined;
        let sent = 0;
        const write = () => {
          while (sent < size) {
            const piece = chunk ?? (body as Buffer).subarray(sent, sent + (1 << 20));
            sent += piece.length;
            if (!socket.write(piece)) return void socket.once("drain", write);
          }
          bodySent = true;
          check();
        };
        write();
      });
      let bodySent = false;
      const check = () => {
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(received);
        if (bodySent && status !== null) settle({ status: Number(status[1]) });
      };
      socket.on("data", (data: Buffer) => {
        received += data.toString("latin1");
        check();
      });
      socket.on("error", (error: NodeJS.ErrnoException) => settle({ error: error.code ?? error.message }));
      socket.on("close", () => settle(bodySent ? { error: "closed before an answer" } : { error: "closed while sending" }));
    });
  }

  test("64 MiB bodies get a 413 the client can read, 50 times out of 50", async () => {
    const outcomes: Record<string, number> = {};
    for (let attempt = 0; attempt < 50; attempt++) {
      const result = await sendWhole(attempt % 2 === 0 ? "/v1/chat/completions" : "/api/chat", 64 << 20);
      const key = result.status === undefined ? `error ${result.error}` : String(result.status);
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    assert.deepEqual(outcomes, { 413: 50 });
  });

  test("a 1M-entry logit_bias gets a readable 413", async () => {
    const entries = Array.from({ length: 1_000_000 }, (_, index) => `"${index}":1`).join(",");
    const body = `{"model":"tiny:base","messages":[{"role":"user","content":"hi"}],"logit_bias":{${entries}}}`;
    for (let attempt = 0; attempt < 10; attempt++) assert.deepEqual(await sendWhole("/v1/chat/completions", Buffer.from(body)), { status: 413 });
  });

  test("100k-deep JSON is refused before it is parsed; 128 levels still pass", async () => {
    const deep = `{"model":"tiny:base","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const response = await raw("POST", "/v1/chat/completions", json(), deep);
    assert.equal(response.status, 400);
    assert.match(response.json.error.message, /nests deeper than 128/);
    const ollama = await raw("POST", "/api/chat", json(), deep);
    assert.equal(ollama.status, 400);
    const fine = `{"model":"tiny:base","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"metadata":${"[".repeat(120)}${"]".repeat(120)}}`;
    const bounded = await raw("POST", "/v1/chat/completions", json(), fine);
    assert.equal(bounded.status, 200, bounded.text);
  });

  test("invalid UTF-8 and lone surrogates are a 400; escaped pairs are text", async () => {
    const invalid = Buffer.concat([Buffer.from('{"model":"tiny:base","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}],"max_tokens":1}')]);
    const bad = await raw("POST", "/v1/chat/completions", json(), invalid);
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /not valid UTF-8/);
    for (const escape of ["\\ud800", "\\udfff", "\\ud800x", "\\ud800\\u0041"]) {
      const response = await raw("POST", "/api/generate", json(), `{"model":"tiny:base","prompt":"a${escape}b","stream":false,"options":{"num_predict":1}}`);
      assert.equal(response.status, 400, escape);
      assert.match(response.json.error, /lone UTF-16 surrogate/);
    }
    const pair = await raw("POST", "/api/generate", json(), '{"model":"tiny:base","prompt":"\\ud83c\\udf33 \\\\ud800 is text","stream":false,"options":{"num_predict":1}}');
    assert.equal(pair.status, 200, pair.text);
  });

  test("a socket that trickles its headers is cut; the server keeps answering", async () => {
    const started = Date.now();
    const closed = await new Promise<number>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => socket.write(`GET /v1/models HTTP/1.1\r\nHost: ${host()}\r\n`));
      const timer = setInterval(() => socket.writable && socket.write("X-Slow: 1\r\n"), 500);
      socket.on("data", () => undefined);
      socket.on("close", () => {
        clearInterval(timer);
        resolve(Date.now() - started);
      });
      socket.on("error", () => undefined);
    });
    // Node's defaults held such a socket 60 s; Grove's headers timeout is 10 s, checked every second.
    assert.ok(closed < 20_000, `closed after ${closed} ms`);
    assert.equal((await raw("GET", "/v1/models", { host: host() })).status, 200);
  });
});

describe("shutdown", () => {
  test("after data: /dev/zero, SIGTERM stops grove serve at once", async () => {
    const home = join(model.directory, "home-shutdown");
    const store = await ModelStore.open(home);
    await store.importFile(model.path, { name: "tiny:base" });
    await store.close();
    const child = spawn(process.execPath, [GROVE_BIN, "serve", "--model", "tiny:base", "--port", "0", "--threads", "1", "--ctx-size", "256", "--home", home, "--log-level", "silent", "--web-dir", "none"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: cleanEnvironment(),
    });
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /at (http:\/\/[\d.:]+)/.exec(output);
        if (match) resolve(match[1]!);
      });
      child.on("exit", (code) => reject(new Error(`grove serve exited with ${code}`)));
    });
    const target = Number(new URL(url).port);
    // The request is not awaited: a server that reads /dev/zero never answers it.
    const answer = raw("POST", "/api/forge/finetune", { host: `127.0.0.1:${target}`, "content-type": "application/json" }, JSON.stringify({ model: "tiny:base", data: "/dev/zero" }), target).catch((error: Error) => error);
    await Promise.race([answer, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const signalled = Date.now();
    child.kill("SIGTERM");
    const outcome = await Promise.race([exited, new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 15_000))]);
    if (outcome === "hung") child.kill("SIGKILL");
    assert.notEqual(outcome, "hung", "grove serve did not stop within 15 s of SIGTERM");
    const response = await answer;
    assert.ok(!(response instanceof Error), String(response));
    assert.equal(response.status, 403);
    assert.ok(Date.now() - signalled < 15_000);
    assert.deepEqual(await readdir(join(home, "tmp")).catch(() => []), []);
  });
});
