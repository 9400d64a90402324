/**
 * PostgreSQL only (issue #12): a 1,000,000-row backfill, unthrottled, with the same database
 * concurrency, three ways in one run, interleaved round by round:
 *
 * - PostgreSQL only: BullMQ's PostgreSQL backend as the queue, `@superspreader/store-drizzle` as
 *   the state store, both in the database of the rows, and a transactional handler (its UPDATE and
 *   the range's ledger record commit in one transaction: exactly once);
 * - Redis + BullMQ: BullMQ on Redis, `@superspreader/store-redis`, the plain handler (the same
 *   UPDATE on a pool of its own: at least once);
 * - the hand-written keyset loop: the same ranges and UPDATE, `CONCURRENCY` at a time, straight
 *   to PostgreSQL.
 *
 * Every measurement gets a freshly seeded, vacuumed and checkpointed table and is verified (every
 * row's counter exactly 1). Each superspreader method is reported against the loop as the median
 * of the per-round ratios. The store's cost per batch on PostgreSQL is counted on its pool: the
 * statements it ran besides the handler's UPDATE (ticks included, spread over the batches) and
 * their time, and the time `runRange` adds around the handler.
 *
 *   pnpm --filter @superspreader/bench postgres-only
 *   BENCH_ROWS=1000000 BENCH_BATCH_SIZE=1000 BENCH_CONCURRENCY=4 BENCH_ROUNDS=3 pnpm --filter @superspreader/bench postgres-only
 */
import { loadavg } from "node:os";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import type { RangeTransactions, StateStore } from "@superspreader/core";
import { createDrizzleIdSource } from "@superspreader/source-drizzle";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Queue, createPostgresBackend, runMigrations } from "bullmq";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { bigint, integer, pgTable } from "drizzle-orm/pg-core";
import { Redis } from "ioredis";
import pg from "pg";
import { countingPool, createDrizzleStateStore, migrateStateStore } from "./src/postgres-only-store.js";
import { median, round, suffix, writeResult } from "./src/report.js";
import { urlOf, useServers } from "./src/servers.js";

let ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const METHODS = ["PostgreSQL only", "Redis + BullMQ", "hand-written loop"] as const;
type MethodName = (typeof METHODS)[number];

/** The per-range statement every method runs. */
const updateRange = (table: string) => `update ${table} set processed = processed + 1 where id between $1 and $2`;
const TABLE_PREFIX = "bench_pgonly_items_";

/** The ranges of a run, highest first, as the scheduler plans them. */
function* ranges(batchSize: number): Generator<[string, string]> {
  for (let end = ROWS; end >= 1; end -= batchSize) yield [String(Math.max(1, end - batchSize + 1)), String(end)];
}

interface Measurement {
  readonly ms: number;
  readonly nodeCpuS: number;
  /** PostgreSQL only: the store's cost per batch. */
  readonly store?: StoreCost;
}

interface StoreCost {
  /** Statements on the store's pool besides the handler's UPDATE (BEGIN/COMMIT and ticks included), per batch. */
  readonly statementsPerBatch: number;
  /** Their summed latency, per batch (statements of concurrent batches overlap: this is not wall time). */
  readonly statementMsPerBatch: number;
  /** Median time `runRange` took around the handler (claim, ledger record, commit), per batch. */
  readonly runRangeOverheadMsMedian: number;
  readonly handlerStatementMsPerBatch: number;
  /** The store's statements by kind: how many per batch, and their mean ms. */
  readonly byKind: Record<string, { perBatch: number; meanMs: number }>;
}

const items = (table: string) => pgTable(table, { id: bigint("id", { mode: "bigint" }).primaryKey(), processed: integer("processed").notNull() });

async function seed(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`create table ${table} (id bigint primary key, processed integer not null default 0)`);
  await pool.query(`insert into ${table} (id) select g from generate_series(1, $1::bigint) g`, [ROWS]);
  await pool.query(`vacuum analyze ${table}`);
  // So that writing out the seed's pages does not land in the next measurement.
  await pool.query("checkpoint");
}

async function verify(pool: pg.Pool, table: string): Promise<void> {
  const { rows } = await pool.query<{ n: string }>(`select count(*) as n from ${table} where processed <> 1`);
  if (Number(rows[0]?.n) !== 0) throw new Error(`${table}: ${rows[0]?.n} rows were not processed exactly once`);
}

