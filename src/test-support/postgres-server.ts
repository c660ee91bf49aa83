import { execFile } from "node:child_process";
import { chownSync, existsSync, readdirSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../bench/server-process.js";
import { openPostgresDatabase } from "../store/postgres-database.js";

const run = promisify(execFile);

/** A throwaway PostgreSQL server, for tests. */
export interface TestPostgres {
  /** `postgres://grove@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  /** Creates an empty database and returns its URL (one per test keeps tests apart). */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

const INSTALL_HINT = "install Debian's package with `apt-get install -y postgresql` (or set GROVE_TEST_PG_BIN to the folder holding initdb and pg_ctl)";

/** The folder holding initdb, pg_ctl and postgres: GROVE_TEST_PG_BIN, Debian's newest, or PATH. */
function findBinaries(): string {
  const candidates: string[] = [];
  if (process.env.GROVE_TEST_PG_BIN) candidates.push(process.env.GROVE_TEST_PG_BIN);
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((version) => join(debian, version, "bin")));
  }
  candidates.push(...(process.env.PATH ?? "").split(":").filter(Boolean));
  const found = candidates.find((dir) => ["initdb", "pg_ctl", "postgres"].every((tool) => existsSync(join(dir, tool))));
  if (!found) throw new Error(`PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: ${INSTALL_HINT}`);
  return found;
}

/**
 * PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (which
 * Debian's package creates) and owns its temp folder; otherwise as the current user.
 */
async function serverUser(): Promise<{ uid: number; gid: number; prefix: string[] } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    return { uid, gid, prefix: ["runuser", "-u", "postgres", "--"] };
  } catch {
    throw new Error(`Running as root and no 'postgres' user exists to run the PostgreSQL server: ${INSTALL_HINT}`);
  }
}

/**
 * Starts a fresh PostgreSQL server in a temp folder: `initdb` (trust authentication, user
 * `grove`), then `pg_ctl start` on 127.0.0.1 at a free port with its unix socket in the temp
 * folder. Fails with the Debian package to install when the binaries are missing.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = findBinaries();
  const user = await serverUser();
  const directory = await mkdtemp(join(tmpdir(), "grove-pg-"));
  if (user) chownSync(directory, user.uid, user.gid);
  const as = async (tool: string, args: string[]) => {
    const [command, ...rest] = [...(user?.prefix ?? []), join(bin, tool), ...args];
    return run(command!, rest, { cwd: directory, timeout: 60_000 });
  };
  const data = join(directory, "data");
  const log = join(directory, "server.log");
  try {
    await as("initdb", ["-D", data, "-U", "grove", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const settings = `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      try {
        await as("pg_ctl", ["-D", data, "-l", log, "-o", settings, "-w", "-t", "60", "start"]);
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
    const url = `postgres://grove@127.0.0.1:${port}/postgres`;
    return {
      url,
      async createDatabase(name: string) {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`Not a plain database name: ${name}`);
        const database = await openPostgresDatabase(url);
        try {
          await database.query(`CREATE DATABASE ${name}`);
        } finally {
          await database.close();
        }
        return `postgres://grove@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
        await rm(directory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    const serverLog = await readFile(log, "utf8").catch(() => "");
    await as("pg_ctl", ["-D", data, "-m", "immediate", "stop"]).catch(() => undefined);
    await rm(directory, { recursive: true, force: true });
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`Could not start a test PostgreSQL server: ${message}${serverLog ? `\n${serverLog.slice(-2000)}` : ""}`, { cause: error });
  }
}
