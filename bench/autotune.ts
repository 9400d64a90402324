/**
 * The closed loop under database load (issue #9): a real PostgreSQL with a foreground pgbench workload
 * (TPC-B-like read/write, a fixed offered rate, per-transaction latency log), and a superspreader
 * backfill over a large table (a real UPDATE per batch) in three arms, rotated from round to round:
 *
 * - **baseline**: pgbench alone;
 * - **fixed**: a hand-set aggressive batch size and rate, what a user would guess;
 * - **autotune**: the same ceilings with `autotune: {}` (batch size toward 100 ms, rate by AIMD) and
 *   health indicators (the source-drizzle built-ins plus an active-sessions load signal).
 *
 * Per arm: pgbench p50/p95/p99 latency and TPS over the seconds the backfill ran, as ratios to the
 * baseline of the same round, and the backfill's rows/s; for autotune the batch size and rate over time.
 * Writes results/autotune.json and results/autotune.svg.
 *
 *   pnpm --filter @superspreader/bench autotune
 *   BENCH_ROUNDS=2 BENCH_ROWS=2000000 BENCH_SECONDS=45 pnpm --filter @superspreader/bench autotune
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { createMemoryJobQueue, createMemoryStateStore, createMemoryWorker, createSuperSpreader } from "@superspreader/core";
import type { BackfillConfigInput, HealthIndicator } from "@superspreader/core";
import {
  createDrizzleIdSource,
  createPgAutovacuumIndicator,
  createPgConnectionIndicator,
  createPgLockWaitIndicator,
  createPgLongTransactionIndicator,
} from "@superspreader/source-drizzle";
import { drizzle } from "drizzle-orm/node-postgres";
import { bigint, pgTable, text } from "drizzle-orm/pg-core";
import pg from "pg";
import { createPgActiveSessionsIndicator, recorded, type RecordedReading } from "./src/autotune-health.js";
import { findPgbench, initPgbench, perSecond, runPgbench, windowStats, type PgbenchRun } from "./src/autotune-pgbench.js";
import { lineChart, type Series } from "./src/autotune-svg.js";
import { median, round, suffix, writeResult } from "./src/report.js";
import { urlOf, useServers } from "./src/servers.js";

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ROUNDS = num("BENCH_ROUNDS", 2);
const ROWS = num("BENCH_ROWS", 2_000_000);
/** Seconds of each arm's measured window (the backfill runs at most this long). */
const SECONDS = num("BENCH_SECONDS", 45);
/** Seconds pgbench runs before the window starts. */
const WARMUP = num("BENCH_WARMUP", 5);
const CONCURRENCY = num("BENCH_CONCURRENCY", 4);
const PGBENCH_CLIENTS = num("BENCH_PGBENCH_CLIENTS", 4);
/** pgbench's offered load (transactions/s; 0 = as fast as it goes). */
const PGBENCH_RATE = num("BENCH_PGBENCH_RATE", 500);
const PGBENCH_SCALE = num("BENCH_PGBENCH_SCALE", 10);
/** The hand-set config: what a user would guess to get it done fast. */
const FIXED_BATCH = num("BENCH_FIXED_BATCH", 5000);
const FIXED_RATE = num("BENCH_FIXED_RATE", 30);
/** The autotune arm's config batch size and rate (ceilings): the fixed ones unless set. */
const AUTO_BATCH = num("BENCH_AUTOTUNE_BATCH", FIXED_BATCH);
const AUTO_RATE = num("BENCH_AUTOTUNE_RATE", FIXED_RATE);
/** The active-sessions indicator's thresholds (mean client backends running a statement). */
const ACTIVE_SLOW = num("BENCH_ACTIVE_SLOW", cpus().length);
const ACTIVE_STOP = process.env.BENCH_ACTIVE_STOP === undefined ? null : Number(process.env.BENCH_ACTIVE_STOP);
/** autotune.rate.latenessMs (unset: core's default, 2,000 ms). */
const LATENESS_MS = process.env.BENCH_LATENESS_MS === undefined ? null : Number(process.env.BENCH_LATENESS_MS);

const ARMS = ["baseline", "fixed", "autotune"] as const;
type Arm = (typeof ARMS)[number];

