import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeStringPrefix, scanJson } from "./json-scan.js";

test("a complete object: its end and its members' spans", () => {
  const text = ' {"name": "f", "arguments": {"a": [1, 2]}} tail';
  const scan = scanJson(text, 0);
  assert.equal(scan.status, "complete");
  assert.equal(text.slice(scan.start, scan.end), '{"name": "f", "arguments": {"a": [1, 2]}}');
  assert.deepEqual(
    scan.members.map((member) => [member.key, text.slice(member.valueStart, member.valueEnd)]),
    [["name", '"f"'], ["arguments", '{"a": [1, 2]}']],
  );
});

test("every prefix of valid JSON is partial, never invalid", () => {
  const text = '{"a": [1, -2.5e3, true, null, "x\\"y\\u00e9"], "b": {"c": false}}';
  for (let length = 1; length < text.length; length++) {
    assert.equal(scanJson(text.slice(0, length), 0).status, "partial", text.slice(0, length));
  }
  assert.equal(scanJson(text, 0).status, "complete");
});

test("an unfinished member has its start but no end", () => {
  const text = '{"name": "f", "arguments": {"a": 1';
  const scan = scanJson(text, 0);
  assert.equal(scan.status, "partial");
  const args = scan.members[1]!;
  assert.equal(args.key, "arguments");
  assert.equal(text.slice(args.valueStart), '{"a": 1');
  assert.equal(args.valueEnd, -1);
});

test("array items", () => {
  const text = '[{"x": 1}, {"y": 2}, {"z"';
  const scan = scanJson(text, 0);
  assert.equal(scan.status, "partial");
  assert.deepEqual(scan.items.map((item) => [item.start, item.end]), [[1, 9], [11, 19], [21, -1]]);
});

test("not JSON is invalid", () => {
  for (const text of ["oops", "{name: 1}", '{"a" 1}', "[1 2]", '{"a": tru }', "{]"]) assert.equal(scanJson(text, 0).status, "invalid", text);
});

test("a number at the end is complete only when the text is final", () => {
  assert.equal(scanJson("12", 0).status, "partial");
  assert.equal(scanJson("12", 0, true).status, "complete");
  assert.equal(scanJson("true", 0).status, "complete");
});

test("a string's decoded prefix never splits an escape", () => {
  const text = '"a\\nb\\u00e9\\ud83d\\ude00c"';
  const whole = JSON.parse(text) as string;
  for (let length = 1; length <= text.length; length++) {
    const prefix = decodeStringPrefix(text.slice(0, length), 0);
    assert.ok(whole.startsWith(prefix), `${JSON.stringify(text.slice(0, length))} → ${JSON.stringify(prefix)}`);
  }
  assert.equal(decodeStringPrefix(text, 0), whole);
});
