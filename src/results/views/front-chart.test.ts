import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { escapeXml, LABEL_CHAR_WIDTH, LABEL_HEIGHT, logTicks, niceTicks, renderFrontChart } from "./front-chart.js";

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

/** The models' points (not the legend's). */
const circles = (svg: string): { cx: number; cy: number }[] =>
  [...svg.matchAll(/<circle cx="([\d.-]+)" cy="([\d.-]+)" r="[\d.]+" fill="#(?:1f6fb4|bbbbbb)" stroke/g)].map(([, cx, cy]) => ({ cx: Number(cx), cy: Number(cy) }));

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
      assert.equal(circles(svg).length, points.length);
      for (const { cx, cy } of circles(svg)) {
        assert.ok(cx >= 84 && cx <= 720 - 150, `cx ${cx}`);
        assert.ok(cy >= 44 && cy <= 480 - 64, `cy ${cy}`);
      }
    }
  });
});

/** The label texts of a chart with their boxes as the renderer estimates them. */
function labelBoxes(svg: string): { label: string; left: number; top: number; right: number; bottom: number }[] {
  return [...svg.matchAll(/<text x="([\d.-]+)" y="([\d.-]+)" fill="#(?:102a43|888888)">([^<]*)<\/text>/g)].map(([, x, y, label]) => ({
    label: label!,
    left: Number(x),
    top: Number(y) - LABEL_HEIGHT + 3,
    right: Number(x) + label!.length * LABEL_CHAR_WIDTH,
    bottom: Number(y) + 3,
  }));
}

describe("renderFrontChart's axes and labels", () => {
  // A family as the demo's: trained sizes, quantized forks of nearly equal perplexity and an
  // untrained model a hundred times worse.
  const family = [
    { label: "demo-s:q4_0", cost: 1.5e6, quality: 66.25, onFront: true },
    { label: "demo-s:q8_0", cost: 2.2e6, quality: 65.63, onFront: true },
    { label: "demo-s:f16", cost: 3.9e6, quality: 65.62, onFront: true },
    { label: "demo-m:f16", cost: 11.2e6, quality: 44.59, onFront: true },
    { label: "demo-l:f16", cost: 21.4e6, quality: 37.42, onFront: true },
    { label: "demo-s-chat:q4_0", cost: 1.5e6, quality: 226, onFront: false },
    { label: "demo-s-chat:q8_0", cost: 2.2e6, quality: 219.4, onFront: false },
    { label: "demo-l:init", cost: 42.6e6, quality: 4418, onFront: false },
  ];

  test("values spanning a factor of ten or more get a logarithmic axis, which keeps close models apart", () => {
    const svg = renderFrontChart({ title: "t", cost: { title: "size" }, quality: { title: "perplexity" }, points: family });
    checkWellFormedXml(svg);
    assert.ok(svg.includes(">size, log scale<") && svg.includes(">perplexity, log scale<"), "both axes say they are logarithmic");
    const points = circles(svg);
    const [q4, q8, f16, m] = points.filter((_, index) => index >= 3).slice(0, 4); // dominated points are drawn first
    assert.ok(q4 && q8 && f16 && m);
    // On a linear axis to 45 MB the three demo-s files were 7 px apart; here, tens of pixels.
    assert.ok(q8.cx - q4.cx > 30 && f16.cx - q8.cx > 30, `${q4.cx} ${q8.cx} ${f16.cx}`);
    assert.ok(m.cy > f16.cy - 200 && m.cy > f16.cy, "lower perplexity is lower on the chart");
    for (const point of points) assert.ok(point.cx >= 84 && point.cx <= 570 && point.cy >= 44 && point.cy <= 416, JSON.stringify(point));
  });

  test("non-negative values get no tick below zero", () => {
    const svg = renderFrontChart({
      title: "t",
      cost: { title: "size" },
      quality: { title: "exact match" },
      points: [
        { label: "chat", cost: 1.5e6, quality: 0.8, onFront: true },
        { label: "base", cost: 3.9e6, quality: 0, onFront: false },
      ],
    });
    const ticks = [...svg.matchAll(/text-anchor="(?:end|middle)">(-?[\d.e+]+)<\/text>/g)].map(([, value]) => Number(value));
    assert.ok(ticks.length > 4);
    assert.ok(ticks.every((tick) => tick >= 0), `ticks ${ticks.join(", ")}`);
    assert.ok(!svg.includes("log scale"), "a factor under ten stays linear");
  });

  test("labels of crowded points do not overlap one another or the legend", () => {
    // Six models within a pixel or two of each other beside one far away.
    const crowded = [
      ...Array.from({ length: 6 }, (_, index) => ({ label: `model-${index}:q4_0`, cost: 100 + index * 0.1, quality: 50 + index * 0.01, onFront: index % 2 === 0 })),
      { label: "far", cost: 200, quality: 90, onFront: false },
    ];
    for (const points of [family, crowded]) {
      const svg = renderFrontChart({ title: "t", cost: { title: "x" }, quality: { title: "y" }, points });
      const boxes = labelBoxes(svg);
      assert.equal(boxes.length, points.length);
      for (const [index, a] of boxes.entries()) {
        assert.ok(a.left >= 0 && a.right <= 720, `${a.label} inside the chart`);
        assert.ok(!(a.right > 720 - 150 + 8 && a.top < 44 + 36), `${a.label} clear of the legend`);
        for (const b of boxes.slice(index + 1)) {
          const overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
          assert.ok(!overlap, `${a.label} and ${b.label} overlap`);
        }
      }
    }
    // Most of the six labels move away from their points, each tied back by a line.
    const svg = renderFrontChart({ title: "t", cost: { title: "x" }, quality: { title: "y" }, points: crowded });
    assert.ok((svg.match(/<line x1="[\d.]+" y1="[\d.]+" x2="[\d.]+" y2="[\d.]+" stroke="#(?:1f6fb4|bbbbbb)" stroke-width="0.8"\/>/g) ?? []).length >= 2);
  });
});

describe("logTicks", () => {
  test("1, 2, 5 steps over a few decades, powers of ten over more, covering the values", () => {
    assert.deepEqual(logTicks([37, 226]), [20, 50, 100, 200, 500]);
    assert.deepEqual(logTicks([1.5e6, 42.6e6]), [1e6, 2e6, 5e6, 1e7, 2e7, 5e7]);
    assert.deepEqual(logTicks([3, 40_000]), [1, 10, 100, 1000, 10_000, 100_000]);
    assert.deepEqual(logTicks([]), [1, 10]);
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
