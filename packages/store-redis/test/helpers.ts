import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll } from "vitest";

/** The loopback redis-server started by the root global setup. Missing is a failure, never a skip. */
export function redisUrl(): string {
  const url = process.env.SUPERSPREADER_REDIS_URL;
  if (!url) throw new Error("SUPERSPREADER_REDIS_URL is not set: run the tests through the root vitest config (it starts redis-server)");
  return url;
}

/** A key prefix no other test uses, so tests never need to flush the server. */
export function randomPrefix(): string {
  return `ss-test-${randomUUID()}`;
}

const opened: Redis[] = [];
afterAll(() => {
  for (const client of opened.splice(0)) client.disconnect();
});

/** A client closed after the test file; `protocol: 2` gives ioredis 5's wire behaviour. */
export function newClient(options: { protocol?: 2 | 3 } = {}): Redis {
  const client = new Redis(redisUrl(), options);
  opened.push(client);
  return client;
}

/** Every key under the prefix, found with SCAN (never KEYS on a shared server). */
export async function scanKeys(client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys.sort();
}

/**
 * Runs `action` and returns the commands this client's connections sent that mention
 * `marker` (commands a Lua script runs inside the server are not counted). Uses
 * MONITOR, and ends with an ECHO of a sentinel so no sleep is needed: once the
 * sentinel shows up, everything sent before it has been seen.
 */
export async function countCommands(client: Redis, marker: string, action: () => Promise<unknown>): Promise<string[][]> {
  const monitor = await client.monitor();
  const seen: string[][] = [];
  const sentinel = `${marker}:sentinel:${randomUUID()}`;
  try {
    const done = new Promise<void>((resolve) => {
      monitor.on("monitor", (_time: string, args: string[], source: string) => {
        if (args.includes(sentinel)) resolve();
        else if (!source.includes("lua") && args.some((a) => a.includes(marker))) seen.push(args);
      });
    });
    await action();
    await client.echo(sentinel);
    await done;
    return seen;
  } finally {
    monitor.disconnect();
  }
}