const HEALTH_APP = "bench-health";
const BACKFILL = "autotune-bench";

/** A tuned event, as recorded. */
interface Decision {
  readonly t: number;
  readonly field: "batchSize" | "rate";
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

/** What one arm of one round measured. */
interface Measurement {
  readonly arm: Arm;
  readonly round: number;
  /** Seconds the window lasted: SECONDS for the baseline, the backfill's active time otherwise. */
  readonly windowS: number;
  readonly pgbench: { p50: number; p95: number; p99: number; tps: number; n: number };
  /** The same over the second half of the window only: after the loop had time to act. */
  readonly pgbenchSecondHalf: { p50: number; p95: number; p99: number; tps: number; n: number };
  /** Backfill rows/s in the second half of the window (from batches finished), or null for the baseline. */
  readonly rowsPerSecondSecondHalf: number | null;
  readonly backfill: { rows: number; rowsPerSecond: number; completed: boolean; batches: number; meanBatchMs: number } | null;
  /** Per second of the window (t from the window's start). */
  readonly series: Array<{ t: number; p95: number; p99: number; tps: number; rows: number; batchSize: number | null; perSecond: number | null }>;
  readonly decisions: Decision[];
  readonly health: RecordedReading[];
  readonly holds: Array<{ t: number; event: string; reason: string }>;
  readonly loadavg: { before: number[]; after: number[] };
  readonly pgbenchArgs: readonly string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function seed(pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`create table ${table} (id bigint primary key, email text not null, email_lower text) with (autovacuum_enabled = false)`);
  await pool.query(`insert into ${table} (id, email) select g, 'User.' || g || '@Example' || (g % 97) || '.COM' from generate_series(1, $1::bigint) g`, [ROWS]);
  // An index on the column written: every update maintains it (no HOT updates), as real backfills often do.
  await pool.query(`create index on ${table} (email_lower)`);
  await pool.query(`vacuum analyze ${table}`);
  await pool.query("checkpoint");
}

function configOf(arm: Arm): BackfillConfigInput {
  const fixed: BackfillConfigInput = { batchSize: FIXED_BATCH, duration: 1, perSecondOnPeak: FIXED_RATE, perSecondOffPeak: FIXED_RATE };
  if (arm !== "autotune") return fixed;
  return {
    ...fixed,
    batchSize: AUTO_BATCH,
    perSecondOnPeak: AUTO_RATE,
    perSecondOffPeak: AUTO_RATE,
    autotune: { batchSize: { targetMs: 100, min: 200, max: 50_000 }, rate: LATENESS_MS === null ? {} : { latenessMs: LATENESS_MS } },
    health: { interval: 1, timeout: 2, failClosedAfter: 10, stopHold: 5 },
  };
}

/** Runs one arm: pgbench for WARMUP + SECONDS (+ slack), the backfill (if any) from the window's start. */
async function measure(url: string, pgbench: string, arm: Arm, roundNo: number): Promise<Measurement> {
  const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
  const healthPool = new pg.Pool({ connectionString: url, max: 2, application_name: HEALTH_APP });
  const table = `bench_autotune_${suffix()}`;
  try {
    if (arm !== "baseline") await seed(pool, table);
    const loadBefore = loadavg().map((v) => round(v, 2));
    const bench = runPgbench(pgbench, url, { clients: PGBENCH_CLIENTS, seconds: WARMUP + SECONDS + 2, rate: PGBENCH_RATE });
    await sleep(WARMUP * 1000);
    const t0 = Date.now();
    const rowsAt: number[] = [];
    const decisions: Decision[] = [];
    const health: RecordedReading[] = [];
    const holds: Measurement["holds"] = [];
    const stateAt: Array<{ t: number; batchSize: number; perSecond: number }> = [];
    let backfill: Measurement["backfill"] = null;
    let windowEnd = t0 + SECONDS * 1000;

    if (arm !== "baseline") {
      const items = pgTable(table, { id: bigint("id", { mode: "bigint" }).primaryKey(), email: text("email"), emailLower: text("email_lower") });
      const hdb = drizzle({ client: healthPool });
      const indicators: HealthIndicator[] =
        arm === "autotune"
          ? [
              recorded("active sessions", createPgActiveSessionsIndicator({ pool: healthPool, ownApplicationName: HEALTH_APP, slow: ACTIVE_SLOW, stop: ACTIVE_STOP, samples: 10, spacingMs: 80 }), health, () => t0),
              recorded("long transactions", createPgLongTransactionIndicator({ db: hdb }), health, () => t0),
              recorded("lock waits", createPgLockWaitIndicator({ db: hdb }), health, () => t0),
              recorded("connections", createPgConnectionIndicator({ db: hdb }), health, () => t0),
              recorded("autovacuum", createPgAutovacuumIndicator({ db: hdb, table: items }), health, () => t0),
            ]
          : [];
      // The fixed arm acts on no indicator; its active sessions are sampled alongside, to compare.
      const watch = recorded("active sessions (observed only)", createPgActiveSessionsIndicator({ pool: healthPool, ownApplicationName: HEALTH_APP, slow: ACTIVE_SLOW, stop: ACTIVE_STOP, samples: 10, spacingMs: 80 }), health, () => t0);
      let watching = arm === "fixed";
      const watcher = (async () => {
        while (watching) {
          await watch({ backfill: BACKFILL, signal: AbortSignal.timeout(2_000) }).catch(() => {});
          await sleep(200);
        }
      })();
      const queue = createMemoryJobQueue();
      const spreader = createSuperSpreader({ queue, store: createMemoryStateStore() });
      const sql = `update ${table} set email_lower = lower(email) where id between $1 and $2`;
      const config = configOf(arm);
      spreader.define(BACKFILL, {
        source: createDrizzleIdSource({ db: drizzle({ client: pool }), table: items, column: items.id }),
        config,
        ...(indicators.length > 0 ? { health: indicators } : {}),
        async handle({ beginId, endId }) {
          await pool.query(sql, [beginId.toString(), endId.toString()]);
        },
      });
      let batches = 0;
      let batchMs = 0;
      let lastDone = t0;
      let batchSize = config.batchSize;
      let rate = config.perSecondOnPeak;
      stateAt.push({ t: 0, batchSize, perSecond: rate });
      spreader.on("batchFinished", (e) => {
        const i = Math.floor((e.at - t0) / 1000);
        rowsAt[i] = (rowsAt[i] ?? 0) + Number(e.endId - e.beginId + 1n);
        batches++;
        batchMs += e.durationMs;
        lastDone = Math.max(lastDone, e.at);
      });
      spreader.on("tuned", (e) => {
        decisions.push({ t: round((e.at - t0) / 1000, 1), field: e.field, from: e.from, to: e.to, reason: e.reason });
        batchSize = e.batchSize;
        rate = e.perSecond;
        stateAt.push({ t: (e.at - t0) / 1000, batchSize, perSecond: rate });
      });
      spreader.on("held", (e) => holds.push({ t: round((e.at - t0) / 1000, 1), event: "held", reason: e.reason }));
      spreader.on("resumed", (e) => holds.push({ t: round((e.at - t0) / 1000, 1), event: "resumed", reason: e.by ?? "" }));
      let completed = false;
      const done = new Promise<void>((resolve) =>
        spreader.on("completed", () => {
          completed = true;
          resolve();
        }),
      );
      const worker = createMemoryWorker({ queue, spreader, concurrency: CONCURRENCY, shutdown: "drain", shutdownTimeoutMs: 10_000 });
      worker.start();
      await spreader.start(BACKFILL);
      await Promise.race([done, sleep(Math.max(0, t0 + SECONDS * 1000 - Date.now()))]);
      if (!completed) await spreader.cancel(BACKFILL).catch(() => {});
      await worker.close();
      watching = false;
      await watcher;
      // The window is the time the backfill ran: to its last batch when it finished early.
      windowEnd = completed ? lastDone : Math.min(Date.now(), t0 + SECONDS * 1000);
      const { rows } = await pool.query<{ n: string }>(`select count(*) as n from ${table} where email_lower is not null`);
      const rowsDone = Number(rows[0]?.n ?? 0);
      backfill = { rows: rowsDone, rowsPerSecond: Math.round(rowsDone / ((windowEnd - t0) / 1000)), completed, batches, meanBatchMs: round(batches ? batchMs / batches : 0, 1) };
    } else {
      await sleep(SECONDS * 1000);
    }

    const run: PgbenchRun = await bench.done;
    const loadAfter = loadavg().map((v) => round(v, 2));
    const stats = windowStats(run.txns, t0, windowEnd);
    const half = t0 + (windowEnd - t0) / 2;
    const late = windowStats(run.txns, half, windowEnd);
    const halfRows = rowsAt.reduce((sum, n, i) => sum + (t0 + i * 1000 >= half - 500 && t0 + i * 1000 < windowEnd ? (n ?? 0) : 0), 0);
    const roundStats = (x: typeof stats) => ({ p50: round(x.p50, 3), p95: round(x.p95, 3), p99: round(x.p99, 3), tps: round(x.tps, 1), n: x.n });
    const stateAtSecond = (t: number) => [...stateAt].reverse().find((s) => s.t <= t + 1) ?? null;
    const series = perSecond(run.txns, t0, SECONDS).map((s) => {
      const state = arm === "autotune" ? stateAtSecond(s.t) : null;
      return {
        t: s.t,
        p95: round(s.p95, 2),
        p99: round(s.p99, 2),
        tps: s.tps,
        rows: arm === "baseline" ? 0 : (rowsAt[s.t] ?? 0),
        batchSize: state?.batchSize ?? null,
        perSecond: state?.perSecond ?? null,
      };
    });
    return {
      arm,
      round: roundNo,
      windowS: round((windowEnd - t0) / 1000, 1),
      pgbench: roundStats(stats),
      pgbenchSecondHalf: roundStats(late),
      rowsPerSecondSecondHalf: arm === "baseline" ? null : Math.round(halfRows / Math.max(0.001, (windowEnd - half) / 1000)),
      backfill,
      series,
      decisions,
      health,
      holds,
      loadavg: { before: loadBefore, after: loadAfter },
      pgbenchArgs: run.args,
    };
  } finally {
    await pool.query(`drop table if exists ${table}`).catch(() => {});
    await pool.end();
    await healthPool.end();
  }
}

const startedAt = Date.now();
const pgbench = findPgbench();
const servers = await useServers(["postgres"]);
try {
  const url = urlOf(servers, "postgres");
  initPgbench(pgbench, url, PGBENCH_SCALE);
  console.log(
    `pgbench ${pgbench}: scale ${PGBENCH_SCALE}, ${PGBENCH_CLIENTS} clients, ${PGBENCH_RATE > 0 ? `--rate ${PGBENCH_RATE}` : "unthrottled"}; ` +
      `backfill ${ROWS} rows, concurrency ${CONCURRENCY}, fixed ${FIXED_BATCH} ids × ${FIXED_RATE}/s; ${ROUNDS} rounds of ${SECONDS} s windows (+${WARMUP} s warm-up)`,
  );
  const measurements: Measurement[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const arm of ARMS.map((_, i) => ARMS[(i + r) % ARMS.length] as Arm)) {
      const m = await measure(url, pgbench, arm, r);
      measurements.push(m);
      const b = m.backfill;
      console.log(
        `  round ${r + 1}/${ROUNDS} ${arm}: pgbench p50 ${m.pgbench.p50} ms, p95 ${m.pgbench.p95} ms, p99 ${m.pgbench.p99} ms, ${m.pgbench.tps} tps over ${m.windowS} s` +
          (b ? `; backfill ${b.rows} rows, ${b.rowsPerSecond} rows/s${b.completed ? " (finished)" : ""}, ${b.batches} batches of mean ${b.meanBatchMs} ms` : "") +
          (m.decisions.length ? `; ${m.decisions.length} tuned decisions` : "") +
          ` (load ${m.loadavg.before[0]} → ${m.loadavg.after[0]})`,
      );
    }
  }

