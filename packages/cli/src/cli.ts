#!/usr/bin/env node
import { runCli } from "./run.js";

// Ctrl-C or SIGTERM stops a command that waits (repair waiting for a worker) or serves; a second one exits at once.
const interrupted = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted.abort();
    process.once(signal, () => process.exit(130));
  });
}

// Exit explicitly once the output is flushed: a --config module may hold open connections (queues, pools).
void runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: interrupted.signal,
}).then((code) => {
  process.stdout.write("", () => process.exit(code));
});
