/**
 * Start lateness (issue #13): how long after its planned run time each batch's handler starts,
 * at 20 batches/s over `BENCH_SECONDS` (default 60), for every combination of
 *
 * - queue: BullMQ (adapter-bullmq) and Bee-Queue (adapter-bee-queue, its worker's defaults);
 * - mode: whole-second (a second's batches all planned at its start) and `spreadWithinSecond`
 *   (one every 50 ms);
 * - Redis `hz 10` (Redis's default) and `hz 100`, each a redis-server of its own.
 *
 * The eight backfills run at the same time in this process (160 batches/s in all, a light load),
 * each with its own queue, state-store prefix and worker (concurrency 20, so a whole second's
 * batches can start together). The planned time reaches the handler through the `batchStarted`
 * event's `scheduledAt` (the job's `BatchJobData.scheduledAt`); the handler records
 * `Date.now() − scheduledAt`. Reported for all batches, and apart for those planned in each cycle's
 * first second (a cycle starts when the tick that plans it runs) and the rest. Also counted: starts
 * per second from the first planned batch, and in spread mode their largest deviation from the rate.
 * Targets: p95 ≤ 50 ms on both queues with the documented settings; in spread mode every second within ±1 of the rate.
 *
 *   pnpm --filter @superspreader/bench lateness
 *   BENCH_SECONDS=60 BENCH_RATE=20 BENCH_CYCLE_SECONDS=10 pnpm --filter @superspreader/bench lateness
 */
import { createBeeQueueJobQueue, runBeeQueueWorker } from "@superspreader/adapter-bee-queue";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createMemoryIdSource, createSuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { startRedisWithHz, type HzRedis } from "./src/lateness-servers.js";
import { round, suffix, writeResult } from "./src/report.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const RATE = Number(process.env.BENCH_RATE ?? 20);
const CYCLE_SECONDS = Number(process.env.BENCH_CYCLE_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const HZS = (process.env.BENCH_HZ ?? "10,100").split(",").map(Number);

type QueueKind = "bullmq" | "bee-queue";
type Mode = "whole-second" | "spread";

interface Combo {
  readonly queue: QueueKind;
  readonly mode: Mode;
  readonly hz: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

async function runCombo(combo: Combo, redis: HzRedis) {
  const batches = RATE * SECONDS;
  const queueName = `lateness-${combo.queue}-${combo.mode}-${suffix()}`;
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue =
    combo.queue === "bullmq" ? createBullMQJobQueue({ connection, queueName }) : createBeeQueueJobQueue({ redis: redis.url, queueName });
  const store = createRedisStateStore({ client: connection, prefix: `lateness-${suffix()}` });
  // Which batches took the start-slot reservation (a round trip, and a wait when the slot is later), and how long they waited.
  const waits: number[] = [];
  const readForStart = store.readForStart.bind(store);
  store.readForStart = async (...args: Parameters<typeof readForStart>) => {
    const answer = await readForStart(...args);
    waits.push(answer.waitMs);
    return answer;
  };
  const spreader = createSuperSpreader({ queue, store });
  const planned = new Map<string, number>();
  const starts: Array<{ cycle: number; plannedAt: number; startedAt: number }> = [];
  let resolveAll = () => {};
  const allDone = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  spreader.on("batchStarted", (e) => {
    if (e.scheduledAt !== undefined) planned.set(`${e.cycle}:${e.beginId}`, e.scheduledAt);
  });
  spreader.define("lateness", {
    source: createMemoryIdSource({ minId: 1n, maxId: BigInt(batches) }),
    config: { batchSize: 1, duration: CYCLE_SECONDS, perSecondOnPeak: RATE, perSecondOffPeak: RATE, spreadWithinSecond: combo.mode === "spread" },
    async handle({ cycle, beginId }) {
      const startedAt = Date.now();
      const plannedAt = planned.get(`${cycle}:${beginId}`);
      if (plannedAt !== undefined) starts.push({ cycle, plannedAt, startedAt });
      if (starts.length === batches) resolveAll();
    },
  });
  const worker =
    combo.queue === "bullmq"
      ? await runBullMQWorker({ spreader, connection, queueName, concurrency: CONCURRENCY, log: "quiet" })
      : await runBeeQueueWorker({ spreader, redis: redis.url, queueName, concurrency: CONCURRENCY, log: "quiet" });
  await spreader.start("lateness");
  const timedOut = await Promise.race([allDone.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), (SECONDS + 60) * 1000))]);
  await worker.close();
  await queue.close();
  connection.disconnect();

  const lateness = starts.map((s) => s.startedAt - s.plannedAt).sort((a, b) => a - b);
  // A cycle starts when its tick runs (core's cycleStart: at the run's nextTickAt), so its first
  // batches are planned for the moment the tick that enqueues them starts. Told apart here: the
  // batches planned in each cycle's first second, and all the others.
  const cycleStartAt = new Map<number, number>();
  for (const s of starts) cycleStartAt.set(s.cycle, Math.min(cycleStartAt.get(s.cycle) ?? Number.POSITIVE_INFINITY, s.plannedAt));
  const inFirstSecond = (s: (typeof starts)[number]) => s.plannedAt - (cycleStartAt.get(s.cycle) ?? 0) < 1_000;
  const sortedLateness = (list: typeof starts) => list.map((s) => s.startedAt - s.plannedAt).sort((a, b) => a - b);
  const firstSecond = sortedLateness(starts.filter(inFirstSecond));
  const rest = sortedLateness(starts.filter((s) => !inFirstSecond(s)));
  const origin = Math.min(...starts.map((s) => s.plannedAt));
  const lastPlanned = Math.max(...starts.map((s) => s.plannedAt));
  // Starts per second of the plan's grid: second k is [origin + k s, origin + (k + 1) s).
  const seconds = Math.floor((lastPlanned - origin) / 1000) + 1;
  const perSecond = Array.from({ length: seconds }, () => 0);
  for (const s of starts) {
    const k = Math.floor((s.startedAt - origin) / 1000);
    if (k >= 0 && k < seconds) perSecond[k] = (perSecond[k] ?? 0) + 1;
  }
  // The last second may be short when the run ends mid-second; it is left out of the deviation.
  const full = perSecond.slice(0, Math.max(1, seconds - 1));
  return {
    ...combo,
    batches: starts.length,
    timedOut,
    latenessMs: {
      p50: percentile(lateness, 50),
      p95: percentile(lateness, 95),
      p99: percentile(lateness, 99),
      max: lateness[lateness.length - 1] ?? Number.NaN,
      min: lateness[0] ?? Number.NaN,
      mean: round(lateness.reduce((a, b) => a + b, 0) / Math.max(1, lateness.length), 1),
    },
    cycleFirstSecondLatenessMs: { batches: firstSecond.length, p50: percentile(firstSecond, 50), p95: percentile(firstSecond, 95), max: firstSecond[firstSecond.length - 1] ?? null },
    otherLatenessMs: { batches: rest.length, p50: percentile(rest, 50), p95: percentile(rest, 95), p99: percentile(rest, 99), max: rest[rest.length - 1] ?? null },
    startReservations: (() => {
      const sorted = [...waits].sort((a, b) => a - b);
      const waited = sorted.filter((w) => w > 0);
      return { calls: waits.length, waited: waited.length, waitMsP50: percentile(waited, 50), waitMsMax: waited[waited.length - 1] ?? null };
    })(),
    // Where the late starts are: [ms of the planned time from the first planned batch, cycle, lateness ms], the 100 latest.
    latest: [...starts]
      .sort((a, b) => b.startedAt - b.plannedAt - (a.startedAt - a.plannedAt))
      .slice(0, 100)
      .map((s) => [s.plannedAt - origin, s.cycle, s.startedAt - s.plannedAt]),
    startsPerSecond: {
      // Any one-second window holds `RATE` slots of a spread grid, so this is meaningful in spread mode only
      // (whole-second slots of a later cycle may sit anywhere in a window aligned to the first cycle).
      maxDeviationFromRate: combo.mode === "spread" ? Math.max(...full.map((c) => Math.abs(c - RATE))) : null,
      secondsOffByMoreThanOne: combo.mode === "spread" ? full.filter((c) => Math.abs(c - RATE) > 1).length : null,
      counts: perSecond,
    },
  };
}

