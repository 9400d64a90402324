/**
 * End to end on PostgreSQL (issue #5): a 1,000,000-row backfill, unthrottled, with the
 * same database concurrency, several ways in one run:
 *
 * - superspreader: BullMQ queue and worker, Redis state store, a rate high enough that
 *   one cycle enqueues every batch at once; worker concurrency = pg pool size;
 * - raw BullMQ: the same ranges as plain BullMQ jobs, a plain BullMQ Worker with the same
 *   concurrency (to tell the queue's own cost from superspreader's);
 * - a hand-written loop: the same ranges and UPDATE, the same pool and concurrency,
 *   straight to PostgreSQL;
 * - one UPDATE statement over the whole table.
 *
 * Each measurement gets a freshly seeded, vacuumed and checkpointed table; the order
 * rotates from round to round. Repeated for each batch size. Target: superspreader ≥ 0.8 × the loop.
 *
 *   pnpm --filter @superspreader/bench e2e-postgres
 *   BENCH_ROWS=1000000 BENCH_BATCH_SIZES=1000,5000 BENCH_CONCURRENCY=4 BENCH_ROUNDS=3 pnpm --filter @superspreader/bench e2e-postgres
 */
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import { createDrizzleIdSource } from "@superspreader/source-drizzle";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Queue, Worker } from "bullmq";
import { drizzle } from "drizzle-orm/node-postgres";
import { bigint, pgTable, text } from "drizzle-orm/pg-core";
import { Redis } from "ioredis";
import pg from "pg";
import { median, round, suffix, writeResult } from "./src/report.js";
import { urlOf, useServers } from "./src/servers.js";

let ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const BATCH_SIZES = (process.env.BENCH_BATCH_SIZES ?? "1000,5000").split(",").map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const METHODS = ["superspreader", "raw BullMQ worker", "hand-written loop", "single UPDATE"] as const;
type MethodName = (typeof METHODS)[number];

/** What one measurement took: wall time, and CPU seconds of this process and of redis-server. */
interface Measurement {
  readonly ms: number;
  readonly nodeCpuS: number;
  readonly redisCpuS: number;
}

/** The per-range statement every batched method runs. */
const updateRange = (table: string) => `update ${table} set email_lower = lower(email) where id between $1 and $2`;

/** The ranges of a run, highest first, as the scheduler plans them. */
function* ranges(batchSize: number): Generator<[string, string]> {
  for (let end = ROWS; end >= 1; end -= batchSize) yield [String(Math.max(1, end - batchSize + 1)), String(end)];
}

async function seed(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`create table ${table} (id bigint primary key, email text not null, email_lower text)`);
  await pool.query(`insert into ${table} (id, email) select g, 'User.' || g || '@Example' || (g % 97) || '.COM' from generate_series(1, $1::bigint) g`, [
    ROWS,
  ]);
  await pool.query(`vacuum analyze ${table}`);
  // So that writing out the seed's pages does not land in the next measurement.
  await pool.query("checkpoint");
}

async function verify(pool: pg.Pool, table: string): Promise<void> {
  const { rows } = await pool.query<{ n: string }>(`select count(*) as n from ${table} where email_lower is distinct from lower(email)`);
  if (Number(rows[0]?.n) !== 0) throw new Error(`${table}: ${rows[0]?.n} rows were not updated`);
}

async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return field("used_cpu_user") + field("used_cpu_sys");
}

/** Runs the backfill through superspreader; the time runs from start() to the last batch done. */
async function viaSuperspreader(pool: pg.Pool, connection: Redis, table: string, batchSize: number, time: Timer): Promise<Measurement> {
  const queueName = `bench-e2e-${suffix()}`;
  const batches = Math.ceil(ROWS / batchSize);
  const items = pgTable(table, { id: bigint("id", { mode: "bigint" }).primaryKey(), email: text("email"), emailLower: text("email_lower") });
  const queue = createBullMQJobQueue({ connection, queueName });
  const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: connection, prefix: `bench-${suffix()}` }) });
  const sql = updateRange(table);
  spreader.define("e2e", {
    source: createDrizzleIdSource({ db: drizzle({ client: pool }), table: items, column: items.id }),
    // One cycle plans every batch at its start: nothing is throttled.
    config: { batchSize, duration: 1, perSecondOnPeak: batches, perSecondOffPeak: batches },
    async handle({ beginId, endId }) {
      await pool.query(sql, [beginId.toString(), endId.toString()]);
    },
  });
  const worker = await runBullMQWorker({ spreader, connection, queueName, concurrency: CONCURRENCY });
  let done = 0;
  const allDone = new Promise<void>((resolve) =>
    spreader.on("batchFinished", () => {
      if (++done === batches) resolve();
    }),
  );
  const measurement = await time(async () => {
    await spreader.start("e2e");
    await allDone;
  });
  await worker.close();
  await queue.close();
  await obliterate(connection, queueName);
  return measurement;
}

