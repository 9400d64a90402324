/**
 * Redis memory of a backfill (issue #14): bytes per job that BullMQ and Bee-Queue hold while a
 * job waits for its run time (delayed) and after it finished (retained), with the adapters'
 * default retention, measured as the change of `INFO memory` used_memory on a redis-server of
 * its own. Jobs are made by the real runtime (a tick plans a cycle, workers run the batches),
 * so ids, payloads and options are the ones a backfill stores. The README's sizing note for
 * 100M rows multiplies these figures.
 *
 *   pnpm --filter @superspreader/bench exec tsx --conditions=@superspreader/source redis-memory.ts
 *   BENCH_JOBS=50000 pnpm --filter @superspreader/bench exec tsx --conditions=@superspreader/source redis-memory.ts
 *
 * Starts its own redis-server unless SUPERSPREADER_REDIS_URL is set; a server that anything else
 * writes to at the same time spoils the figures.
 */
import { createBeeQueueJobQueue, runBeeQueueWorker } from "@superspreader/adapter-bee-queue";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createMemoryIdSource, createSuperSpreader, estimate, validateConfig } from "@superspreader/core";
import type { BackfillConfigInput, JobQueue, SuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { round, suffix, writeResult } from "./src/report.js";
import { urlOf, useServers } from "./src/servers.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 20_000);
const FAILED_JOBS = Math.max(1, Math.floor(JOBS / 10));
const BATCH_SIZE = 70;

interface Reading {
  /** INFO used_memory after minus before, minus the events stream and the state store's keys. */
  readonly bytesPerJob: number;
  readonly jobs: number;
  readonly usedMemoryDelta: number;
  /** MEMORY USAGE of the queue's keys by kind (job hashes, indexes, events stream) and of the store's. */
  readonly breakdown: Record<string, { keys: number; bytes: number }>;
}

async function usedMemory(redis: Redis): Promise<number> {
  // Let lazy frees and client buffers settle, so the reading is the data's.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const info = await redis.info("memory");
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match) throw new Error("INFO memory has no used_memory");
  return Number(match[1]);
}

/** MEMORY USAGE (all samples) of every key matching `pattern`, grouped by `kind(key, type)`. */
async function breakdown(redis: Redis, pattern: string, kind: (key: string, type: string) => string) {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  const groups: Record<string, { keys: number; bytes: number }> = {};
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const pipeline = redis.pipeline();
    for (const key of chunk) pipeline.type(key).memory("USAGE", key, "SAMPLES", 0);
    const results = (await pipeline.exec()) ?? [];
    chunk.forEach((key, j) => {
      const type = String(results[2 * j]?.[1]);
      const bytes = Number(results[2 * j + 1]?.[1] ?? 0);
      const group = (groups[kind(key, type)] ??= { keys: 0, bytes: 0 });
      group.keys += 1;
      group.bytes += bytes;
    });
  }
  return groups;
}

/** Job hashes, the events stream, and the rest (sorted sets, lists, meta). */
function bullKind(queueName: string) {
  return (key: string, type: string) => {
    const rest = key.slice(`bull:${queueName}:`.length);
    if (rest === "events") return "events stream";
    if (type === "hash" && !["meta"].includes(rest) && !rest.includes(":")) return "job hashes";
    return "indexes (zsets, lists, meta)";
  };
}

function beeKind(key: string, type: string) {
  if (key.endsWith(":jobs")) return "jobs hash";
  return `${type} ${key.split(":").pop()}`;
}

interface Scenario {
  readonly queue: JobQueue;
  readonly queueName: string;
  /** Starts a worker; resolves to its close(). */
  readonly worker: (spreader: SuperSpreader, concurrency: number) => Promise<() => Promise<void>>;
  readonly keyPattern: string;
  readonly kind: (key: string, type: string) => string;
  /** Jobs the queue holds in any state (QueueCounts has no count of finished ones). */
  readonly countJobs: (groups: Record<string, { keys: number; bytes: number }>) => Promise<number>;
}

