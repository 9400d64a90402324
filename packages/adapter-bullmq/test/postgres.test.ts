import { describeJobQueueContract, describeWorkerContract, serveChildWorker } from "@superspreader/contract-tests";
import type { BatchJobData, QueueJob } from "@superspreader/core";
import { Queue, createPostgresBackend } from "bullmq";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import type { BullMQWorkerOptions } from "../src/index.js";
import { forkWorker, uniqueQueueName } from "./helpers.js";
import { createTestDatabase, openPool } from "./postgres.js";

// BullMQ's PostgreSQL backend keeps every queue in one schema of a database: a database of this
// file's own keeps its tables (and their sequences) apart from any other run.
// Created here rather than in the tests: CREATE DATABASE takes seconds on a loaded machine.
const database = await createTestDatabase("contract");
const unmigrated = await createTestDatabase("unmigrated", false);
afterAll(() => Promise.all([database.drop(), unmigrated.drop()]));

/** A plain BullMQ queue to inspect with; it opens (and closes) a pool of its own. */
function inspect(queueName: string): Queue {
  return new Queue(queueName, { connection: { connectionString: database.url, max: 2 } }, createPostgresBackend) as unknown as Queue;
}

/** Obliterates the queue (BullMQ's own cleanup on PostgreSQL) and ends the pool. */
async function cleanupQueue(pool: pg.Pool, queueName: string): Promise<void> {
  const inspector = inspect(queueName);
  await inspector.obliterate({ force: true });
  await inspector.close();
  await pool.end();
}

describeJobQueueContract("bullmq on PostgreSQL", async () => {
  const pool = openPool(database.url);
  const queueName = uniqueQueueName("contract");
  return {
    queue: createBullMQJobQueue({ connection: pool, queueName, backoff: { type: "fixed", delayMs: 100 }, onError: () => {} }),
    startWorker: (spreader) => runBullMQWorker({ spreader, connection: pool, queueName, onError: () => {} }).then((w) => ({ stop: w.close })),
    cleanup: () => cleanupQueue(pool, queueName),
  };
});

const TIMINGS = { lockDurationMs: 1_000, stalledIntervalMs: 300 };

describeWorkerContract(
  "bullmq on PostgreSQL",
  async () => {
    const pool = openPool(database.url, 6);
    const queueName = uniqueQueueName("worker-contract");
    return {
      queue: createBullMQJobQueue({ connection: pool, queueName, backoff: { type: "fixed", delayMs: 100 }, onError: () => {} }),
      startWorker: (spreader, options) => runBullMQWorker({ spreader, connection: pool, queueName, ...TIMINGS, ...options, onError: () => {} }),
      startKillableWorker: (spreader, options) =>
        serveChildWorker(
          forkWorker("contract-worker", [queueName, String(TIMINGS.lockDurationMs), String(TIMINGS.stalledIntervalMs), database.url]),
          spreader,
          options,
        ),
      cleanup: () => cleanupQueue(pool, queueName),
    };
  },
  { stallLimit: 1 },
);

function job(id: string, extra: Partial<QueueJob> = {}, beginId = "1"): QueueJob {
  const data: BatchJobData = { kind: "batch", backfill: "q", runId: "r1", cycle: 0, beginId, endId: "100" };
  return { id, runAt: Date.now(), attempts: 1, priority: 5, data, ...extra };
}

describe("createBullMQJobQueue on PostgreSQL", () => {
  it("counts duplicates with one statement per chunk, keeps the stored data, and stores each job due at exactly its runAt", async () => {
    const pool = openPool(database.url);
    const queueName = uniqueQueueName("pg-queue");
    const queue = createBullMQJobQueue({ connection: pool, queueName, chunkSize: 3, onError: () => {} });
    const inspector = inspect(queueName);
    try {
      const runAt = Date.now() + 60_000;
      expect(await queue.enqueue([job("a", { runAt }, "1"), job("b", { runAt }, "2")])).toEqual({ added: 2, duplicates: 0 });
      const again = ["a", "b", "c", "c", "d", "e", "f"].map((id) => job(id, { runAt }, "999"));
      expect(await queue.enqueue(again)).toEqual({ added: 4, duplicates: 3 });
      expect((await inspector.getJob("a"))?.data).toMatchObject({ beginId: "1" });
      expect((await inspector.getJob("f"))?.data).toMatchObject({ beginId: "999" });
      const stored = await inspector.getJob("a");
      expect((stored?.timestamp ?? 0) + (stored?.delay ?? 0)).toBe(runAt);
      expect(await queue.counts()).toEqual({ waiting: 0, delayed: 6, active: 0, failed: 0 });
      expect(await queue.lookup(["f", "nope", "a"])).toEqual(["delayed", "missing", "delayed"]);
    } finally {
      await queue.close();
      await inspector.obliterate({ force: true });
      await inspector.close();
      await pool.end();
    }
  });

  it("says what to do when the pool's search_path misses BullMQ's schema, or the schema was never migrated", async () => {
    const plain = new pg.Pool({ connectionString: database.url, max: 2 });
    const empty = openPool(unmigrated.url, 2);
    try {
      const queue = createBullMQJobQueue({ connection: plain, queueName: uniqueQueueName("path"), onError: () => {} });
      await expect(queue.enqueue([job("x")])).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        field: "connection",
        message: expect.stringContaining('options: "-c search_path=bullmq"'),
      });
      await queue.close();
      const spreader = { perform: async () => "done" as const, watchdog: async () => [] };
      await expect(runBullMQWorker({ spreader, connection: plain, queueName: uniqueQueueName("path"), onError: () => {}, log: "quiet" })).rejects.toMatchObject({
        field: "connection",
      });
      const fresh = createBullMQJobQueue({ connection: empty, queueName: uniqueQueueName("fresh"), onError: () => {} });
      await expect(fresh.counts()).rejects.toMatchObject({ code: "INVALID_STATE", message: expect.stringContaining("runMigrations") });
      await fresh.close();
    } finally {
      await plain.end();
      await empty.end();
    }
  });

  it("rejects Redis-only options and unusable pools, naming the field and value", async () => {
    const pool = openPool(database.url);
    const single = openPool(database.url, 1);
    const client = new pg.Client({ connectionString: database.url });
    try {
      expect(() => createBullMQJobQueue({ connection: pool, prefix: "{bf}" })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", field: "prefix", message: expect.stringContaining('"{bf}"') }),
      );
      const spreader = { perform: async () => "done" as const, watchdog: async () => [] };
      const worker = (extra: Partial<BullMQWorkerOptions>) => runBullMQWorker({ spreader, connection: pool, onError: () => {}, ...extra });
      await expect(worker({ prefix: "bull" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "prefix" });
      // The worker holds one client for LISTEN; with the other one taken it would wait forever.
      await expect(worker({ connection: single })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        field: "connection",
        message: expect.stringContaining("got max 1"),
      });
      // A producer needs no LISTEN client: a pool of one is fine for it.
      await createBullMQJobQueue({ connection: single, onError: () => {} }).close();
      // A single pg.Client is not a pool: BullMQ's backend needs a Pool (a LISTEN client and query clients).
      expect(() => createBullMQJobQueue({ connection: client as unknown as pg.Pool })).toThrow(
        expect.objectContaining({ field: "connection", message: expect.stringContaining("or a pg Pool") }),
      );
    } finally {
      await pool.end();
      await single.end();
    }
  });
});