/** The same ranges as plain BullMQ jobs, consumed by a plain BullMQ Worker. */
async function viaRawBullMQ(pool: pg.Pool, connection: Redis, table: string, batchSize: number, time: Timer): Promise<Measurement> {
  const queueName = `bench-raw-${suffix()}`;
  const sql = updateRange(table);
  const queue = new Queue(queueName, { connection });
  const jobs = [...ranges(batchSize)].map(([begin, end]) => ({ name: "batch", data: { begin, end }, opts: { jobId: `b.${begin}-${end}`, attempts: 3 } }));
  let done = 0;
  let resolveAll = () => {};
  const allDone = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  const worker = new Worker(
    queueName,
    async (job) => {
      await pool.query(sql, [job.data.begin, job.data.end]);
      if (++done === jobs.length) resolveAll();
    },
    { connection, concurrency: CONCURRENCY, autorun: false },
  );
  worker.run().catch(() => {});
  await worker.waitUntilReady();
  const measurement = await time(async () => {
    await queue.addBulk(jobs);
    await allDone;
  });
  await worker.close();
  await queue.close();
  await obliterate(connection, queueName);
  return measurement;
}

/** The same ranges and statement, `CONCURRENCY` at a time, straight to PostgreSQL. */
async function viaLoop(pool: pg.Pool, table: string, batchSize: number, time: Timer): Promise<Measurement> {
  const sql = updateRange(table);
  const todo = ranges(batchSize);
  const lane = async () => {
    for (let next = todo.next(); !next.done; next = todo.next()) await pool.query(sql, next.value);
  };
  return time(() => Promise.all(Array.from({ length: CONCURRENCY }, lane)));
}

async function viaSingleUpdate(pool: pg.Pool, table: string, time: Timer): Promise<Measurement> {
  return time(() => pool.query(`update ${table} set email_lower = lower(email)`));
}

async function obliterate(connection: Redis, queueName: string): Promise<void> {
  const inspector = new Queue(queueName, { connection });
  await inspector.obliterate({ force: true });
  await inspector.close();
}

type Timer = (run: () => Promise<unknown>) => Promise<Measurement>;