async function measure(
  redis: Redis,
  label: string,
  scenario: Scenario,
  options: { jobs: number; perSecond: number; concurrency: number; fail?: boolean; until: "planned" | "finished" },
): Promise<Reading> {
  const storePrefix = `mem-${suffix()}`;
  const spreader = createSuperSpreader({ queue: scenario.queue, store: createRedisStateStore({ client: redis, prefix: storePrefix }) });
  const config: BackfillConfigInput = {
    batchSize: BATCH_SIZE,
    // One cycle plans every batch: at `perSecond`, over jobs / perSecond seconds.
    duration: options.jobs / options.perSecond,
    perSecondOnPeak: options.perSecond,
    perSecondOffPeak: options.perSecond,
    maxAttempts: 1,
  };
  spreader.define("memory", {
    source: createMemoryIdSource({ minId: 1n, maxId: BigInt(options.jobs * BATCH_SIZE) }),
    config,
    handle: async ({ beginId }) => {
      // A realistic failure: an Error with its stack, as BullMQ keeps it.
      if (options.fail) throw new Error(`row ${beginId} could not be re-encrypted: key 1 rejected the tag`);
    },
  });
  const before = await usedMemory(redis);
  const planned = new Promise<void>((resolve) => spreader.on("cyclePlanned", () => resolve()));
  const finished = new Promise<void>((resolve) => spreader.on("completed", () => resolve()));
  await spreader.start("memory");
  const close = await scenario.worker(spreader, options.concurrency);
  const started = Date.now();
  await (options.until === "planned" ? planned : finished);
  await close();
  const counts = await scenario.queue.counts();
  const after = await usedMemory(redis);
  const groups = await breakdown(redis, scenario.keyPattern, scenario.kind);
  const store = await breakdown(redis, `${storePrefix}:*`, () => "state store");
  const events = groups["events stream"]?.bytes ?? 0;
  const jobs = await scenario.countJobs(groups);
  await scenario.queue.close();
  const reading: Reading = {
    bytesPerJob: round((after - before - events - (store["state store"]?.bytes ?? 0)) / jobs, 0),
    jobs,
    usedMemoryDelta: after - before,
    breakdown: { ...groups, ...store },
  };
  console.log(
    `${label}: ${jobs} jobs (${JSON.stringify(counts)}) in ${round((Date.now() - started) / 1000, 1)} s; ` +
      `used_memory +${round((after - before) / 2 ** 20, 2)} MiB → ${reading.bytesPerJob} bytes per job ` +
      `(events stream ${round(events / 2 ** 20, 2)} MiB, state store ${store["state store"]?.bytes ?? 0} bytes, not counted)`,
  );
  return reading;
}

function bullmq(redis: Redis): Scenario {
  const queueName = `mem-${suffix()}`;
  return {
    queue: createBullMQJobQueue({ connection: redis, queueName }),
    queueName,
    worker: async (spreader, concurrency) => {
      const worker = await runBullMQWorker({ spreader, connection: redis, queueName, concurrency, onError: () => undefined });
      return () => worker.close();
    },
    keyPattern: `bull:${queueName}:*`,
    kind: bullKind(queueName),
    countJobs: async (groups) => groups["job hashes"]?.keys ?? 0,
  };
}

function beeQueue(redis: Redis, url: string): Scenario {
  const queueName = `mem-${suffix()}`;
  return {
    queue: createBeeQueueJobQueue({ redis: url, queueName }),
    queueName,
    worker: async (spreader, concurrency) => {
      const worker = await runBeeQueueWorker({ spreader, redis: url, queueName, concurrency, onError: () => undefined });
      return () => worker.close();
    },
    keyPattern: `bq:${queueName}:*`,
    kind: beeKind,
    countJobs: () => redis.hlen(`bq:${queueName}:jobs`),
  };
}

/** The README quickstart's config, for the 100M-row sizing. */
const QUICKSTART: BackfillConfigInput = {
  batchSize: 70,
  duration: 10,
  perSecondOnPeak: 3,
  perSecondOffPeak: 7.5,
  peak: { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] },
};

