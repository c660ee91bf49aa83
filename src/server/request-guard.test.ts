import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Fastify from "fastify";
import { toErrorResponse } from "./error-table.js";
import { hostnameOf, isLoopbackName, registerRequestGuard, type RequestGuardOptions } from "./request-guard.js";

function app(options: RequestGuardOptions) {
  const server = Fastify();
  server.setErrorHandler((error, _request, reply) => {
    const { status, body } = toErrorResponse(error);
    return reply.code(status).send(body);
  });
  registerRequestGuard(server, options);
  server.get("/v1/models", async () => ({ ok: true }));
  server.post("/v1/chat/completions", async () => ({ ok: true }));
  return server;
}

describe("hostnameOf and isLoopbackName", () => {
  it("reads a Host header's name without its port, and refuses malformed ones", () => {
    assert.equal(hostnameOf("LocalHost:11435"), "localhost");
    assert.equal(hostnameOf("[::1]:80"), "[::1]");
    assert.equal(hostnameOf("grove.internal."), "grove.internal");
    for (const bad of [undefined, "", "a b", "x:y", "evil.example/path", "[::1", "x".repeat(300)]) assert.equal(hostnameOf(bad), undefined, String(bad));
  });

  it("knows loopback names, and nothing that only looks like one", () => {
    for (const name of ["localhost", "grove.localhost", "127.0.0.1", "127.1.2.3", "[::1]"]) assert.equal(isLoopbackName(name), true, name);
    for (const name of ["localhost.evil.example", "127.0.0.1.nip.io", "0x7f000001", "2130706433", "10.0.0.1", "[::ffff:7f00:1]", "0.0.0.0"]) assert.equal(isLoopbackName(name), false, name);
  });
});

describe("registerRequestGuard", () => {
  it("on a loopback bind, answers loopback hosts and --allowed-hosts only", async () => {
    const server = app({ loopbackOnly: true, allowedHosts: ["grove.internal"] });
    for (const [host, status] of [["127.0.0.1:1", 200], ["localhost", 200], ["grove.internal:8080", 200], ["rebind.attacker.example", 403], ["grove.internal.attacker.example", 403]] as const) {
      const response = await server.inject({ method: "GET", url: "/v1/models", headers: { host } });
      assert.equal(response.statusCode, status, host);
      if (status === 403) assert.equal(response.json().error.code, "host_not_allowed");
    }
  });

  it("on another bind, checks hosts only when --allowed-hosts is set", async () => {
    assert.equal((await app({ loopbackOnly: false }).inject({ method: "GET", url: "/v1/models", headers: { host: "10.0.0.5:11435" } })).statusCode, 200);
    const listed = app({ loopbackOnly: false, allowedHosts: ["grove.example.com"] });
    assert.equal((await listed.inject({ method: "GET", url: "/v1/models", headers: { host: "grove.example.com" } })).statusCode, 200);
    assert.equal((await listed.inject({ method: "GET", url: "/v1/models", headers: { host: "10.0.0.5" } })).statusCode, 403);
    assert.equal((await app({ loopbackOnly: true, allowedHosts: ["*"] }).inject({ method: "GET", url: "/v1/models", headers: { host: "anything.example" } })).statusCode, 200);
  });

  it("refuses foreign origins, takes the server's own (default ports folded), and --cors-origins ones with CORS headers", async () => {
    const server = app({ loopbackOnly: true, corsOrigins: ["https://app.example.com"] });
    const post = (origin: string, host = "127.0.0.1:11435") => server.inject({ method: "POST", url: "/v1/chat/completions", headers: { host, origin, "content-type": "application/json" }, payload: "{}" });
    assert.equal((await post("http://127.0.0.1:11435")).statusCode, 200);
    assert.equal((await post("http://localhost", "localhost:80")).statusCode, 200);
    assert.equal((await post("http://localhost:11436", "localhost:11435")).statusCode, 403);
    assert.equal((await post("http://localhost:11435")).statusCode, 403, "another name is another origin");
    assert.equal((await post("null")).statusCode, 403);
    assert.equal((await post("https://evil.example")).json().error.code, "origin_not_allowed");
    const allowed = await post("https://app.example.com");
    assert.equal(allowed.statusCode, 200);
    assert.equal(allowed.headers["access-control-allow-origin"], "https://app.example.com");
    assert.match(String(allowed.headers["access-control-expose-headers"]), /x-request-id/);
    const star = app({ loopbackOnly: true, corsOrigins: ["*"] });
    const any = await star.inject({ method: "GET", url: "/v1/models", headers: { host: "localhost", origin: "https://anyone.example" } });
    assert.equal(any.statusCode, 200);
    assert.equal(any.headers["access-control-allow-origin"], "*");
  });
});
