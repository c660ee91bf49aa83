/**
 * Families that address each message: gpt-oss's harmony format (a channel and a recipient per
 * message) and Functionary v3.2 (`>>>recipient\n` before each message).
 */
import { SnapshotBuilder, type OutputSnapshot } from "./snapshot.js";
import { textUntil } from "./markers.js";

const MESSAGE = "<|message|>";
const MESSAGE_ENDS = ["<|end|>", "<|call|>", "<|return|>", "<|start|>"];
const HEADER_STARTS = ["<|channel|>", "<|start|>", " to=", "to="];
/** Recipients that mean "the conversation", not a tool. */
const PEOPLE = new Set(["assistant", "user", "all"]);

/**
 * gpt-oss (harmony): after the prompt's `<|start|>assistant`, messages such as
 * `<|channel|>analysis<|message|>…<|end|>` (reasoning), `<|start|>assistant<|channel|>final<|message|>…`
 * (content) and `<|channel|>commentary to=functions.name <|constrain|>json<|message|>{…}<|call|>` (a call).
 * The recipient may sit in the role part or the channel part of the header. Messages to built-in
 * tools (`to=python`, `to=browser.search`) were not asked for and are dropped.
 */
export function parseGptOss(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  const opening = HEADER_STARTS.some((start) => text.startsWith(start));
  if (!opening) {
    if (!final && HEADER_STARTS.some((start) => start.startsWith(text))) return out.build();
    // A plain answer, without harmony headers.
    out.content = textUntil(text, 0, MESSAGE_ENDS, final).text;
    return out.build();
  }
  let at = 0;
  while (at < text.length) {
    const headerEnd = text.indexOf(MESSAGE, at);
    if (headerEnd < 0) return out.build();
    const header = text.slice(at, headerEnd);
    const channel = [...header.matchAll(/<\|channel\|>\s*([\w-]+)/g)].pop()?.[1];
    const recipient = /(?:^|\s|>)to=([^\s<]+)/.exec(header)?.[1];
    const body = textUntil(text, headerEnd + MESSAGE.length, MESSAGE_ENDS, final);
    if (recipient !== undefined && recipient.startsWith("functions.")) {
      out.calls.push({ name: recipient.slice("functions.".length), arguments: body.text.trim() });
    } else if (recipient !== undefined && !PEOPLE.has(recipient)) {
      // A built-in tool's call: dropped.
    } else if (channel === "analysis") {
      out.reasoning += body.text;
    } else {
      out.content += body.text;
    }
    if (body.match === undefined) return out.build();
    at = body.match.marker === "<|start|>" ? body.match.index : body.match.end;
  }
  return out.build();
}

/**
 * Functionary v3.2: the prompt ends with `>>>`; each message is `recipient\nbody`, messages
 * separated by `>>>`. `all` is the user (content); any other recipient is a function and the body
 * its JSON arguments (raw code for the python tool).
 */
export function parseFunctionaryV32(text: string, final: boolean): OutputSnapshot {
  const out = new SnapshotBuilder();
  let at = 0;
  for (;;) {
    const newline = text.indexOf("\n", at);
    if (newline < 0) {
      if (final && text.slice(at).trim() !== "all") out.content += text.slice(at);
      return out.build();
    }
    const recipient = text.slice(at, newline).trim();
    const body = textUntil(text, newline + 1, [">>>"], final);
    const ended = body.match !== undefined || final;
    if (recipient === "all") {
      out.content += body.text;
    } else {
      const args = body.text.trim();
      if (args === "" || args.startsWith("{") || args.startsWith("[")) out.calls.push({ name: recipient, arguments: args });
      else out.calls.push({ name: recipient, arguments: ended ? JSON.stringify({ code: body.text }) : "" });
    }
    if (body.match === undefined) return out.build();
    at = body.match.end;
  }
}
