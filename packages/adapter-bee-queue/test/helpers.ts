import { fork, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import type { JobData, QueueJob } from "@superspreader/core";
import { afterAll, afterEach, beforeAll } from "vitest";

export { waitUntil } from "@superspreader/contract-tests";

/** The test Redis, started by the root vitest global setup. Missing means a broken setup: fail, never skip. */
export function redisUrl(): string {
  const url = process.env.SUPERSPREADER_REDIS_URL;
  if (!url) throw new Error("SUPERSPREADER_REDIS_URL is not set: run the tests through the root vitest config (it starts redis-server)");
  return url;
}

/** A queue name no other test uses, so tests never share keys. */
export function uniqueName(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A batch job for tests. */
export function batchJob(id: string, overrides: Partial<QueueJob> = {}, begin = "1", end = "10"): QueueJob {
  const data: JobData = { kind: "batch", backfill: "bf", runId: "run1", cycle: 0, beginId: begin, endId: end };
  return { id, runAt: 0, data, attempts: 1, ...overrides };
}

/** A raw ioredis client to look at Bee-Queue's keys directly. */
export function rawRedis(): Redis {
  return new Redis(redisUrl(), { lazyConnect: false });
}

/** The stored Bee-Queue record of a job (`{ data, options, status }`), or null. */
export async function storedJob(redis: Redis, prefix: string, queueName: string, id: string): Promise<Record<string, unknown> | null> {
  const raw = await redis.hget(`${prefix}:${queueName}:jobs`, id);
  return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
}

/** Deletes every key of a test queue. */
export async function dropKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/**
 * Runs a TypeScript fixture in a child Node process through tsx, resolving
 * workspace packages to their sources (the `@superspreader/source` condition),
 * so the child needs no build. Lines the child prints go to `onLine`.
 */
export function spawnFixture(fixture: string, env: Record<string, string>, onLine: (line: string) => void): ChildProcess {
  const script = fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url));
  // --import resolves "tsx" from the working directory: this package, which has it.
  const child = spawn(process.execPath, ["--conditions=@superspreader/source", "--import", "tsx", script], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let buffer = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      onLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
  });
  return child;
}

/** Forks a TypeScript fixture through tsx with an IPC channel (for the worker contract's child workers). */
export function forkWorker(fixture: string, args: readonly string[]): ChildProcess {
  return fork(fileURLToPath(new URL(`./fixtures/${fixture}.ts`, import.meta.url)), [...args], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    execArgv: ["--conditions=@superspreader/source", "--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/** Resolves when the child has exited. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Per-file fixtures: a key prefix of its own, a raw Redis client, and a list of
 * things to close after each test (closed in reverse order).
 */
export function useQueueFixtures(label: string) {
  const fixtures = {
    prefix: uniqueName(label),
    toClose: [] as Array<{ close(): Promise<unknown> }>,
    redis: undefined as unknown as Redis,
  };
  beforeAll(() => {
    fixtures.redis = rawRedis();
  });
  afterEach(async () => {
    for (const item of fixtures.toClose.splice(0).reverse()) await item.close();
  });
  afterAll(async () => {
    await dropKeys(fixtures.redis, `${fixtures.prefix}:*`);
    fixtures.redis.disconnect();
  });
  return fixtures;
}
