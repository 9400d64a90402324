/**
 * Chaos (issues #5, #8): a 200,000-row PostgreSQL backfill on BullMQ and Redis, with
 * three worker processes on one queue (any of them runs ticks and batches), SIGKILLed
 * eight times at random points (seeded; the seed is printed) and restarted each time,
 * with BullMQ's default stall limit: a job stranded twice is failed by BullMQ without
 * the runtime seeing it, and reconciliation must enqueue its range again.
 *
 * What it proves, from records the processes cannot fake after the fact:
 * - every id was processed (the items table's counter, the handler's log, the audit);
 * - an id processed more than once was processed by one job only, or by a job BullMQ
 *   gave up on after stalls and the one that reconciliation enqueued for its range;
 *   each extra run of a job is explained by a stall (BullMQ's per-job stalled counter)
 *   and happened in a process that was killed after it: duplicates come only from
 *   batches in flight at a worker kill.
 *
 * Replay a run with SUPERSPREADER_CHAOS_SEED=<seed>.
 */
import { randomInt } from "node:crypto";
import { waitUntil } from "@superspreader/contract-tests";
import type { SuperSpreader } from "@superspreader/core";
import { Queue } from "bullmq";
import { sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHAOS_CONCURRENCY, CHAOS_CONFIG, CHAOS_ROWS, chaosNames, createChaosSpreader, createChaosTables, dropChaosTables } from "../src/chaos.js";
import type { ChaosNames } from "../src/chaos.js";
import { forkTs } from "../src/child-process.js";
import type { TsChild } from "../src/child-process.js";
import { serverUrl } from "../src/env.js";
import { describePlan, planKills } from "../src/chaos-kills.js";
import { seededRandom } from "../src/rng.js";

const WORKER_KILLS = 5;
const TICK_KILLS = 3;
const WORKERS = 3;
/** Kills are drawn in [2 s, 20 s] after the start; the run is paced to last longer than that. */
const KILL_WINDOW_MS = [2_000, 20_000] as const;
/**
 * A planning tick makes about nine port calls (read the state, look for outstanding
 * entries to reconcile, read deferred ranges, store the plan, record the outstanding
 * entries, enqueue the batches and the next tick, advance the cursor); the process
 * running it is killed before one of them, or (10) after them all, before BullMQ hears
 * that the tick finished.
 */
const TICK_KILL_POINTS = 10;
/** A worker is killed this long (at most) after it is seen busy: a batch takes ~300 ms. */
const MAX_WORKER_KILL_DELAY_MS = 250;

/** A worker process whose current child is replaced after each kill. */
interface Slot {
  child: TsChild;
}

interface Execution {
  readonly execId: string;
  readonly pid: number;
  readonly atMs: number;
}

