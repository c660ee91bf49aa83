import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AdapterTurns } from "./adapter-sets.js";
import { adapterSetKey } from "./decode-protocol.js";

describe("adapterSetKey", () => {
  test("names a set by its adapters and scales, in any order; scale 0 is the bare base", () => {
    const a = { key: "/a.gguf", scale: 1 };
    const b = { key: "/b.gguf", scale: 0.5 };
    assert.equal(adapterSetKey([a, b]), adapterSetKey([b, a]));
    assert.notEqual(adapterSetKey([a]), adapterSetKey([{ ...a, scale: 0.5 }]));
    assert.equal(adapterSetKey([{ ...a, scale: 0 }]), "");
    assert.equal(adapterSetKey(undefined), "");
  });
});

describe("AdapterTurns", () => {
  test("a set keeps the turn for turnMs while others wait, then each waiting set gets one in turn", () => {
    const turns = new AdapterTurns(20);
    const picks: string[] = [];
    for (let now = 0; now < 200; now += 5) picks.push(turns.next(["x", "y", "z"], now)!);
    // 4 steps of 5 ms per turn, cycling x → y → z → x.
    assert.deepEqual(picks.slice(0, 13), ["x", "x", "x", "x", "y", "y", "y", "y", "z", "z", "z", "z", "x"]);
    const counts = Object.fromEntries(["x", "y", "z"].map((set) => [set, picks.filter((pick) => pick === set).length]));
    assert.ok(Math.max(...Object.values(counts)) - Math.min(...Object.values(counts)) <= 4, JSON.stringify(counts));
  });

  test("no set starves: one with many slots does not keep the turn past turnMs", () => {
    const turns = new AdapterTurns(10);
    const busy = Array(7).fill("many");
    const seen = new Set<string>();
    for (let now = 0; now < 40; now += 5) seen.add(turns.next([...busy, "one"], now)!);
    assert.deepEqual([...seen].sort(), ["many", "one"]);
  });

  test("a set alone keeps the turn; a set whose work ended passes it on at once", () => {
    const turns = new AdapterTurns(10);
    assert.equal(turns.next(["x"], 0), "x");
    assert.equal(turns.next(["x"], 1000), "x");
    assert.equal(turns.next(["y", "z"], 1001), "y");
    assert.equal(turns.next([], 1002), undefined);
  });
});
