/**
 * Self-healing on real servers (issue #8): each way a run used to lose a range or wait for a
 * human, made to happen on PostgreSQL, Redis and BullMQ with worker processes. Every scenario
 * must complete by itself, every id processed, no range left failed, nothing asked of a human.
 */
import { waitUntil } from "@superspreader/contract-tests";
import { batchJobId, tickJobId } from "@superspreader/core";
import type { SuperSpreader } from "@superspreader/core";
import { Queue } from "bullmq";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { forkTs, type TsChild } from "../src/child-process.js";
import { serverUrl } from "../src/env.js";
import {
  createHealSpreader,
  createHealTable,
  healCounts,
  healNames,
  startRestartablePostgres,
  startRestartableRedis,
  type HealNames,
} from "../src/heal.js";

const CONFIG = { batchSize: 200, duration: 2, perSecondOnPeak: 10, perSecondOffPeak: 10 };

describe("self-healing on real servers: every run completes by itself", () => {
  let pool: pg.Pool;
  let db: NodePgDatabase;
  let redis: Redis;
  const children: TsChild[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: serverUrl("SUPERSPREADER_PG_URL"), max: 4 });
    db = drizzle({ client: pool });
    redis = new Redis(serverUrl("SUPERSPREADER_REDIS_URL"), { maxRetriesPerRequest: null });
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.kill()));
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await pool?.end();
  });

  const worker = (names: HealNames, options: Record<string, unknown> = {}, urls = { redisUrl: serverUrl("SUPERSPREADER_REDIS_URL"), pgUrl: serverUrl("SUPERSPREADER_PG_URL") }) => {
    const child = forkTs(new URL("./fixtures/heal-process.ts", import.meta.url), ["worker", JSON.stringify(names), JSON.stringify({ ...urls, ...options })]);
    children.push(child);
    return child;
  };

  /** The test's own runtime over the scenario's queue and store (it runs no batches). */
  const observer = (names: HealNames, connection = redis, database = db) =>
    createHealSpreader(connection, database, names, async () => {
      throw new Error("the test process runs no batches");
    });

  const setUp = async (scenario: string, rows: number, config = CONFIG, database = db) => {
    const names = healNames(scenario, rows, config);
    await createHealTable(database, names);
    cleanups.push(async () => {
      await database.execute(sql`drop table if exists ${sql.identifier(names.table)}`);
    });
    return names;
  };

  const completes = async (spreader: SuperSpreader, names: HealNames, database = db, timeoutMs = 90_000) => {
    await waitUntil(
      `${names.backfill} to complete`,
      async () => {
        const { status } = await spreader.status(names.backfill);
        if (status === "failed" || status === "cancelled") throw new Error(`${names.backfill} ended ${status}`);
        return status === "completed";
      },
      timeoutMs,
    );
    const audit = await spreader.audit(names.backfill);
    expect(audit.gaps).toEqual([]);
    expect(audit.failed).toEqual([]);
    expect((await healCounts(database, names)).missing).toBe(0);
    return spreader.status(names.backfill);
  };

  it("BullMQ gives a batch up after stalls with its default maxStalledCount: reconciliation runs it again", async () => {
    const names = await setUp("stall-limit", 20_000);
    // Range 10,001..10,200 sleeps on its first two runs: each time, the process running it is killed.
    const slow = { beginId: "10001", times: 2, ms: 120_000 };
    const workers = [worker(names, { slow }), worker(names, { slow })];
    await Promise.all(workers.map((w) => w.ready));
    const spreader = observer(names);
    await spreader.start(names.backfill);
    for (let kill = 0; kill < 2; kill++) {
      // The process now running the slow range (it started it and has not finished it).
      const running = (w: TsChild) =>
        w.received("batch-start").filter((m) => m.beginId === slow.beginId).length > w.received("batch-end").filter((m) => m.beginId === slow.beginId).length;
      let victim: TsChild | undefined;
      await waitUntil(`a worker running ${slow.beginId} (kill ${kill + 1})`, () => (victim = workers.find(running)) !== undefined, 60_000);
      if (!victim) throw new Error("unreachable");
      await victim.kill();
      const replacement = worker(names, { slow });
      await replacement.ready;
      workers.splice(workers.indexOf(victim), 1, replacement);
    }
    const status = await completes(spreader, names);
    // The job is failed for good in BullMQ ("stalled more than allowable limit"); its range was run again under a new job.
    const queue = new Queue(names.queueName, { connection: redis });
    cleanups.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
    const failed = await queue.getJobs(["failed"]);
    expect(failed.map((j) => j.failedReason)).toEqual([expect.stringContaining("stalled more than allowable limit")]);
    expect(status.reconciled.ranges).toBe(1);
  }, 150_000);

  it("a batch job and the next tick job deleted from Redis by hand: the range is requeued, the chain revived", async () => {
    const names = await setUp("deleted", 20_000);
    const w = worker(names);
    await w.ready;
    const spreader = observer(names);
    const started = await spreader.start(names.backfill);
    const queue = new Queue(names.queueName, { connection: redis });
    cleanups.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
    // Cycles hold 20 batches of 200 ids: cycle 1 is 16,000 down to 12,001. Once it is planned, its last
    // batch is due ~1.9 s later, and the tick of cycle 2 (epoch 0: nothing revived the chain yet) ~2 s later.
    await waitUntil("cycle 1 planned", async () => (await spreader.status(names.backfill)).cycle >= 2, 30_000);
    const now = await spreader.status(names.backfill);
    const batchId = batchJobId(names.backfill, started.runId, 1, { beginId: 12_001n, endId: 12_200n });
    const tickId = tickJobId(names.backfill, started.runId, now.cycle, 0);
    expect(await queue.remove(batchId)).toBe(1);
    expect(await queue.remove(tickId)).toBe(1);
    const status = await completes(spreader, names);
    expect(status.watchdog.revivals).toBeGreaterThanOrEqual(1);
    expect(status.watchdog.lastReason).toContain("is missing");
    expect(status.reconciled.ranges).toBe(1);
  }, 150_000);

  for (const action of ["start", "resume"] as const) {
    it(`a process killed between the state write and the tick's enqueue of ${action}(): the workers' watchdog revives the chain`, async () => {
      const names = await setUp(`killed-${action}`, 30_000);
      const w = worker(names);
      await w.ready;
      const spreader = observer(names);
      await spreader.start(names.backfill);
      await waitUntil("some progress", async () => (await spreader.status(names.backfill)).progress.idsDone > 2_000n, 30_000);
      if (action === "resume") await spreader.pause(names.backfill);
      const operator = forkTs(new URL("./fixtures/heal-process.ts", import.meta.url), [
        "operator",
        JSON.stringify(names),
        JSON.stringify({ redisUrl: serverUrl("SUPERSPREADER_REDIS_URL"), pgUrl: serverUrl("SUPERSPREADER_PG_URL"), action }),
      ]);
      children.push(operator);
      await operator.next("about-to-die", 30_000);
      await operator.exited;
      expect(operator.received("survived")).toEqual([]);
      const status = await completes(spreader, names);
      expect(status.watchdog.revivals).toBeGreaterThanOrEqual(1);
    }, 150_000);
  }

  it("recording one batch done fails on every attempt: the range is reconciled and recorded", async () => {
    const names = await setUp("mark-done", 10_000);
    const w = worker(names, { failMarkDone: { beginId: "5001", times: 3 } });
    await w.ready;
    const spreader = observer(names);
    await spreader.start(names.backfill);
    const status = await completes(spreader, names);
    expect(status.reconciled.ranges).toBe(1);
  }, 150_000);

  it("Redis (appendonly yes, appendfsync everysec) SIGKILLed mid-run and restarted on its port and directory", async () => {
    const server = await startRestartableRedis();
    cleanups.push(() => server.stop());
    const own = new Redis(server.url, { maxRetriesPerRequest: null });
    own.on("error", () => {});
    cleanups.push(async () => own.disconnect());
    const names = await setUp("redis-restart", 30_000);
    const urls = { redisUrl: server.url, pgUrl: serverUrl("SUPERSPREADER_PG_URL") };
    const workers = [worker(names, {}, urls), worker(names, {}, urls)];
    await Promise.all(workers.map((w) => w.ready));
    const spreader = observer(names, own);
    await spreader.start(names.backfill);
    await waitUntil("a third done", async () => (await spreader.status(names.backfill)).progress.idsDone >= 10_000n, 60_000);
    await server.kill();
    await new Promise((r) => setTimeout(r, 1_500));
    await server.start();
    await completes(spreader, names);
  }, 150_000);

  it("PostgreSQL stopped for 30 s mid-run: the run holds, probes, resumes by itself, and no range fails", async () => {
    const server = await startRestartablePostgres();
    const ownPool = new pg.Pool({ connectionString: server.url, max: 2 });
    ownPool.on("error", () => {});
    const ownDb = drizzle({ client: ownPool });
    cleanups.push(async () => {
      await ownPool.end().catch(() => {});
      await server.destroy();
    });
    // The case: 5 batches/s of 500 ids.
    const names = await setUp("pg-outage", 40_000, { batchSize: 500, duration: 2, perSecondOnPeak: 5, perSecondOffPeak: 5 }, ownDb);
    const urls = { redisUrl: serverUrl("SUPERSPREADER_REDIS_URL"), pgUrl: server.url };
    const w = worker(names, {}, urls);
    await w.ready;
    const spreader = observer(names, redis, ownDb);
    const holds: Array<{ reason: string; lastError: string }> = [];
    const watchHold = async () => {
      const s = await spreader.status(names.backfill);
      if (s.status === "held" && s.hold) holds.push({ reason: s.hold.reason, lastError: s.hold.lastError ?? "" });
      return s;
    };
    await spreader.start(names.backfill);
    await waitUntil("some progress", async () => (await spreader.status(names.backfill)).progress.idsDone >= 5_000n, 60_000);
    await server.stop();
    await waitUntil("the run to hold itself", async () => (await watchHold()).status === "held", 30_000);
    // 30 s of outage; the probes in it fail and keep the hold.
    const outageEnds = Date.now() + 30_000;
    while (Date.now() < outageEnds) {
      expect((await watchHold()).status).toBe("held");
      await new Promise((r) => setTimeout(r, 1_000));
    }
    await server.start();
    await completes(spreader, names, ownDb, 120_000);
    expect(holds[0]?.reason).toMatch(/failed attempts in a row|attempts failed/);
    // The recorded error keeps its cause: the connection refused, not only drizzle's "Failed query".
    expect(holds.some((h) => h.lastError.includes("ECONNREFUSED"))).toBe(true);
  }, 240_000);
});