const servers: HzRedis[] = [];
try {
  for (const hz of HZS) servers.push(await startRedisWithHz(hz));
  const combos: Array<{ combo: Combo; redis: HzRedis }> = [];
  for (const redis of servers)
    for (const queue of ["bullmq", "bee-queue"] as const)
      for (const mode of ["whole-second", "spread"] as const) combos.push({ combo: { queue, mode, hz: redis.hz }, redis });
  console.log(`${combos.length} backfills of ${RATE * SECONDS} batches at ${RATE}/s (${SECONDS} s, ${CYCLE_SECONDS} s cycles), all at once…`);
  const results = await Promise.all(combos.map(({ combo, redis }) => runCombo(combo, redis)));
  for (const r of results) {
    const l = r.latenessMs;
    const o = r.otherLatenessMs;
    console.log(
      `${r.queue.padEnd(9)} ${r.mode.padEnd(12)} hz ${String(r.hz).padEnd(3)}: lateness p50/p95/p99 ${l.p50}/${l.p95}/${l.p99} ms (max ${l.max}); ` +
        `cycles' first second p50/p95 ${r.cycleFirstSecondLatenessMs.p50}/${r.cycleFirstSecondLatenessMs.p95} ms, the rest ${o.p50}/${o.p95}/${o.p99} ms` +
        (r.mode === "spread" ? `; starts/s max deviation ${r.startsPerSecond.maxDeviationFromRate} (${r.startsPerSecond.secondsOffByMoreThanOne} seconds off by > 1)` : "") +
        `; ${r.startReservations.calls} start reservations, ${r.startReservations.waited} waited (p50 ${r.startReservations.waitMsP50} ms)` +
        (r.timedOut ? " TIMED OUT" : ""),
    );
  }
  const path = writeResult("lateness", "lateness", {
    seconds: SECONDS,
    rate: RATE,
    cycleSeconds: CYCLE_SECONDS,
    concurrency: CONCURRENCY,
    note:
      "All combinations ran at the same time in one process. lateness = handler start (Date.now()) − the batch's planned run time (scheduledAt). " +
      "startsPerSecond.counts: handler starts per second of the plan's grid, from the first planned batch; the deviation leaves out the last (partial) second. " +
      "Bee-Queue runs with its worker's defaults (delayedDebounceMs 10, nearTermWindowMs 5000).",
    targets: { p95Ms: 50, spreadPerSecondDeviation: 1 },
    results,
  });
  console.log(`wrote ${path}`);
} finally {
  await Promise.allSettled(servers.map((s) => s.stop()));
}