  // Ratios to the baseline of the same round (measured within a few minutes), then medians over rounds.
  const of = (arm: Arm) => measurements.filter((m) => m.arm === arm);
  const baselineOf = (r: number) => measurements.find((m) => m.arm === "baseline" && m.round === r) as Measurement;
  const metrics = ["p50", "p95", "p99", "tps"] as const;
  type Metric = (typeof metrics)[number];
  const byMetric = (value: (k: Metric) => number): Record<Metric, number> => ({ p50: value("p50"), p95: value("p95"), p99: value("p99"), tps: value("tps") });
  const figureOf = (arm: Arm) => {
    const ms = of(arm);
    const ratios = byMetric((k) => round(median(ms.map((m) => m.pgbench[k] / baselineOf(m.round).pgbench[k])), 3));
    const ratiosSecondHalf = byMetric((k) => round(median(ms.map((m) => m.pgbenchSecondHalf[k] / baselineOf(m.round).pgbenchSecondHalf[k])), 3));
    const rowsPerSecond = arm === "baseline" ? null : Math.round(median(ms.map((m) => m.backfill?.rowsPerSecond ?? 0)));
    const rowsSecondHalf = arm === "baseline" ? null : Math.round(median(ms.map((m) => m.rowsPerSecondSecondHalf ?? 0)));
    return {
      pgbench: byMetric((k) => round(median(ms.map((m) => m.pgbench[k])), 3)),
      ratioToBaseline: ratios,
      backfillRowsPerSecond: rowsPerSecond,
      secondHalf: { pgbench: byMetric((k) => round(median(ms.map((m) => m.pgbenchSecondHalf[k])), 3)), ratioToBaseline: ratiosSecondHalf, backfillRowsPerSecond: rowsSecondHalf },
      windowSeconds: ms.map((m) => m.windowS),
    };
  };
  const figures = { baseline: figureOf("baseline"), fixed: figureOf("fixed"), autotune: figureOf("autotune") };
  const throughputShare = round((figures.autotune.backfillRowsPerSecond ?? 0) / Math.max(1, figures.fixed.backfillRowsPerSecond ?? 0), 3);
  const p99Within = figures.autotune.ratioToBaseline.p99 <= 1.2;
  const summary = [
    `fixed: pgbench p99 ×${figures.fixed.ratioToBaseline.p99}, p95 ×${figures.fixed.ratioToBaseline.p95}, tps ×${figures.fixed.ratioToBaseline.tps}; backfill ${figures.fixed.backfillRowsPerSecond} rows/s`,
    `autotune: pgbench p99 ×${figures.autotune.ratioToBaseline.p99}, p95 ×${figures.autotune.ratioToBaseline.p95}, tps ×${figures.autotune.ratioToBaseline.tps}; backfill ${figures.autotune.backfillRowsPerSecond} rows/s = ${throughputShare} of fixed`,
    `second half of each window: fixed p99 ×${figures.fixed.secondHalf.ratioToBaseline.p99}, ${figures.fixed.secondHalf.backfillRowsPerSecond} rows/s; ` +
      `autotune p99 ×${figures.autotune.secondHalf.ratioToBaseline.p99}, ${figures.autotune.secondHalf.backfillRowsPerSecond} rows/s`,
    `targets: autotune p99 within 20% of baseline ${p99Within ? "✔" : "✘"}; autotune ≥ 70% of fixed throughput ${throughputShare >= 0.7 ? "✔" : "✘"}`,
  ];
  for (const line of summary) console.log(line);

