// A validation issue's path (zod's `issue.path`) as a reader writes it, and the value it points at.

/** `a.b[0].c` from `["a", "b", 0, "c"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`), "");
}

/** The value at `path` inside `value`; undefined where the path leaves the objects. */
export function valueAtPath(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
