import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Fastify, { type FastifyError } from "fastify";
import { GroveError } from "../core/errors.js";
import { toErrorResponse } from "./error-table.js";
import { MAX_JSON_DEPTH, registerJsonBodyParser, scanJsonText } from "./json-body.js";

describe("scanJsonText", () => {
  it("passes ordinary JSON, brackets and escapes inside strings included", () => {
    for (const text of ['{"a":[1,{"b":"]]]}}}"}]}', '"\\\\ud800"', '"\\"[[[["', '{"e":"\\ud83c\\udf33"}', "[]", '"\\u0041\\n"']) {
      assert.equal(scanJsonText(text), undefined, text);
    }
  });

  it("refuses nesting past the bound, counted outside strings only", () => {
    assert.equal(scanJsonText(`${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}`), undefined);
    assert.match(scanJsonText(`${"[".repeat(MAX_JSON_DEPTH + 1)}`) ?? "", /nests deeper than 128/);
    assert.match(scanJsonText(`{"a":${'{"b":'.repeat(200)}1${"}".repeat(200)}}`) ?? "", /nests deeper/);
    assert.equal(scanJsonText(`"${"[".repeat(10_000)}"`), undefined);
    assert.match(scanJsonText("[[[", 2) ?? "", /deeper than 2/);
  });

  it("refuses lone surrogates, high or low, at the end or before another escape", () => {
    for (const text of ['"\\ud800"', '"\\udc00"', '"a\\uDBFFb"', '"\\ud800\\u0041"', '"\\ud800\\ud800"', '"\\udfff\\ud800"']) {
      assert.match(scanJsonText(text) ?? "", /lone UTF-16 surrogate/, text);
    }
  });
});

describe("registerJsonBodyParser", () => {
  const app = Fastify();
  // As server.ts maps them: Grove's errors by their code, fastify's parse errors by their status.
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const { status, body } = toErrorResponse(error);
    return reply.code(error instanceof GroveError ? status : (error.statusCode ?? 500)).send(body);
  });
  registerJsonBodyParser(app);
  app.post("/echo", async (request) => ({ body: request.body }));
  const post = (payload: string | Buffer, contentType?: string) =>
    app.inject({ method: "POST", url: "/echo", payload, headers: contentType === undefined ? {} : { "content-type": contentType } });

  it("parses application/json and +json, with parameters", async () => {
    assert.deepEqual((await post('{"a":1}', "application/json")).json(), { body: { a: 1 } });
    assert.deepEqual((await post('{"a":1}', "application/json; charset=utf-8")).json(), { body: { a: 1 } });
    assert.deepEqual((await post('{"a":1}', "application/vnd.api+json")).json(), { body: { a: 1 } });
  });

  it("answers 415 for other types and bodies without a type", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", undefined]) {
      assert.equal((await post('{"a":1}', type)).statusCode, 415, String(type));
    }
  });

  it("refuses invalid UTF-8, lone surrogates, deep nesting and prototype poisoning", async () => {
    assert.equal((await post(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), "application/json")).statusCode, 400);
    assert.equal((await post('{"a":"\\ud800"}', "application/json")).statusCode, 400);
    assert.equal((await post(`${"[".repeat(1000)}${"]".repeat(1000)}`, "application/json")).statusCode, 400);
    assert.equal((await post('{"__proto__":{"x":1}}', "application/json")).statusCode, 400);
    assert.equal((await post("", "application/json")).statusCode, 400);
  });
});
