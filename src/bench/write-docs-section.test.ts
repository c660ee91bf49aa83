import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { replaceDocsSection, RESULTS_END, RESULTS_START } from "./write-docs-section.js";

describe("replaceDocsSection", () => {
  test("appends the marked section to a document without one", () => {
    const document = replaceDocsSection("# Benchmarks\n\nHow to reproduce.\n", "## Run 1");
    assert.equal(document, `# Benchmarks\n\nHow to reproduce.\n\n${RESULTS_START}\n\n## Run 1\n\n${RESULTS_END}\n`);
  });

  test("replaces only what lies between the markers", () => {
    const first = replaceDocsSection("# Benchmarks\n", "## Run 1");
    const second = replaceDocsSection(`${first}\nNotes after.\n`, "## Run 2");
    assert.ok(second.includes("## Run 2"));
    assert.ok(!second.includes("## Run 1"));
    assert.ok(second.startsWith("# Benchmarks\n"));
    assert.ok(second.endsWith("\nNotes after.\n"));
  });
});
