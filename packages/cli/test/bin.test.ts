import { execFile } from "node:child_process";
import { createMemoryIdSource, createSuperSpreader } from "@superspreader/core";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_DIR, redisUrl, unique, waitUntil } from "./helpers.js";

/**
 * Runs the real bin in a child process, through tsx with workspace packages resolved to their sources
 * (no build needed); a process of its own shows it exits by itself, even with a --config module's
 * connections open.
 */
function bin(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--conditions", "@superspreader/source", "src/cli.ts", ...args],
      { cwd: PACKAGE_DIR, env: { PATH: process.env.PATH ?? "", USER: "ops", ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const client = new Redis(redisUrl(), { maxRetriesPerRequest: null });
const closing: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of closing.reverse()) await close();
  client.disconnect();
});

describe("the superspreader bin", () => {
  it("resumes a paused backfill with only --redis-url while a BullMQ worker runs: the worker's watchdog enqueues the tick", async () => {
    const prefix = unique("cli-bin");
    const queueName = unique("cli-bin-q");
    // The app's worker side: a BullMQ queue and worker, the Redis store, one backfill of 100 batches at 20/s (5 s of work).
    const queue = createBullMQJobQueue({ connection: client, queueName, onError: () => {} });
    const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client, prefix }) });
    spreader.define("demo", {
      source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
      config: { batchSize: 10, duration: 1, perSecondOnPeak: 20, perSecondOffPeak: 20 },
      handle: async () => {},
    });
    const worker = await runBullMQWorker({ spreader, connection: client, queueName, concurrency: 4, watchdogIntervalMs: 1_000, onError: () => {} });
    closing.push(() => queue.close(), () => worker.close());
    // Paused at once, however loaded the machine: only the bin's resume can make it finish.
    await spreader.start("demo");
    await spreader.pause("demo", { actor: "ops" });

    // The operator's side: the bin with a Redis URL and the prefix, no --config, no queue.
    const connect = ["--redis-url", redisUrl(), "--prefix", prefix];
    const before = JSON.parse((await bin(["status", "demo", "--json", ...connect])).stdout);
    expect(before).toMatchObject({ status: "paused", watchdog: { revivals: 0 } });

    const resumed = await bin(["resume", "demo", ...connect]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toBe("demo: paused → running; a worker's watchdog enqueues its tick within seconds\n");
    await waitUntil("demo to complete", async () => (await spreader.status("demo")).status === "completed", 30_000);

    const status = await bin(["status", "demo", "--json", ...connect]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      status: "completed",
      ids: { total: "1000", done: "1000" },
      watchdog: { revivals: 1, lastReason: expect.stringMatching(/^tick job demo\.\w+\.t\d+\.e1 is missing/) },
    });
    const history = JSON.parse((await bin(["config", "get", "demo", "--json", ...connect])).stdout).history;
    expect(history[0]).toMatchObject({ actor: "cli:ops", changes: { status: { from: "paused", to: "running" } } });
  }, 60_000);

  it("runs as a process: JSON output, exit codes, and a TypeScript --config module", async () => {
    const prefix = unique("cli-bin");
    const queueName = unique("cli-bin-q");
    const env = { REDIS_URL: redisUrl(), SUPERSPREADER_PREFIX: prefix };
    const viaConfig = { SUPERSPREADER_REDIS_URL: redisUrl(), CLI_TEST_PREFIX: prefix, CLI_TEST_QUEUE: queueName };

    // No worker: --config gives the bin the app's queue, so the first run starts at once.
    const started = await bin(["start", "refunds", "--new", "--json", "--config", "test/fixtures/app.ts"], viaConfig);
    expect(started.stderr).toBe("");
    expect(JSON.parse(started.stdout)).toMatchObject({ name: "refunds", started: true, status: "running" });

    const status = await bin(["status", "refunds", "--json"], env);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: "refunds", status: "running", ids: { total: "1000", done: "0" } });

    const missing = await bin(["status", "refundz"], env);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('backfill "refundz" not found: no backfill of that name is stored; did you mean `refunds`?');

    const listed = await bin(["list", "--json", "--config", "test/fixtures/app.ts"], viaConfig);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).backfills).toEqual([expect.objectContaining({ name: "refunds", status: "running" })]);
  }, 60_000);
});
