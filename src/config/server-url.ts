/**
 * Where a running Grove is, for the CLI commands that talk to one (`grove run`), read as Ollama
 * reads `OLLAMA_HOST` (envconfig `Host`): `GROVE_HOST` may be a host (`127.0.0.1`), a host and
 * port (`127.0.0.1:11434`, `[::1]:11434`) or a URL (`http://gpu-box:11434`, `https://grove.example`).
 * Without a port, a bare host takes `GROVE_PORT` (default 11435) and a URL its scheme's port.
 */
export interface ServerTarget {
  /** The server's root, e.g. `http://127.0.0.1:11435` (no trailing slash). */
  readonly url: string;
  /** True when `GROVE_HOST`, `GROVE_PORT` or a flag named the server: then it must answer. */
  readonly explicit: boolean;
}

/** The default port of `grove serve` (`GroveConfig.port`). */
export const DEFAULT_PORT = 11435;

/** A `GROVE_HOST` value taken apart. */
export interface HostSetting {
  /** The host name or address, IPv6 without brackets. */
  readonly host: string;
  /** The port written in the value, if any. */
  readonly port?: number;
  /** The scheme written in the value, if any. */
  readonly scheme?: "http" | "https";
}

/**
 * Splits `[scheme://]host[:port][/]`. A value without either part comes back as it is, so
 * `grove serve --host ::` (a bare IPv6 address) keeps working.
 * @returns undefined for a scheme other than http(s) or a port outside 1–65535
 */
export function parseHostSetting(value: string): HostSetting | undefined {
  let rest = value.trim();
  let scheme: HostSetting["scheme"];
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (schemeMatch) {
    const name = schemeMatch[1]!.toLowerCase();
    if (name !== "http" && name !== "https") return undefined;
    scheme = name;
    rest = rest.slice(schemeMatch[0].length);
  }
  rest = rest.replace(/\/+$/, "");
  // [v6]:port, [v6], host:port — a bare v6 address has several colons and no brackets.
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d+))?$/i.exec(rest);
  const hostPort = /^([^:[\]]*):(\d+)$/.exec(rest);
  const host = bracketed?.[1] ?? hostPort?.[1] ?? rest;
  const portText = bracketed?.[2] ?? hostPort?.[2];
  if (portText === undefined) return { host, ...(scheme === undefined ? {} : { scheme }) };
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port, ...(scheme === undefined ? {} : { scheme }) };
}

/**
 * The Grove a client should talk to: `hostFlag` (e.g. `grove run --host`), else `GROVE_HOST`,
 * else `127.0.0.1`; a wildcard bind (`0.0.0.0`, `::`) is reached on loopback.
 * @returns undefined when the value is not a host, host:port or http(s) URL
 */
export function serverTarget(options: { hostFlag?: string; env?: NodeJS.ProcessEnv } = {}): ServerTarget | undefined {
  const env = options.env ?? process.env;
  const raw = options.hostFlag ?? (env.GROVE_HOST === "" ? undefined : env.GROVE_HOST);
  const envPort = env.GROVE_PORT === undefined || env.GROVE_PORT === "" ? undefined : Number(env.GROVE_PORT);
  if (envPort !== undefined && (!Number.isInteger(envPort) || envPort < 1 || envPort > 65535)) return undefined;
  const setting = raw === undefined ? { host: "127.0.0.1" } : parseHostSetting(raw);
  if (setting === undefined || setting.host === "") return undefined;
  const scheme = setting.scheme ?? "http";
  const port = setting.port ?? (setting.scheme === undefined ? (envPort ?? DEFAULT_PORT) : undefined);
  const host = setting.host === "0.0.0.0" ? "127.0.0.1" : setting.host === "::" ? "::1" : setting.host;
  const shown = host.includes(":") ? `[${host}]` : host;
  return { url: `${scheme}://${shown}${port === undefined ? "" : `:${port}`}`, explicit: raw !== undefined || envPort !== undefined };
}
