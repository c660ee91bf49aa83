/** `postgres://user:***@host:port/db`, `redis://…`: a URL as it may appear in a message, its password hidden. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(an unparsable URL)";
  }
}
