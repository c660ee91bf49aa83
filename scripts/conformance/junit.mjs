// Reads pytest's JUnit XML (--junitxml) into one outcome per test. pytest's XML is regular: flat
// <testcase> elements whose text is entity-escaped, so a few patterns read it without a parser.

const ENTITIES = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function unescapeXml(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (whole, entity) => {
    if (entity[0] === "#") {
      const code = entity[1] === "x" || entity[1] === "X" ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[entity] ?? whole;
  });
}

function attributes(text) {
  return Object.fromEntries([...text.matchAll(/([\w:-]+)="([^"]*)"/g)].map((match) => [match[1], unescapeXml(match[2])]));
}

/**
 * @typedef {object} TestOutcome
 * @property {string} id       `test_file::test_name[params]`
 * @property {string} file     `test_file`
 * @property {"passed" | "failed" | "error" | "skipped"} outcome
 * @property {string} message  the failure's, error's or skip's message ("" when passed)
 * @property {string} output   captured stdout and stderr (with `-o junit_logging=all`)
 */

const RANK = { passed: 0, skipped: 1, error: 2, failed: 3 };

/**
 * One outcome per test from a JUnit XML document. A test reported twice (a failed call, then an
 * error in teardown) keeps its worst outcome; a file that did not import is one `error`.
 *
 * @param {string} xml
 * @returns {TestOutcome[]}
 */
export function parseJunit(xml) {
  /** @type {Map<string, TestOutcome>} */
  const byId = new Map();
  for (const match of xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const { classname = "", name = "" } = attributes(match[1]);
    const body = match[2] ?? "";
    // classname is `unit.test_file` (or `unit.test_file.TestClass`); a file that did not import
    // comes as classname "" and name `unit.test_file`.
    const parts = (classname || name).split(".");
    const file = parts.find((part) => part.startsWith("test_")) ?? parts.join(".");
    const inner = classname ? [...parts.slice(parts.indexOf(file) + 1), name] : ["(collection)"];
    const id = [file, ...inner].join("::");
    const child = body.match(/<(failure|error|skipped)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/);
    const outcome = child === null ? "passed" : child[1] === "failure" ? "failed" : child[1];
    const message = child === null ? "" : attributes(child[2]).message ?? unescapeXml(child[3] ?? "").split("\n")[0];
    const output = [...body.matchAll(/<system-(?:out|err)>([\s\S]*?)<\/system-(?:out|err)>/g)].map((part) => unescapeXml(part[1])).join("\n");
    const previous = byId.get(id);
    if (previous === undefined || RANK[outcome] > RANK[previous.outcome]) {
      byId.set(id, { id, file, outcome, message, output: previous ? `${previous.output}\n${output}` : output });
    } else {
      previous.output += `\n${output}`;
    }
  }
  return [...byId.values()];
}
