import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { waitUntil } from "@superspreader/contract-tests";
import { Redis } from "ioredis";

export { waitUntil };

/** The test redis-server's URL; a missing URL fails the test rather than skipping it. */
export function redisUrl(): string {
  const url = process.env.SUPERSPREADER_REDIS_URL;
  if (!url) throw new Error("SUPERSPREADER_REDIS_URL is not set: run the tests through the root vitest config (it starts redis-server)");
  return url;
}

/** A worker-grade connection (BullMQ wants maxRetriesPerRequest: null for blocking use). */
export function connect(): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: null });
}

/** A queue name no other test uses. */
export function uniqueQueueName(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A child process running one of test/fixtures/*.ts, with the messages it sent. */
export interface ChildWorker {
  readonly child: ChildProcess;
  readonly messages: Array<Record<string, unknown>>;
  /** Resolves once the child sent a message matching `match`. */
  waitFor(what: string, match: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILLs the child and waits for it to be gone. */
  kill(): Promise<void>;
}

/**
 * Forks a TypeScript fixture through tsx with an IPC channel, resolving workspace packages to
 * their sources (the `@superspreader/source` condition), so no build is needed.
 */
export function forkWorker(name: string, args: readonly string[]): ChildProcess {
  return fork(fileURLToPath(new URL(`./fixtures/${name}.ts`, import.meta.url)), [...args], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    execArgv: ["--import", "tsx", "--conditions", "@superspreader/source"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/** Forks a fixture (see {@link forkWorker}) and collects the messages it sends. */
export function forkFixture(name: string, args: readonly string[]): ChildWorker {
  const child = forkWorker(name, args);
  const messages: Array<Record<string, unknown>> = [];
  child.on("message", (message) => messages.push(message as Record<string, unknown>));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    messages,
    async waitFor(what, match, timeoutMs = 20_000) {
      await waitUntil(`child ${name}: ${what}`, () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`child ${name} exited (${child.exitCode ?? child.signalCode}) while waiting for ${what}`);
        return messages.some(match);
      }, timeoutMs);
      return messages.find(match) as Record<string, unknown>;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
