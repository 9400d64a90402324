import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { runCli } from "../src/index.js";

export { waitUntil } from "@superspreader/contract-tests";

/** The test redis-server's URL; a missing URL fails the test rather than skipping it. */
export function redisUrl(): string {
  const url = process.env.SUPERSPREADER_REDIS_URL;
  if (!url) throw new Error("SUPERSPREADER_REDIS_URL is not set: run the tests through the root vitest config (it starts redis-server)");
  return url;
}

/** A key prefix or queue name no other test uses. */
export function unique(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

export const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
export const CONFIG_MODULE = fileURLToPath(new URL("./fixtures/app.ts", import.meta.url));

/** What one CLI run printed, and its exit code. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON (fails the test when it is not). */
  json<T = Record<string, any>>(): T;
}

/** Runs the CLI in-process with captured output; `env` adds to the test's Redis URL and prefix. */
export async function cli(args: readonly string[], env: Record<string, string | undefined> = {}, tty = false): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(args, {
    stdout: { write: (chunk: string) => (stdout += chunk), isTTY: tty },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    env: { REDIS_URL: redisUrl(), USER: "tester", ...env },
    cwd: PACKAGE_DIR,
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}
