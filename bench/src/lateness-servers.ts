/**
 * redis-server with a chosen `hz` for the ceiling and lateness benchmarks. scripts/servers
 * starts Redis with the test suite's settings; these benchmarks compare settings (Redis's
 * default `hz 10` against `hz 100`), so each starts its own, on a free loopback port in a
 * temporary directory, and always stops it (never a server given by URL: the benchmarks
 * FLUSHALL between measurements).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../../scripts/servers/servers.js";

export interface HzRedis {
  readonly url: string;
  readonly port: number;
  readonly hz: number;
  stop(): Promise<void>;
}

/** True once redis-server answers PING on `port`. */
async function answers(port: number): Promise<boolean> {
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    await client.connect();
    return (await client.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Starts `redis-server --hz <hz>` (no persistence) on a free 127.0.0.1 port. */
export async function startRedisWithHz(hz: number): Promise<HzRedis> {
  const dir = mkdtempSync(join(tmpdir(), "ss-bench-redis-"));
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--hz", String(hz)],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!(await answers(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server --hz ${hz} on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`redis (hz ${hz}): redis://127.0.0.1:${port} (started)`);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    hz,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