function sizing(perCompleted: number, perDelayed: number, perBeeSucceeded: number) {
  const rows = 100_000_000n;
  const config = validateConfig(QUICKSTART);
  const batches = Number((rows + BigInt(config.batchSize) - 1n) / BigInt(config.batchSize));
  // Best and worst start: Friday 17:00 (a weekend off peak ahead) and Monday 05:00 Los Angeles (a week of peaks).
  const starts = { "Fri 17:00 LA": Date.parse("2026-11-20T17:00:00-08:00"), "Mon 05:00 LA": Date.parse("2026-11-16T05:00:00-08:00") };
  const runTimes = Object.fromEntries(
    Object.entries(starts).map(([label, from]) => {
      const eta = estimate({ config, from, idsRemaining: rows });
      return [label, round(((eta.finishAt ?? Number.NaN) - from) / 3_600_000, 1)];
    }),
  );
  // Completed jobs are kept a day: at most a day of batches (a weekend day, all off peak) plus a tick per cycle.
  const retainedPerDay = config.perSecondOffPeak * 86_400 + 86_400 / config.duration;
  const delayedAtOnce = Math.ceil(config.duration * config.perSecondOffPeak) + 1;
  const ticks = Math.ceil((Math.max(...Object.values(runTimes)) * 3600) / config.duration);
  return {
    rows: rows.toString(),
    batches,
    runTimeHours: runTimes,
    bullmq: {
      retainedCompletedJobs: retainedPerDay,
      retainedCompletedMiB: round((retainedPerDay * perCompleted) / 2 ** 20, 0),
      delayedJobsAtOnce: delayedAtOnce,
      delayedKiB: round((delayedAtOnce * perDelayed) / 1024, 0),
    },
    beeQueue: {
      retainedJobs: batches + ticks,
      retainedMiB: round(((batches + ticks) * perBeeSucceeded) / 2 ** 20, 0),
    },
  };
}

const servers = await useServers(["redis"]);
const url = urlOf(servers, "redis");
const redis = new Redis(url, { maxRetriesPerRequest: null });
try {
  const version = /^redis_version:(\S+)/m.exec(await redis.info("server"))?.[1] ?? "?";
  console.log(`redis-server ${version}, ${JOBS} jobs per measurement, ${BATCH_SIZE} ids per batch`);
  const bullDelayed = await measure(redis, "BullMQ delayed", bullmq(redis), { jobs: JOBS, perSecond: 10, concurrency: 1, until: "planned" });
  const bullCompleted = await measure(redis, "BullMQ completed (kept 1 day)", bullmq(redis), {
    jobs: JOBS,
    perSecond: 2_000,
    concurrency: 50,
    until: "finished",
  });
  const bullFailed = await measure(redis, "BullMQ failed (kept 7 days)", bullmq(redis), {
    jobs: FAILED_JOBS,
    perSecond: 2_000,
    concurrency: 50,
    fail: true,
    until: "finished",
  });
  const beeDelayed = await measure(redis, "Bee-Queue delayed", beeQueue(redis, url), { jobs: JOBS, perSecond: 10, concurrency: 1, until: "planned" });
  const beeSucceeded = await measure(redis, "Bee-Queue succeeded (kept forever)", beeQueue(redis, url), {
    jobs: JOBS,
    perSecond: 2_000,
    concurrency: 50,
    until: "finished",
  });
  const sized = sizing(bullCompleted.bytesPerJob, bullDelayed.bytesPerJob, beeSucceeded.bytesPerJob);
  console.log(`100M rows with the quickstart's config: ${JSON.stringify(sized, null, 2)}`);
  const path = writeResult("redis-memory", "exec tsx --conditions=@superspreader/source redis-memory.ts", {
    redisVersion: version,
    jobs: JOBS,
    batchSize: BATCH_SIZE,
    bytesPerJob: {
      bullmqDelayed: bullDelayed.bytesPerJob,
      bullmqCompleted: bullCompleted.bytesPerJob,
      bullmqFailed: bullFailed.bytesPerJob,
      beeQueueDelayed: beeDelayed.bytesPerJob,
      beeQueueSucceeded: beeSucceeded.bytesPerJob,
    },
    readings: { bullDelayed, bullCompleted, bullFailed, beeDelayed, beeSucceeded },
    sizing100M: sized,
  });
  console.log(`→ ${path}`);
} finally {
  redis.disconnect();
  await servers.stop();
}
