import { spawn } from "node:child_process";
import { once } from "node:events";

/**
 * A program run in a real pseudo-terminal, for tests of what a user at a terminal sees. util-linux
 * `script` (Debian's bsdutils, an essential package, so present wherever CI runs) gives the child
 * a pty: what the test writes arrives as keys, what the program draws comes back. No native
 * module (node-pty) to build.
 */
export interface Terminal {
  /** Types keys: text, `\r` for Enter, {@link KEYS} for the others. */
  send(keys: string): void;
  /** Everything drawn so far, escape sequences and carriage returns removed. */
  screen(): string;
  /**
   * Resolves with the screen once `pattern` matches the part drawn after `from` (a length of
   * {@link screen}); rejects with the screen after `timeoutMs`.
   */
  waitFor(pattern: RegExp, options?: { from?: number; timeoutMs?: number }): Promise<string>;
  /** Resolves with the exit code once the program ends. */
  readonly exited: Promise<number>;
  /** Ends the program (SIGKILL to `script`'s process group). */
  kill(): void;
}

/** Keys as a terminal sends them. */
export const KEYS = { up: "\x1b[A", down: "\x1b[B", enter: "\r", ctrlC: "\x03", ctrlD: "\x04" } as const;

/** Removes what only moves the cursor or colours text, and carriage returns. */
export function stripTerminal(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\x1b[=>]/g, "").replace(/\r/g, "");
}

/**
 * Runs `argv` in a terminal of `columns` × `rows`, with exactly `env` as its environment.
 * @example
 * const term = openTerminal([process.execPath, GROVE_BIN, "run", "chat:f16"], cleanEnvironment({ GROVE_HOME: home }));
 * await term.waitFor(/>>> $/);
 */
export function openTerminal(argv: readonly string[], env: NodeJS.ProcessEnv, size = { columns: 120, rows: 40 }): Terminal {
  const quoted = argv.map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qfec", `stty cols ${size.columns} rows ${size.rows}; exec ${quoted}`, "/dev/null"], {
    stdio: ["pipe", "pipe", "pipe"],
    env,
    detached: true,
  });
  let raw = "";
  const waiters = new Set<() => void>();
  const drawn = (chunk: Buffer) => {
    raw += chunk.toString("utf8");
    for (const waiter of waiters) waiter();
  };
  child.stdout.on("data", drawn);
  child.stderr.on("data", drawn);
  const exited = once(child, "close").then(([code]) => {
    for (const waiter of waiters) waiter();
    return (code as number | null) ?? -1;
  });
  let done = false;
  void exited.then(() => (done = true));
  const screen = () => stripTerminal(raw);
  return {
    send: (keys) => void child.stdin.write(keys),
    screen,
    exited,
    kill: () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    },
    waitFor(pattern, options = {}) {
      const from = options.from ?? 0;
      return new Promise((resolve, reject) => {
        const check = () => {
          const text = screen();
          if (pattern.test(text.slice(from))) {
            finish();
            resolve(text);
          } else if (done) {
            finish();
            reject(new Error(`the program ended before ${pattern} was drawn:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${pattern} was not drawn in ${options.timeoutMs ?? 30_000} ms:\n${screen()}`));
        }, options.timeoutMs ?? 30_000);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