  // The chart: the last round, every arm on one time axis.
  const last = (arm: Arm) => measurements.filter((m) => m.arm === arm).at(-1) as Measurement;
  const color: Record<Arm, string> = { baseline: "#777", fixed: "#d62728", autotune: "#1f77b4" };
  const line = (arm: Arm, pick: (s: Measurement["series"][number]) => number, cut = true): Series => ({
    label: arm,
    color: color[arm],
    points: last(arm).series.filter((s) => !cut || arm === "baseline" || s.t < Math.ceil(last(arm).windowS)).map((s) => [s.t + 0.5, pick(s)] as const),
  });
  const auto = last("autotune");
  const baseP95 = last("baseline").pgbench.p95;
  const svg = lineChart({
    title: "pgbench under a backfill: no backfill, fixed aggressive config, autotune + health",
    subtitle:
      `round ${ROUNDS} of ${ROUNDS}; pgbench ${PGBENCH_CLIENTS} clients ${PGBENCH_RATE > 0 ? `at ${PGBENCH_RATE} tps` : "unthrottled"}, scale ${PGBENCH_SCALE}; ` +
      `backfill ${ROWS.toLocaleString("en-US")} rows, fixed ${FIXED_BATCH} ids × ${FIXED_RATE}/s` +
      `${AUTO_BATCH !== FIXED_BATCH || AUTO_RATE !== FIXED_RATE ? `, autotune ceilings ${AUTO_BATCH} ids × ${AUTO_RATE}/s` : " (autotune: the same as ceilings)"}; ${cpus().length} cores`,
    xLabel: "seconds since the backfill started",
    xMax: SECONDS,
    panels: [
      { title: "pgbench p95 latency per second", unit: "ms", series: ARMS.map((a) => line(a, (s) => s.p95)), reference: { y: baseP95 * 1.2, label: "baseline p95 × 1.2" } },
      { title: "pgbench p99 latency per second", unit: "ms", series: ARMS.map((a) => line(a, (s) => s.p99)) },
      { title: "backfill rows/s", unit: "rows/s", series: (["fixed", "autotune"] as const).map((a) => line(a, (s) => s.rows)) },
      {
        title: "autotune: batch size and rate in force",
        unit: "ids per batch",
        rightUnit: "batches/s",
        series: [
          { label: "batch size", color: "#1f77b4", points: auto.series.filter((s) => s.t < Math.ceil(auto.windowS)).map((s) => [s.t + 0.5, s.batchSize ?? Number.NaN] as const) },
          { label: "rate", color: "#ff7f0e", dashed: true, right: true, points: auto.series.filter((s) => s.t < Math.ceil(auto.windowS)).map((s) => [s.t + 0.5, s.perSecond ?? Number.NaN] as const) },
        ],
      },
    ],
  });
  const svgPath = fileURLToPath(new URL("./results/autotune.svg", import.meta.url));
  writeFileSync(svgPath, svg);

