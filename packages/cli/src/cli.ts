#!/usr/bin/env node
import { runCli } from "./run.js";

// Exit explicitly once the output is flushed: a --config module may hold open connections (queues, pools).
void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }).then((code) => {
  process.stdout.write("", () => process.exit(code));
});
