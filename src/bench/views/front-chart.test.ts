import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { escapeXml, niceTicks, renderFrontChart } from "./front-chart.js";

/**
 * A tiny XML well-formedness check (no parser is a dependency): tags balance, attribute values
 * are quoted, text holds no raw `<`, and every `&` starts an entity. Returns the text content.
 */
function checkWellFormedXml(xml: string): string {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, "");
  const stack: string[] = [];
  let text = "";
  let roots = 0;
  const token = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/g;
  for (const match of body.matchAll(token)) {
    const [, closing, name, , selfClosing, content, stray] = match;
    if (stray !== undefined) throw new Error(`malformed markup at ${match.index}: ${body.slice(match.index, match.index + 40)}`);
    if (content !== undefined) {
      if (stack.length === 0 && content.trim() !== "") throw new Error("text outside the root element");
      if (/&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[\da-fA-F]+);)/.test(content)) throw new Error(`bare & in ${content}`);
      text += content;
      continue;
    }
    const attributes = match[3] ?? "";
    if (/&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[\da-fA-F]+);)/.test(attributes)) throw new Error(`bare & in attributes of <${name}>`);
    if (closing === "/") {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing open`);
    } else {
      if (stack.length === 0) roots += 1;
      if (selfClosing !== "/") stack.push(name!);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join(">, <")}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return text;
}

function unescape(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos);/g, (_match, name: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[name]!);
}

describe("renderFrontChart", () => {
  test("is well-formed XML with every label, escaped", () => {
    const svg = renderFrontChart({
      title: "Quality vs cost: <arith> & co",
      cost: { title: "size (lower is better)" },
      quality: { title: "perplexity (lower is better)" },
      points: [
        { label: "tiny:<f16>", cost: 100, quality: 10, onFront: true },
        { label: "a&b:q8", cost: 50, quality: 11, onFront: true },
        { label: `"quoted":'x'`, cost: 120, quality: 12, onFront: false },
      ],
    });
    const text = unescape(checkWellFormedXml(svg));
    for (const label of ["tiny:<f16>", "a&b:q8", `"quoted":'x'`, "Quality vs cost: <arith> & co"]) assert.ok(text.includes(label), label);
    assert.ok(svg.includes("tiny:&lt;f16&gt;") && svg.includes("a&amp;b:q8"));
    assert.match(svg, /<polyline points="[\d., ]+"/);
    assert.equal(svg.match(/<circle /g)!.length, 3 + 2); // points and the legend's two
    assert.equal(svg.match(/class="dominated"/g)!.length, 1);
  });

  test("one point, and equal values, sit inside the plot", () => {
    for (const points of [
      [{ label: "only", cost: 5e6, quality: 20, onFront: true }],
      [
        { label: "a", cost: 0, quality: 0, onFront: true },
        { label: "b", cost: 0, quality: 0, onFront: true },
      ],
    ]) {
      const svg = renderFrontChart({ title: "t", cost: { title: "x" }, quality: { title: "y" }, points });
      checkWellFormedXml(svg);
      assert.doesNotMatch(svg, /NaN|Infinity/);
      for (const [, cx, cy] of svg.matchAll(/<circle cx="([\d.-]+)" cy="([\d.-]+)" r="[\d.]+" fill="#(?:1f6fb4|bbbbbb)" stroke/g)) {
        assert.ok(Number(cx) >= 84 && Number(cx) <= 720 - 150, `cx ${cx}`);
        assert.ok(Number(cy) >= 44 && Number(cy) <= 480 - 64, `cy ${cy}`);
      }
    }
  });
});

describe("niceTicks", () => {
  test("covers the values with round steps", () => {
    assert.deepEqual(niceTicks([0, 10]), [0, 2, 4, 6, 8, 10]);
    const ticks = niceTicks([3.3, 9.1]);
    assert.ok(ticks[0]! <= 3.3 && ticks[ticks.length - 1]! >= 9.1);
    assert.deepEqual(niceTicks([7, 7]).length >= 2, true);
    assert.deepEqual(niceTicks([]), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  test("escapeXml escapes markup characters", () => {
    assert.equal(escapeXml(`<a href="x">&'</a>`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
  });
});