describe("chaos: SIGKILLed workers and tick runner on PostgreSQL, Redis and BullMQ", () => {
  const seed = process.env.SUPERSPREADER_CHAOS_SEED ? Number(process.env.SUPERSPREADER_CHAOS_SEED) : randomInt(2 ** 31 - 1);
  const names: ChaosNames = chaosNames(`${Date.now().toString(36)}${randomInt(1_000_000).toString(36)}`);
  let pool: pg.Pool;
  let db: NodePgDatabase;
  let connection: Redis;
  let spreader: SuperSpreader;
  const slots: Slot[] = [];

  const spawn = (): TsChild => forkTs(new URL("./fixtures/chaos-process.ts", import.meta.url), [JSON.stringify(names), String(seed)]);

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: serverUrl("SUPERSPREADER_PG_URL"), max: 4 });
    db = drizzle({ client: pool });
    connection = new Redis(serverUrl("SUPERSPREADER_REDIS_URL"), { maxRetriesPerRequest: null });
    await createChaosTables(db, names, CHAOS_ROWS);
    spreader = createChaosSpreader(connection, db, names, async () => {
      throw new Error("the test process runs no batches");
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(slots.map((slot) => slot.child.kill()));
    if (connection) {
      const queue = new Queue(names.queueName, { connection });
      await queue.obliterate({ force: true });
      await queue.close();
      let cursor = "0";
      do {
        const [next, keys] = await connection.scan(cursor, "MATCH", `${names.storePrefix}:*`, "COUNT", 1_000);
        if (keys.length > 0) await connection.del(...keys);
        cursor = next;
      } while (cursor !== "0");
      connection.disconnect();
    }
    if (db) await dropChaosTables(db, names);
    await pool?.end();
  }, 60_000);

  it("processes every id; duplicates are only batches in flight at a worker kill", async () => {
    const random = seededRandom(seed);
    const plan = planKills(random, {
      workerKills: WORKER_KILLS,
      tickKills: TICK_KILLS,
      workers: WORKERS,
      windowMs: KILL_WINDOW_MS,
      tickKillPoints: TICK_KILL_POINTS,
      maxWorkerKillDelayMs: MAX_WORKER_KILL_DELAY_MS,
    });
    console.log(
      `chaos: seed=${seed} (replay with SUPERSPREADER_CHAOS_SEED=${seed}); kills planned at ` +
        describePlan(plan),
    );

    for (let i = 0; i < WORKERS; i++) slots.push({ child: spawn() });
    await Promise.all(slots.map((slot) => slot.child.ready));

    const startedAt = Date.now();
    await spreader.start(names.backfill);

    /** Killed pid → when it was seen gone (epoch ms). */
    const killedAt = new Map<number, number>();
    const tickKills: Array<{ jobId: string; where: string }> = [];
    for (const kill of plan) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + kill.atMs - Date.now())));
      // A process killed a moment ago is being restarted: the kill lands once it is back.
      await Promise.all(slots.map((slot) => slot.child.ready));
      let slot: Slot;
      if (kill.target === "worker") {
        slot = slots[kill.worker] as Slot;
        const victim = slot.child;
        // Killed while busy: once it runs a batch (it may be idle while the tick chain recovers).
        if (victim.received("batch-start").length === victim.received("batch-end").length) await victim.next("batch-start", 30_000);
        await new Promise((resolve) => setTimeout(resolve, kill.workerDelayMs));
      } else {
        // Whichever process runs the next tick dies at the planned step of it.
        const reached = slots.map((s) => s.child.next("kill-point", 30_000).then((point) => ({ s, point })));
        for (const r of reached) r.catch(() => {});
        for (const s of slots) s.child.process.send({ type: "arm", step: kill.tickStep });
        const { s, point } = await Promise.race(reached);
        for (const other of slots) if (other !== s) other.child.process.send({ type: "disarm" });
        tickKills.push({ jobId: String(point.jobId), where: `cycle ${String(point.cycle)} before ${String(point.call)}` });
        slot = s;
      }
      const victim = slot.child;
      killedAt.set(victim.pid, await victim.kill());
      slot.child = spawn();
    }

    await waitUntil(
      "the backfill to complete",
      async () => {
        const { status } = await spreader.status(names.backfill);
        if (status !== "running" && status !== "completed") throw new Error(`the backfill ended ${status}`);
        return status === "completed";
      },
      100_000,
    );
    const elapsedS = (Date.now() - startedAt) / 1000;

    // The runtime's own record: no gap, nothing failed or left deferred.
    const audit = await spreader.audit(names.backfill);
    expect(audit.gaps).toEqual([]);
    expect(audit.failed).toEqual([]);
    expect(audit.deferred).toEqual([]);
    expect(audit.complete).toBe(true);
    const status = await spreader.status(names.backfill);

    // The queue's record: how often each job stalled (was active in a process that died), and which
    // jobs BullMQ gave up on after stalling more than its limit (the runtime never saw them fail).
    const queue = new Queue(names.queueName, { connection });
    const [completedJobs, failedJobs] = await Promise.all([queue.getJobs(["completed"], 0, -1), queue.getJobs(["failed"], 0, -1)]).finally(() => queue.close());
    const jobs = new Map([...completedJobs, ...failedJobs].map((job) => [job.id ?? "", job]));
    const stalledOut = new Set(failedJobs.map((job) => job.id ?? ""));
    for (const job of failedJobs) expect(job.failedReason, job.id).toContain("stalled more than allowable limit");
    // Each of them was found lost and its range enqueued again.
    expect(status.reconciled.ranges).toBe(failedJobs.filter((job) => job.data.kind === "batch").length);

    // The database's record: every id processed, and the counter agrees with the log.
    const items = sql.identifier(names.itemsTable);
    const log = sql.identifier(names.logTable);
    const count = async (query: SQL) => Number((await db.execute<{ n: string }>(query)).rows[0]?.n);
    expect(await count(sql`select count(*) as n from ${items} where processed = 0`)).toBe(0);
    expect(
      await count(sql`select count(*) as n from ${items} i full join (select id, count(*) as c from ${log} group by id) l using (id)
                      where coalesce(i.processed, 0) <> coalesce(l.c, 0)`),
    ).toBe(0);
    // An id processed by two different jobs: only a job BullMQ gave up on, and the one reconciliation enqueued.
    const twoJobs = await db.execute<{ id: string; keys: string[] }>(
      sql`select id, array_agg(distinct batch_key) as keys from ${log} group by id having count(distinct batch_key) > 1`,
    );
    const overlapping = twoJobs.rows.filter((row) => row.keys.length !== 2 || !row.keys.some((key) => stalledOut.has(key)));
    expect(overlapping.slice(0, 5)).toEqual([]);
    const idsProcessedTwice = await count(sql`select count(*) as n from (select id from ${log} group by id having count(*) > 1) x`);
    const stalledBatches = [...jobs.values()].filter((job) => job.data.kind === "batch" && job.stalledCounter > 0).length;
    const ticksRerun = [...jobs.values()].filter((job) => job.data.kind === "tick" && job.stalledCounter > 0).length;
    // Every tick a process died in was taken up again: run again after its stall, or, given up by BullMQ, revived by a watchdog.
    for (const { jobId } of tickKills) {
      const job = jobs.get(jobId);
      expect(job === undefined || job.stalledCounter > 0 || stalledOut.has(jobId), jobId).toBe(true);
    }
    // A worker kill strands at most the jobs it was running.
    expect(stalledBatches).toBeLessThanOrEqual((WORKER_KILLS + TICK_KILLS) * CHAOS_CONCURRENCY);

    // Every committed run of every batch; a batch with more than one is a duplicated batch.
    const rows = await db.execute<{ batch_key: string; exec_id: string; pid: number; at_ms: string }>(
      sql`select batch_key, exec_id, min(pid) as pid, max(at_ms) as at_ms from ${log} group by batch_key, exec_id`,
    );
    const runs = new Map<string, Execution[]>();
    for (const row of rows.rows) {
      const list = runs.get(row.batch_key) ?? [];
      list.push({ execId: row.exec_id, pid: Number(row.pid), atMs: Number(row.at_ms) });
      runs.set(row.batch_key, list);
    }
    const duplicated = [...runs.entries()].filter(([, executions]) => executions.length > 1);
    const unexplained: string[] = [];
    for (const [batchKey, executions] of duplicated) {
      const job = jobs.get(batchKey);
      if (!job) {
        unexplained.push(`${batchKey}: ran ${executions.length} times but its job is not among the completed ones`);
        continue;
      }
      // Each run beyond the first needs a stall (or a failed attempt) of the job to happen at all.
      if (executions.length > 1 + job.stalledCounter + job.attemptsMade) {
        unexplained.push(`${batchKey}: ran ${executions.length} times, stalled ${job.stalledCounter}, failed ${job.attemptsMade}`);
      }
      // Only the run that finished the job may be in a process that is still alive; every
      // other run committed in a process that was killed afterwards, while the job was active.
      const survivors = executions.filter((e) => !killedAt.has(e.pid));
      if (survivors.length > 1) unexplained.push(`${batchKey}: ran in ${survivors.length} processes that were never killed`);
      for (const e of executions) {
        const goneAt = killedAt.get(e.pid);
        if (goneAt !== undefined && e.atMs > goneAt) unexplained.push(`${batchKey}: run ${e.execId} of pid ${e.pid} committed after that pid died`);
      }
    }
    expect(unexplained).toEqual([]);
    expect(duplicated.length).toBeLessThanOrEqual(stalledBatches);
    expect(killedAt.size).toBe(WORKER_KILLS + TICK_KILLS);

    console.log(
      `chaos: kills=${killedAt.size} (busy workers ${WORKER_KILLS}, processes in a tick ${TICK_KILLS}), duplicated batches=${duplicated.length}, ` +
        `ids processed twice=${idsProcessedTwice}, batches in flight at kills=${stalledBatches}, given up by BullMQ and reconciled=${status.reconciled.ranges}, ` +
        `watchdog revivals=${status.watchdog.revivals}, ticks run again=${ticksRerun} (killed at ${tickKills.map((k) => k.where).join("; ")}), ` +
        `${completedJobs.filter((j) => j.data.kind === "batch").length} batches in ${elapsedS.toFixed(1)} s, seed=${seed}`,
    );
  }, 150_000);
});
