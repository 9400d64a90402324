/**
 * The runtime's transactional backfills on this store (issue #12): the handler's writes through `tx`
 * and the range's record commit together. On each driver: a handler that fails after writing leaves
 * nothing; a second delivery of a committed range does nothing; every row is processed exactly once.
 */
import {
  createManualClock,
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryWorker,
  createSuperSpreader,
  type BatchJobData,
  type BatchContext,
} from "@superspreader/core";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDrizzleStateStore, migrateStateStore } from "../src/index.js";
import { KIT_NAMES, OPENERS, randomName, type Kit } from "./kits.js";

const T0 = Date.parse("2026-11-16T00:00:00Z");
const ROWS = 300;
const config = { batchSize: 10, duration: 1, perSecondOnPeak: 100, perSecondOffPeak: 100 };

/** Any drizzle transaction: `execute` is all the handler needs. */
type Tx = { execute(query: ReturnType<typeof sql>): Promise<unknown> };

describe.each(KIT_NAMES)("transactional backfills on %s", (kitName) => {
  let kit: Kit;
  const items = randomName("items");

  beforeAll(async () => {
    kit = await OPENERS[kitName]();
    await kit.query(`CREATE TABLE ${items} (id BIGINT PRIMARY KEY, processed INT NOT NULL DEFAULT 0)`);
    const values = Array.from({ length: ROWS }, (_, i) => `(${i + 1})`).join(",");
    await kit.query(`INSERT INTO ${items} (id) VALUES ${values}`);
  }, 60_000);
  afterAll(async () => {
    await kit?.close();
  });

  const processed = async (): Promise<number[]> => {
    const rows = await kit.query(`SELECT processed FROM ${items} ORDER BY id`);
    return rows.map((r) => Number(r.processed));
  };

  /** A runtime on fresh tables of this database, with the in-memory queue and a manual clock. */
  const runtime = async () => {
    const tablePrefix = randomName("t");
    await migrateStateStore(kit.db, { tablePrefix });
    const store = createDrizzleStateStore({ db: kit.db, tablePrefix });
    const clock = createManualClock(T0);
    const queue = createMemoryJobQueue({ clock });
    return { clock, queue, spreader: createSuperSpreader({ queue, store, clock }) };
  };

  it("processes every row exactly once: a failed attempt's writes roll back, a repeated delivery does nothing", async () => {
    const { clock, queue, spreader } = await runtime();
    // These ranges write, then throw: the first attempt of each must leave no trace.
    const failOnce = new Set([1n, 101n, 291n]);
    const finished: boolean[] = [];
    spreader.on("batchFinished", (e) => finished.push(e.firstCompletion));
    spreader.define("exactly-once", {
      transactional: true,
      source: createMemoryIdSource({ minId: 1, maxId: ROWS }),
      config,
      async handle({ beginId, endId, tx }: BatchContext & { tx: Tx }) {
        await tx.execute(sql`UPDATE ${sql.identifier(items)} SET processed = processed + 1 WHERE id BETWEEN ${beginId} AND ${endId}`);
        if (failOnce.delete(beginId)) throw new Error(`range ${beginId}..${endId} failed after writing`);
      },
    });
    const worker = createMemoryWorker({ queue, spreader });
    await spreader.start("exactly-once");
    await worker.runUntilIdle(clock, { maxJobs: 12 });

    // A second delivery of a committed range while the run goes on (a stalled job run again):
    // found in the ledger inside its transaction, nothing written.
    const committed = queue.all().find((r) => r.state === "completed" && r.job.data.kind === "batch" && r.outcome === "done");
    expect(committed).toBeDefined();
    const again = committed?.job.data as BatchJobData;
    const outcome = await spreader.perform(again, { attempt: 2, maxAttempts: 3, signal: new AbortController().signal });
    expect(outcome).toBe("done");
    expect(finished.at(-1)).toBe(false);

    await worker.runUntilIdle(clock, { maxJobs: 10_000 });
    const status = await spreader.status("exactly-once");
    expect(status.status).toBe("completed");
    expect(status.progress).toMatchObject({ idsDone: BigInt(ROWS), batchesFailed: 0 });
    expect(failOnce.size).toBe(0);
    expect(new Set(await processed())).toEqual(new Set([1]));
    expect(finished.filter((first) => first)).toHaveLength(ROWS / config.batchSize);
    expect((await spreader.audit("exactly-once")).gaps).toEqual([]);
  }, 120_000);

  it("keeps a transactional batch's result once it commits; an oversize result rolls its writes back", async () => {
    const { clock, queue, spreader } = await runtime();
    const marks = randomName("marks");
    await kit.query(`CREATE TABLE ${marks} (id BIGINT PRIMARY KEY)`);
    spreader.define("counted", {
      transactional: true,
      source: createMemoryIdSource({ minId: 1, maxId: 50 }),
      config: { ...config, maxAttempts: 1, output: { maxEntryBytes: 50 } },
      async handle({ beginId, endId, tx }: BatchContext & { tx: Tx }) {
        await tx.execute(sql`INSERT INTO ${sql.identifier(marks)} (id) VALUES (${beginId})`);
        return beginId === 21n ? { note: "x".repeat(100) } : { ids: Number(endId - beginId + 1n) };
      },
    });
    await spreader.start("counted");
    await createMemoryWorker({ queue, spreader }).runUntilIdle(clock, { maxJobs: 1_000 });
    const page = await spreader.output("counted");
    expect(page.entries.map((e) => [e.beginId, JSON.parse(e.result)])).toEqual([
      [41n, { ids: 10 }],
      [31n, { ids: 10 }],
      [11n, { ids: 10 }],
      [1n, { ids: 10 }],
    ]);
    // The oversize result failed its batch inside the transaction: its insert is gone with it.
    expect((await kit.query(`SELECT id FROM ${marks} ORDER BY id`)).map((r) => Number(r.id))).toEqual([1, 11, 31, 41]);
    expect((await spreader.audit("counted")).failed.map((f) => f.beginId)).toEqual([21n]);
  }, 60_000);
});
