/**
 * Chaos on PostgreSQL only (issue #12): a 200,000-row backfill whose queue is BullMQ's PostgreSQL
 * backend and whose state is `@superspreader/store-drizzle`, both in the database of the rows (one
 * database per scenario, created and dropped here). Three worker processes on one queue (any runs
 * ticks and batches) are SIGKILLed eight times at random points (seeded, printed; five busy
 * workers, three processes inside a tick) and restarted each time, with BullMQ's default stall
 * limit, exactly as in `chaos.test.ts`.
 *
 * - Transactional handler (`define(…, { transactional: true })`, writes through `tx`): the range's
 *   writes and its ledger record commit together, so every row's counter is exactly 1 — a kill
 *   before the commit rolls both back, a repeat of a committed range is found done inside its
 *   transaction and does nothing.
 * - The same scenario with the plain handler (its own transaction, then the runtime's record):
 *   at least once. Every row is processed; the duplicates it had are printed, not asserted (a run
 *   can have none by chance).
 *
 * Replay a run with SUPERSPREADER_CHAOS_SEED=<seed>.
 */
import { randomInt } from "node:crypto";
import { Queue, createPostgresBackend } from "bullmq";
import { sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { describe, expect, it } from "vitest";
import {
  CHAOS_CONCURRENCY,
  CHAOS_ROWS,
  createPgChaosDatabase,
  createPgChaosSpreader,
  dropPgChaosDatabase,
  openAppPool,
  openQueuePool,
  pgChaosNames,
} from "../src/chaos-postgres.js";
import type { PgChaosMode, PgChaosNames } from "../src/chaos-postgres.js";
import { describePlan, planKills, waitForCompletion } from "../src/chaos-kills.js";
import { forkTs } from "../src/child-process.js";
import type { TsChild } from "../src/child-process.js";
import { serverUrl } from "../src/env.js";
import { seededRandom } from "../src/rng.js";

const WORKER_KILLS = 5;
const TICK_KILLS = 3;
const WORKERS = 3;
/** Kills are drawn in [2 s, 18 s] after the start; planning is paced to last longer than that (≥ 50 s, PG_CHAOS_CONFIG). */
const KILL_WINDOW_MS = [2_000, 18_000] as const;
/**
 * A planning tick makes about nine port calls (read the state, look for outstanding entries to
 * reconcile, read deferred ranges, store the plan, record the outstanding entries, enqueue the
 * batches and the next tick, advance the cursor); the process running it is killed before one of
 * them, or (10) after them all, before BullMQ hears that the tick finished. A worker is killed
 * 0–250 ms after it is seen busy (a batch takes ~300 ms).
 */
const PLAN = { workerKills: WORKER_KILLS, tickKills: TICK_KILLS, workers: WORKERS, windowMs: KILL_WINDOW_MS, tickKillPoints: 10, maxWorkerKillDelayMs: 250 };

interface Slot {
  child: TsChild;
}

/** What a scenario leaves to check, read after the run completed. */
interface Outcome {
  readonly names: PgChaosNames;
  readonly seed: number;
  readonly kills: number;
  readonly tickKills: string[];
  readonly elapsedS: number;
  /** Rows by counter value: `processed` → how many rows. */
  readonly histogram: Map<number, number>;
  /** Rows whose counter disagrees with their number of log rows. */
  readonly logMismatches: number;
  /** Ids with more than one log row (processed by more than one committed run). */
  readonly idsProcessedTwice: number;
  /** Batches (job ids) with more than one committed run. */
  readonly duplicatedBatches: number;
  /** Batch jobs BullMQ saw stall (active in a process that died). */
  readonly stalledBatches: number;
  /** Batch jobs BullMQ gave up on after too many stalls. */
  readonly stalledOut: number;
  readonly reconciled: number;
  readonly revivals: number;
  readonly batchJobs: number;
  /** Batches killed between their start and their handler's end (rolled back when transactional). */
  readonly cutShort: number;
  /** Repeats of a committed range found done inside their transaction (transactional only). */
  readonly alreadyDone: number;
  readonly audit: { gaps: unknown[]; failed: unknown[]; deferred: unknown[]; complete: boolean };
}

async function runScenario(mode: PgChaosMode): Promise<Outcome> {
  const server = serverUrl("SUPERSPREADER_PG_URL");
  const seed = process.env.SUPERSPREADER_CHAOS_SEED ? Number(process.env.SUPERSPREADER_CHAOS_SEED) : randomInt(2 ** 31 - 1);
  const names = pgChaosNames(mode, server, `${Date.now().toString(36)}${randomInt(1_000_000).toString(36)}`);
  const slots: Slot[] = [];
  const everyChild: TsChild[] = [];
  const spawn = (): TsChild => {
    const child = forkTs(new URL("../src/chaos-postgres-process.ts", import.meta.url), [JSON.stringify(names), String(seed)]);
    everyChild.push(child);
    return child;
  };
  await createPgChaosDatabase(server, names, CHAOS_ROWS);
  const queuePool = openQueuePool(names, 4);
  const appPool = openAppPool(names, 4);
  const db = drizzle({ client: appPool });
  const refuse = async () => {
    throw new Error("the test process runs no batches");
  };
  const spreader = createPgChaosSpreader(queuePool, db, names, mode === "transactional" ? { transactional: true, handle: refuse } : { transactional: false, handle: refuse });
  try {
    const random = seededRandom(seed);
    const plan = planKills(random, PLAN);
    console.log(
      `chaos-postgres[${mode}]: seed=${seed} (replay with SUPERSPREADER_CHAOS_SEED=${seed}); kills planned at ${describePlan(plan)}`,
    );

    for (let i = 0; i < WORKERS; i++) slots.push({ child: spawn() });
    await Promise.all(slots.map((slot) => slot.child.ready));

    const startedAt = Date.now();
    await spreader.start(names.backfill);

    /** One line per kill with where the run was, so a slow or stuck run shows where it stopped. */
    const trace = async (what: string) => {
      const st = await spreader.status(names.backfill).catch(() => null);
      const where = st ? `${st.status}, cycle ${st.cycle}, cursor ${st.cursor}/${st.initialId}, tick overdue ${st.tickOverdueMs} ms` : "status unreadable";
      console.log(`chaos-postgres[${mode}] +${((Date.now() - startedAt) / 1000).toFixed(1)}s: ${what} (${where})`);
    };
    const killed = new Set<TsChild>();
    const tickKills: string[] = [];
    for (const kill of plan) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + kill.atMs - Date.now())));
      let slot: Slot;
      if (kill.target === "worker") {
        // The planned worker, or the next one that is up: a process killed a moment ago is being
        // restarted, and a tsx process takes seconds to start on a loaded machine; waiting for
        // each restart in turn would push the last kills past the end of planning.
        const order = slots.map((_, i) => slots[(kill.worker + i) % WORKERS] as Slot);
        slot = order.find((s) => s.child.received("ready").length > 0) ?? (await Promise.race(order.map((s) => s.child.ready.then(() => s))));
        const victim = slot.child;
        if (victim.received("batch-start").length === victim.received("batch-end").length) await victim.next("batch-start", 30_000);
        await new Promise((resolve) => setTimeout(resolve, kill.workerDelayMs));
      } else {
        // Whichever process runs the next tick dies at the planned step of it; a process still
        // starting is armed once it is ready (until then it runs ticks unarmed).
        const current = slots.map((s) => ({ s, child: s.child }));
        let decided = false;
        const reached = current.map(({ s, child }) => child.next("kill-point", 30_000).then((point) => ({ s, child, point })));
        for (const r of reached) r.catch(() => {});
        for (const { child } of current) {
          child.ready.then(
            () => {
              if (!decided) child.process.send({ type: "arm", step: kill.tickStep });
            },
            () => {}, // killed before it was ready: nothing to arm
          );
        }
        const { s, child, point } = await Promise.race(reached);
        decided = true;
        for (const other of current) if (other.child !== child && other.child.process.connected) other.child.process.send({ type: "disarm" });
        tickKills.push(`cycle ${String(point.cycle)} before ${String(point.call)}`);
        slot = s;
      }
      killed.add(slot.child);
      await slot.child.kill();
      await trace(`killed pid ${slot.child.pid} (${kill.target === "ticks" ? `in a tick: ${tickKills.at(-1) ?? ""}` : `busy worker ${slots.indexOf(slot)}`})`);
      slot.child = spawn();
    }

    await waitForCompletion(spreader, names.backfill, 100_000);
    const elapsedS = (Date.now() - startedAt) / 1000;

    const audit = await spreader.audit(names.backfill);
    const status = await spreader.status(names.backfill);

    const inspector = new Queue(names.queueName, { connection: { connectionString: names.url, max: 2 } }, createPostgresBackend) as unknown as Queue;
    const [completedJobs, failedJobs] = await Promise.all([inspector.getJobs(["completed"], 0, -1), inspector.getJobs(["failed"], 0, -1)]).finally(() =>
      inspector.close(),
    );
    const jobs = [...completedJobs, ...failedJobs];
    for (const job of failedJobs) expect(job.failedReason, job.id).toContain("stalled more than allowable limit");

    const count = async (query: SQL) => Number((await db.execute<{ n: string }>(query)).rows[0]?.n);
    const items = sql.identifier(names.itemsTable);
    const log = sql.identifier(names.logTable);
    const histogram = new Map(
      (await db.execute<{ processed: number; n: string }>(sql`select processed, count(*) as n from ${items} group by processed order by processed`)).rows.map(
        (row) => [Number(row.processed), Number(row.n)],
      ),
    );
    const logMismatches = await count(
      sql`select count(*) as n from ${items} i full join (select id, count(*) as c from ${log} group by id) l using (id) where coalesce(i.processed, 0) <> coalesce(l.c, 0)`,
    );
    const idsProcessedTwice = await count(sql`select count(*) as n from (select id from ${log} group by id having count(*) > 1) x`);
    const duplicatedBatches = await count(sql`select count(*) as n from (select batch_key from ${log} group by batch_key having count(distinct exec_id) > 1) x`);

    const cutShort = [...killed].reduce((sum, child) => sum + child.received("batch-start").length - child.received("batch-end").length, 0);
    const alreadyDone = everyChild.reduce((sum, child) => sum + child.received("already-done").length, 0);
    return {
      names,
      seed,
      kills: killed.size,
      tickKills,
      elapsedS,
      histogram,
      logMismatches,
      idsProcessedTwice,
      duplicatedBatches,
      stalledBatches: jobs.filter((job) => job.data.kind === "batch" && job.stalledCounter > 0).length,
      stalledOut: failedJobs.filter((job) => job.data.kind === "batch").length,
      reconciled: status.reconciled.ranges,
      revivals: status.watchdog.revivals,
      batchJobs: completedJobs.filter((job) => job.data.kind === "batch").length,
      cutShort,
      alreadyDone,
      audit,
    };
  } finally {
    await Promise.all(everyChild.map((child) => child.kill()));
    await Promise.allSettled([queuePool.end(), appPool.end()]);
    await dropPgChaosDatabase(server, names);
  }
}

