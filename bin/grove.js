#!/usr/bin/env node
import { main } from "../dist/cli/main.js";

// A reader that stops early (`grove ls --json | head -1`) closes the pipe: stop quietly, as Unix
// tools do, rather than crash on the unhandled EPIPE of the next write.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