type Timer = (run: () => Promise<unknown>) => Promise<Measurement>;
const time: Timer = async (run) => {
  const [cpu, started] = [process.cpuUsage(), performance.now()];
  await run();
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { ms, nodeCpuS: (used.user + used.system) / 1e6 };
};

/** Resolves once `batches` batches finished. */
function finished(spreader: ReturnType<typeof createSuperSpreader>, batches: number): Promise<void> {
  let done = 0;
  return new Promise<void>((resolve) =>
    spreader.on("batchFinished", () => {
      if (++done === batches) resolve();
    }),
  );
}

const servers = await useServers(["redis", "postgres"]);
const databaseName = `ss_bench_pgonly_${suffix()}`;
const adminUrl = urlOf(servers, "postgres");
const databaseUrl = (() => {
  const url = new URL(adminUrl);
  url.pathname = `/${databaseName}`;
  return url.toString();
})();
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database ${databaseName}`);
try {
  // BullMQ's schema and the store's tables, once (both idempotent).
  const migrator = new pg.Client({ connectionString: databaseUrl });
  await migrator.connect();
  await runMigrations(migrator);
  await migrateStateStore(drizzle({ client: migrator }));
  await migrator.end();

  const appPool = new pg.Pool({ connectionString: databaseUrl, max: CONCURRENCY });
  const appDb = drizzle({ client: appPool });
  // The store's pool: each transactional batch holds one client for its transaction; ticks need one more.
  const storePool = countingPool({ connectionString: databaseUrl, max: CONCURRENCY + 2 }, (text) => text.includes(TABLE_PREFIX) && /^\s*update/i.test(text));
  const storeDb = drizzle({ client: storePool.pool });
  // BullMQ's pool: its SQL calls its functions unqualified; a worker holds one client for LISTEN.
  const queuePool = new pg.Pool({ connectionString: databaseUrl, max: CONCURRENCY + 3, options: "-c search_path=bullmq" });
  const redis = new Redis(urlOf(servers, "redis"), { maxRetriesPerRequest: null });

  const viaPostgresOnly = async (table: string, batchSize: number): Promise<Measurement> => {
    const queueName = `bench-pgonly-${suffix()}`;
    const batches = Math.ceil(ROWS / batchSize);
    const t = items(table);
    const store = createDrizzleStateStore({ db: storeDb });
    // The time runRange takes around the handler: the store's part of a batch's transaction.
    const overheads: number[] = [];
    const handlerMs = new Map<bigint, number>();
    const transactions = store.capabilities.transactions as RangeTransactions;
    const timed: StateStore = new Proxy(store as StateStore, {
      get(target, property, receiver) {
        if (property !== "capabilities") return Reflect.get(target, property, receiver) as unknown;
        return {
          transactions: {
            async runRange(...args: Parameters<RangeTransactions["runRange"]>) {
              const started = performance.now();
              const outcome = await transactions.runRange(...args);
              overheads.push(performance.now() - started - (handlerMs.get(args[2].beginId) ?? 0));
              return outcome;
            },
          } satisfies RangeTransactions,
        };
      },
    });
    const queue = createBullMQJobQueue({ connection: queuePool, queueName });
    const spreader = createSuperSpreader({ queue, store: timed });
    const name = `pgonly-${suffix()}`;
    spreader.define<{ execute(query: ReturnType<typeof sql>): Promise<unknown> }>(name, {
      transactional: true,
      source: createDrizzleIdSource({ db: storeDb, table: t, column: t.id }),
      // One cycle plans every batch at its start: nothing is throttled.
      config: { batchSize, duration: 1, perSecondOnPeak: batches, perSecondOffPeak: batches },
      async handle({ beginId, endId, tx }) {
        const started = performance.now();
        await tx.execute(sql`update ${sql.identifier(table)} set processed = processed + 1 where id between ${beginId.toString()} and ${endId.toString()}`);
        handlerMs.set(beginId, performance.now() - started);
      },
    });
    const worker = await runBullMQWorker({ spreader, connection: queuePool, queueName, concurrency: CONCURRENCY });
    const allDone = finished(spreader, batches);
    storePool.reset();
    const measurement = await time(async () => {
      await spreader.start(name);
      await allDone;
    });
    const { counts } = storePool;
    const store_: StoreCost = {
      statementsPerBatch: round(counts.store / batches, 2),
      statementMsPerBatch: round(counts.storeMs / batches, 2),
      runRangeOverheadMsMedian: round(median(overheads), 2),
      handlerStatementMsPerBatch: round(counts.handlerMs / batches, 2),
      byKind: Object.fromEntries(
        [...counts.byKind.entries()].sort((a, b) => b[1].n - a[1].n).map(([kind, { n, ms }]) => [kind, { perBatch: round(n / batches, 3), meanMs: round(ms / n, 2) }]),
      ),
    };
    if (counts.handler !== batches) throw new Error(`PostgreSQL only: ${counts.handler} handler statements for ${batches} batches`);
    await worker.close();
    await queue.close();
    const inspector = new Queue(queueName, { connection: { connectionString: databaseUrl, max: 2 } }, createPostgresBackend) as unknown as Queue;
    await inspector.obliterate({ force: true });
    await inspector.close();
    return { ...measurement, store: store_ };
  };

  const viaRedis = async (table: string, batchSize: number): Promise<Measurement> => {
    const queueName = `bench-pgonly-redis-${suffix()}`;
    const batches = Math.ceil(ROWS / batchSize);
    const t = items(table);
    const queue = createBullMQJobQueue({ connection: redis, queueName });
    const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: redis, prefix: `bench-${suffix()}` }) });
    const statement = updateRange(table);
    spreader.define("redis", {
      source: createDrizzleIdSource({ db: appDb, table: t, column: t.id }),
      config: { batchSize, duration: 1, perSecondOnPeak: batches, perSecondOffPeak: batches },
      async handle({ beginId, endId }) {
        await appPool.query(statement, [beginId.toString(), endId.toString()]);
      },
    });
    const worker = await runBullMQWorker({ spreader, connection: redis, queueName, concurrency: CONCURRENCY });
    const allDone = finished(spreader, batches);
    const measurement = await time(async () => {
      await spreader.start("redis");
      await allDone;
    });
    await worker.close();
    await queue.close();
    const inspector = new Queue(queueName, { connection: redis });
    await inspector.obliterate({ force: true });
    await inspector.close();
    return measurement;
  };

  const viaLoop = async (table: string, batchSize: number): Promise<Measurement> => {
    const statement = updateRange(table);
    const todo = ranges(batchSize);
    const lane = async () => {
      for (let next = todo.next(); !next.done; next = todo.next()) await appPool.query(statement, next.value);
    };
    return time(() => Promise.all(Array.from({ length: CONCURRENCY }, lane)));
  };

  const measure = async (method: MethodName, batchSize: number): Promise<Measurement> => {
    const table = `${TABLE_PREFIX}${suffix()}`;
    await seed(appPool, table);
    const m =
      method === "PostgreSQL only"
        ? await viaPostgresOnly(table, batchSize)
        : method === "Redis + BullMQ"
          ? await viaRedis(table, batchSize)
          : await viaLoop(table, batchSize);
    await verify(appPool, table);
    await appPool.query(`drop table ${table}`);
    return m;
  };

  // Warm-up (untimed): a small run of each method loads scripts into Redis and code into the JIT.
  const rows = ROWS;
  ROWS = Math.min(ROWS, 100_000);
  for (const method of METHODS) await measure(method, BATCH_SIZE);
  ROWS = rows;

  const batches = Math.ceil(ROWS / BATCH_SIZE);
  const loadBefore = loadavg()[0] ?? 0;
  console.log(`${ROWS} rows, batches of ${BATCH_SIZE} (${batches} batches), concurrency ${CONCURRENCY}, ${ROUNDS} rounds (load average ${loadBefore.toFixed(1)})`);
  const results = new Map<MethodName, Measurement[]>(METHODS.map((m) => [m, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const method of METHODS.map((_, i) => METHODS[(i + r) % METHODS.length] as MethodName)) {
      const m = await measure(method, BATCH_SIZE);
      results.get(method)?.push(m);
      const cost = m.store
        ? ` (store: ${m.store.statementsPerBatch} statements/batch, ${m.store.statementMsPerBatch} ms of statements/batch, runRange adds ${m.store.runRangeOverheadMsMedian} ms median)`
        : "";
      console.log(`  round ${r + 1}/${ROUNDS} ${method}: ${(m.ms / 1000).toFixed(2)} s, ${Math.round(ROWS / (m.ms / 1000))} rows/s, node CPU ${m.nodeCpuS.toFixed(2)} s${cost}`);
    }
  }
  const loadAfter = loadavg()[0] ?? 0;
  const of = (method: MethodName) => results.get(method) ?? [];
  const rowsPerSecond = (method: MethodName) => ROWS / (median(of(method).map((m) => m.ms)) / 1000);
  // The machine is shared: the ratio within each round (measured a minute apart at most) resists drift better.
  const perRound = (a: MethodName) => of(a).map((m, i) => (of("hand-written loop")[i]?.ms ?? m.ms) / m.ms);
  const pgOnly = perRound("PostgreSQL only");
  const redisRounds = perRound("Redis + BullMQ");
  const stores = of("PostgreSQL only").flatMap((m) => (m.store ? [m.store] : []));
  const storeCost = {
    statementsPerBatch: round(median(stores.map((s) => s.statementsPerBatch)), 2),
    statementMsPerBatch: round(median(stores.map((s) => s.statementMsPerBatch)), 2),
    runRangeOverheadMsMedian: round(median(stores.map((s) => s.runRangeOverheadMsMedian)), 2),
    handlerStatementMsPerBatch: round(median(stores.map((s) => s.handlerStatementMsPerBatch)), 2),
    // The statement kinds of the round with the median statement time (the first round is often the noisiest).
    byKindMedianRound: [...stores].sort((a, b) => a.statementMsPerBatch - b.statementMsPerBatch)[Math.floor(stores.length / 2)]?.byKind ?? {},
  };
  const summary =
    `rows/s (median): PostgreSQL only ${Math.round(rowsPerSecond("PostgreSQL only"))}, Redis + BullMQ ${Math.round(rowsPerSecond("Redis + BullMQ"))}, ` +
    `hand-written loop ${Math.round(rowsPerSecond("hand-written loop"))}; against the loop (median of per-round ratios): ` +
    `PostgreSQL only ${median(pgOnly).toFixed(3)}, Redis + BullMQ ${median(redisRounds).toFixed(3)}; ` +
    `store on PostgreSQL: ${storeCost.statementsPerBatch} statements/batch besides the UPDATE (ticks included), ` +
    `${storeCost.statementMsPerBatch} ms of statements/batch, runRange adds ${storeCost.runRangeOverheadMsMedian} ms/batch (median) around the handler`;
  console.log(summary);

  await Promise.all([appPool.end(), storePool.pool.end(), queuePool.end()]);
  redis.disconnect();

  const path = writeResult("postgres-only", "postgres-only", {
    rows: ROWS,
    batchSize: BATCH_SIZE,
    batches,
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    loadAverage: { before: round(loadBefore, 1), after: round(loadAfter, 1) },
    statement: "update <table> set processed = processed + 1 where id between $1 and $2",
    note:
      "Each superspreader method is timed from start() to its last batch finished (the run is marked completed by the next tick). " +
      "PostgreSQL only: BullMQ's PostgreSQL backend + store-drizzle in the rows' database, transactional handler (UPDATE and ledger record in one transaction). " +
      "Redis + BullMQ: store-redis, plain handler. Worker concurrency = loop concurrency = " +
      `${CONCURRENCY}. Store statements are counted on the store's pg pool (pg_stat_statements is not loaded on the bench server); ` +
      "they include BEGIN/COMMIT and the ticks' statements, spread over the batches; their ms overlap across concurrent batches. " +
      "PostgreSQL, Redis and node share the same cores.",
    summary,
    rowsPerSecond: Object.fromEntries(METHODS.map((m) => [m, Math.round(rowsPerSecond(m))])),
    ratiosToLoop: {
      postgresOnly: { perRound: pgOnly.map((v) => round(v, 3)), median: round(median(pgOnly), 3) },
      redisBullMQ: { perRound: redisRounds.map((v) => round(v, 3)), median: round(median(redisRounds), 3) },
    },
    storeCostPerBatch: storeCost,
    measurements: Object.fromEntries(METHODS.map((m) => [m, of(m).map((x) => ({ seconds: round(x.ms / 1000, 2), nodeCpuSeconds: round(x.nodeCpuS, 2), ...(x.store ? { store: x.store } : {}) }))])),
  });
  console.log(`wrote ${path}`);
} finally {
  // pool.end() resolves before the connections are gone; a forced drop meanwhile kills them with an
  // error nobody listens for any more (an uncaught exception): wait for them to leave first.
  for (let waited = 0; waited < 5_000; waited += 100) {
    const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where datname = $1", [databaseName]);
    if (rows[0]?.n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await admin.query(`drop database if exists ${databaseName} with (force)`).catch(() => {});
  await admin.end();
  await servers.stop();
}