function describeOutcome(o: Outcome): string {
  const counters = [...o.histogram.entries()].map(([processed, rows]) => `${rows} rows at ${processed}`).join(", ");
  return (
    `chaos-postgres[${o.names.mode}]: kills=${o.kills} (busy workers ${WORKER_KILLS}, processes in a tick ${TICK_KILLS}: ${o.tickKills.join("; ")}), ` +
    `counters: ${counters}; ids processed more than once=${o.idsProcessedTwice}, duplicated batches=${o.duplicatedBatches}, ` +
    `handlers killed mid-batch=${o.cutShort}, committed ranges delivered again and found done=${o.alreadyDone}, ` +
    `batches in flight at kills=${o.stalledBatches}, given up by BullMQ=${o.stalledOut}, reconciled=${o.reconciled}, watchdog revivals=${o.revivals}, ` +
    `${o.batchJobs} batches in ${o.elapsedS.toFixed(1)} s, seed=${o.seed}`
  );
}

function expectCompleteAudit(o: Outcome): void {
  expect(o.audit.gaps).toEqual([]);
  expect(o.audit.failed).toEqual([]);
  expect(o.audit.deferred).toEqual([]);
  expect(o.audit.complete).toBe(true);
  expect(o.kills).toBe(WORKER_KILLS + TICK_KILLS);
  // A kill strands at most the jobs the process was running.
  expect(o.stalledBatches).toBeLessThanOrEqual((WORKER_KILLS + TICK_KILLS) * CHAOS_CONCURRENCY);
  // The counter agrees with the log of committed runs, row by row.
  expect(o.logMismatches).toBe(0);
}

