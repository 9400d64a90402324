/**
 * Where the demo's rows/s go (issue #14): the demo's own backfill of 1,000,000 PGlite rows, three ways, in
 * interleaved rounds on one machine:
 *
 * - **superspreader, uncapped**: the demo's runtime (in-memory queue and store, its worker at concurrency 2,
 *   its handler) with a rate so high that it is never the limit: what the demo could do;
 * - **hand-written loop**: the same handler over the same ranges, two lanes, no framework: what PGlite and
 *   the handler can do;
 * - **superspreader, no-op handler**: the runtime alone, to see its own cost per batch.
 *
 * And the demo as it ships (30 batches/s of 2,000 ids: a set rate of 60,000 rows/s), to see whether it reaches
 * its set rate. superspreader / loop is what the framework costs; a figure close to 1 means the time is PGlite's.
 *
 *   pnpm --filter @superspreader/bench demo
 *   BENCH_ROWS=200000 BENCH_ROUNDS=3 pnpm --filter @superspreader/bench demo
 */
import { PGlite } from "@electric-sql/pglite";
import { createMemoryJobQueue, createMemoryStateStore, createMemoryWorker, createSuperSpreader } from "@superspreader/core";
import type { BatchContext } from "@superspreader/core";
import { BACKFILL_NAME, accountsTable, createAccountsTable, createNormaliseEmailsHandler, defineNormaliseEmails, verifyAccounts } from "@superspreader/example-demo";
import { drizzle } from "drizzle-orm/pglite";
import { median, round, writeResult } from "./src/report.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BATCH = 2_000;
const CONCURRENCY = 2;

type Method = "superspreader uncapped" | "hand-written loop" | "superspreader no-op" | "demo as shipped";

/** A fresh PGlite with the demo's table: every measurement starts from the same seeded state. */
async function freshDatabase() {
  const client = await PGlite.create();
  const db = drizzle({ client });
  const table = accountsTable();
  await createAccountsTable(db, table, ROWS);
  return { client, db, table };
}

/** Runs the demo's backfill on the in-memory ports until it completes; returns ms from start() to completion. */
async function viaSuperSpreader(perSecond: number, noop: boolean): Promise<{ ms: number; verified: boolean }> {
  const { client, db, table } = await freshDatabase();
  try {
    const queue = createMemoryJobQueue();
    const spreader = createSuperSpreader({ queue, store: createMemoryStateStore() });
    const config = { batchSize: BATCH, duration: 2, perSecondOnPeak: perSecond, perSecondOffPeak: perSecond };
    if (noop) spreader.define(BACKFILL_NAME, { source: { capabilities: {}, minId: async () => 1n, maxId: async () => BigInt(ROWS) }, config, handle: async () => {} });
    else defineNormaliseEmails(spreader, { db, table, config });
    const worker = createMemoryWorker({ queue, spreader, concurrency: CONCURRENCY });
    const done = new Promise<void>((resolve) => spreader.on("completed", () => resolve()));
    let last = 0;
    spreader.on("batchFinished", (e) => (last = e.at));
    worker.start();
    const started = Date.now();
    await spreader.start(BACKFILL_NAME);
    await done;
    await worker.close();
    // To the last batch done: the run is marked completed by the tick after it, up to a cycle later.
    const ms = last - started;
    const verified = noop || (await verifyAccounts(db, table)).wrongRows === 0;
    return { ms, verified };
  } finally {
    await client.close();
  }
}

/** The same handler over the same ranges (highest first, as the scheduler plans them), in two lanes. */
async function viaLoop(): Promise<{ ms: number; verified: boolean }> {
  const { client, db, table } = await freshDatabase();
  try {
    const handle = createNormaliseEmailsHandler({ db, table });
    const ranges: Array<{ beginId: bigint; endId: bigint }> = [];
    for (let end = BigInt(ROWS); end >= 1n; end -= BigInt(BATCH)) ranges.push({ beginId: end - BigInt(BATCH) + 1n > 0n ? end - BigInt(BATCH) + 1n : 1n, endId: end });
    const signal = new AbortController().signal;
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < ranges.length) {
          const range = ranges[next++] as { beginId: bigint; endId: bigint };
          await handle({ backfill: BACKFILL_NAME, runId: "loop", cycle: 0, ...range, attempt: 1, maxAttempts: 1, signal } as BatchContext);
        }
      }),
    );
    const ms = Date.now() - started;
    return { ms, verified: (await verifyAccounts(db, table)).wrongRows === 0 };
  } finally {
    await client.close();
  }
}

const methods: Record<Method, () => Promise<{ ms: number; verified: boolean }>> = {
  "superspreader uncapped": () => viaSuperSpreader(10_000, false),
  "hand-written loop": viaLoop,
  "superspreader no-op": () => viaSuperSpreader(10_000, true),
  "demo as shipped": () => viaSuperSpreader(30, false),
};
const names = Object.keys(methods) as Method[];
const timings = new Map<Method, number[]>(names.map((n) => [n, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const name of names.map((_, i) => names[(i + r) % names.length] as Method)) {
    const { ms, verified } = await methods[name]();
    if (!verified) throw new Error(`${name}: rows were left not done`);
    timings.get(name)?.push(ms);
    console.log(`round ${r + 1}/${ROUNDS} ${name}: ${ms} ms, ${Math.round((ROWS / ms) * 1000).toLocaleString("en-US")} rows/s`);
  }
}
const rowsPerSecond = (name: Method) => Math.round((ROWS / median(timings.get(name) ?? [])) * 1000);
const perRound = (a: Method, b: Method) => median((timings.get(b) ?? []).map((ms, i) => ms / ((timings.get(a) ?? [])[i] ?? ms)));
const batches = Math.ceil(ROWS / BATCH);
const summary = {
  rowsPerSecond: Object.fromEntries(names.map((n) => [n, rowsPerSecond(n)])),
  superspreaderOverLoop: round(rowsPerSecond("superspreader uncapped") / rowsPerSecond("hand-written loop"), 3),
  superspreaderOverLoopPerRoundMedian: round(perRound("superspreader uncapped", "hand-written loop"), 3),
  runtimeMsPerBatch: round(median(timings.get("superspreader no-op") ?? []) / batches, 3),
  setRateRowsPerSecond: 30 * BATCH,
  shippedReachesSetRate: rowsPerSecond("demo as shipped") >= 0.97 * 30 * BATCH,
};
console.log(
  `rows/s: ${names.map((n) => `${n} ${rowsPerSecond(n).toLocaleString("en-US")}`).join(", ")}\n` +
    `superspreader/loop = ${summary.superspreaderOverLoop} (per-round median ${summary.superspreaderOverLoopPerRoundMedian}); ` +
    `the runtime alone costs ${summary.runtimeMsPerBatch} ms per batch; as shipped ${rowsPerSecond("demo as shipped").toLocaleString("en-US")} of a set 60,000 rows/s`,
);
const path = writeResult("demo", "demo", { rows: ROWS, batchSize: BATCH, concurrency: CONCURRENCY, rounds: ROUNDS, allMs: Object.fromEntries(timings), ...summary });
console.log(`wrote ${path}`);