  const path = writeResult("autotune", "autotune", {
    rows: ROWS,
    rounds: ROUNDS,
    windowSeconds: SECONDS,
    warmupSeconds: WARMUP,
    concurrency: CONCURRENCY,
    pgbench: { binary: pgbench, clients: PGBENCH_CLIENTS, rate: PGBENCH_RATE, scale: PGBENCH_SCALE, args: measurements[0]?.pgbenchArgs },
    configs: { fixed: configOf("fixed"), autotune: configOf("autotune") },
    healthIndicators: {
      "active sessions": `client backends in state active, mean of 10 samples 80 ms apart (spanning most of a 1 s cycle, whose batches start together); slow ≥ ${ACTIVE_SLOW}, stop ${ACTIVE_STOP === null ? "off" : `≥ ${ACTIVE_STOP}`} (bench/src/autotune-health.ts)`,
      builtIns: "createPgLongTransactionIndicator, createPgLockWaitIndicator, createPgConnectionIndicator, createPgAutovacuumIndicator (defaults)",
    },
    statement: "update <table> set email_lower = lower(email) where id between $1 and $2 (table with an index on email_lower and autovacuum_enabled = false)",
    note:
      "pgbench figures are over the seconds the backfill ran (from its start to its last batch, or to the window's end) and, for the baseline, " +
      "over the whole window (secondHalf: the second half of each, after the loop had time to act); ratios are to the baseline of the same round, then the median over rounds. With --rate, pgbench's latency " +
      "counts from each transaction's scheduled start. Everything (PostgreSQL, pgbench, this process) shares the machine's cores.",
    summary,
    figures,
    targets: { autotuneP99WithinTwentyPercent: p99Within, autotuneThroughputShareOfFixed: throughputShare, autotuneKeepsSeventyPercent: throughputShare >= 0.7 },
    totalSeconds: round((Date.now() - startedAt) / 1000, 0),
    measurements,
  });
  console.log(`wrote ${path} and ${svgPath} in ${Math.round((Date.now() - startedAt) / 1000)} s`);
} finally {
  await servers.stop();
}