describe("chaos on PostgreSQL only: BullMQ's PostgreSQL backend + store-drizzle, workers and tick runner SIGKILLed", () => {
  it("transactional handler: every row's counter is exactly 1", async () => {
    const o = await runScenario("transactional");
    console.log(describeOutcome(o));
    expectCompleteAudit(o);
    expect([...o.histogram.entries()]).toEqual([[1, CHAOS_ROWS]]);
    expect(o.idsProcessedTwice).toBe(0);
    expect(o.duplicatedBatches).toBe(0);
  }, 150_000);

  it("plain handler: every row processed at least once; its duplicates are printed", async () => {
    const o = await runScenario("plain");
    const duplicates = [...o.histogram.entries()].filter(([processed]) => processed > 1).reduce((sum, [, rows]) => sum + rows, 0);
    console.log(describeOutcome(o));
    console.log(
      `chaos-postgres[plain]: duplicates: ${duplicates} rows with processed > 1 (${o.duplicatedBatches} batches committed more than once); ` +
        `the transactional handler had none under the same kills`,
    );
    expectCompleteAudit(o);
    expect(o.histogram.get(0) ?? 0).toBe(0);
    expect([...o.histogram.values()].reduce((a, b) => a + b, 0)).toBe(CHAOS_ROWS);
  }, 150_000);
});