const servers = await useServers(["redis", "postgres"]);
try {
  const pool = new pg.Pool({ connectionString: urlOf(servers, "postgres"), max: CONCURRENCY });
  const connection = new Redis(urlOf(servers, "redis"), { maxRetriesPerRequest: null });
  const admin = new Redis(urlOf(servers, "redis"));
  const time: Timer = async (run) => {
    const [cpu, redisBefore, started] = [process.cpuUsage(), await redisCpuSeconds(admin), performance.now()];
    await run();
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    return { ms, nodeCpuS: (used.user + used.system) / 1e6, redisCpuS: (await redisCpuSeconds(admin)) - redisBefore };
  };

  const measure = async (method: MethodName, batchSize: number): Promise<Measurement> => {
    const table = `bench_items_${suffix()}`;
    await seed(pool, table);
    const m =
      method === "superspreader"
        ? await viaSuperspreader(pool, connection, table, batchSize, time)
        : method === "raw BullMQ worker"
          ? await viaRawBullMQ(pool, connection, table, batchSize, time)
          : method === "hand-written loop"
            ? await viaLoop(pool, table, batchSize, time)
            : await viaSingleUpdate(pool, table, time);
    await verify(pool, table);
    await pool.query(`drop table ${table}`);
    return m;
  };

  // Warm-up (untimed): a small run of each method loads Lua scripts into Redis and code into the JIT.
  const rows = ROWS;
  ROWS = 200_000;
  for (const method of METHODS) await measure(method, 1_000);
  ROWS = rows;

  const bySize: Record<string, unknown> = {};
  const summaryLines: string[] = [];
  for (const batchSize of BATCH_SIZES) {
    const batches = Math.ceil(ROWS / batchSize);
    const results = new Map<MethodName, Measurement[]>(METHODS.map((m) => [m, []]));
    console.log(`${ROWS} rows, batches of ${batchSize} (${batches} batches), concurrency ${CONCURRENCY} (pg pool ${CONCURRENCY}), ${ROUNDS} rounds`);
    for (let r = 0; r < ROUNDS; r++) {
      for (const method of METHODS.map((_, i) => METHODS[(i + r) % METHODS.length] as MethodName)) {
        const m = await measure(method, batchSize);
        results.get(method)?.push(m);
        console.log(
          `  round ${r + 1}/${ROUNDS} ${method}: ${(m.ms / 1000).toFixed(2)} s, ${Math.round(ROWS / (m.ms / 1000))} rows/s ` +
            `(CPU: node ${m.nodeCpuS.toFixed(2)} s, redis ${m.redisCpuS.toFixed(2)} s)`,
        );
      }
    }
    const of = (method: MethodName) => results.get(method) ?? [];
    const rowsPerSecond = (method: MethodName) => ROWS / (median(of(method).map((m) => m.ms)) / 1000);
    // The machine is shared: the ratio within each round (measured a minute apart at most) resists drift better.
    const perRound = (a: MethodName, b: MethodName) => of(a).map((m, i) => (of(b)[i]?.ms ?? m.ms) / m.ms);
    const ss = rowsPerSecond("superspreader");
    const loop = rowsPerSecond("hand-written loop");
    const raw = rowsPerSecond("raw BullMQ worker");
    const single = rowsPerSecond("single UPDATE");
    const ssOverLoopRounds = perRound("superspreader", "hand-written loop");
    const line =
      `batches of ${batchSize}: rows/s (median) superspreader ${Math.round(ss)}, raw BullMQ worker ${Math.round(raw)}, ` +
      `hand-written loop ${Math.round(loop)}, single UPDATE ${Math.round(single)} → superspreader/loop = ${(ss / loop).toFixed(3)} ` +
      `(target ≥ 0.8; median of per-round ratios ${median(ssOverLoopRounds).toFixed(3)}), superspreader/raw BullMQ = ${(ss / raw).toFixed(3)}, ` +
      `superspreader/single UPDATE = ${(ss / single).toFixed(3)}`;
    console.log(line);
    summaryLines.push(line);
    bySize[String(batchSize)] = {
      batches,
      rowsPerSecond: {
        superspreader: Math.round(ss),
        rawBullMQWorker: Math.round(raw),
        handWrittenLoop: Math.round(loop),
        singleUpdate: Math.round(single),
      },
      ratios: {
        superspreaderOverLoop: round(ss / loop, 3),
        superspreaderOverLoopPerRound: ssOverLoopRounds.map((v) => round(v, 3)),
        superspreaderOverLoopPerRoundMedian: round(median(ssOverLoopRounds), 3),
        superspreaderOverRawBullMQ: round(ss / raw, 3),
        rawBullMQOverLoop: round(raw / loop, 3),
        superspreaderOverSingleUpdate: round(ss / single, 3),
        loopOverSingleUpdate: round(loop / single, 3),
      },
      targetMet: ss / loop >= 0.8,
      measurements: Object.fromEntries(
        METHODS.map((m) => [
          m,
          of(m).map((x) => ({ seconds: round(x.ms / 1000, 2), nodeCpuSeconds: round(x.nodeCpuS, 2), redisCpuSeconds: round(x.redisCpuS, 2) })),
        ]),
      ),
    };
  }
  connection.disconnect();
  admin.disconnect();
  await pool.end();

  const path = writeResult("e2e", "e2e-postgres", {
    rows: ROWS,
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    statement: "update <table> set email_lower = lower(email) where id between $1 and $2",
    note:
      "superspreader is timed from start() to its last batch done (its run is marked completed by the next tick, one 1 s cycle later); " +
      "raw BullMQ from addBulk to its last job done. CPU seconds are this process's and redis-server's; PostgreSQL shares the same cores.",
    summary: summaryLines,
    batchSizes: bySize,
  });
  console.log(`wrote ${path}`);
} finally {
  await servers.stop();
}
