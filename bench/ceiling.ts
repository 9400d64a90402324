/**
 * Orchestration ceiling (issue #13): how fast superspreader runs batches when the handler does
 * nothing and the rate is so high that the queue is the limit, next to the queue's own worker on
 * the same Redis. Concurrency 50 everywhere. Arms, in rotating order each round:
 *
 * - superspreader on BullMQ (core + store-redis + adapter-bullmq, this tree), a backfill of
 *   `BENCH_BATCHES` one-id batches planned in one cycle; timed from `start()` to the last batch
 *   finished, so its own tick and enqueue are inside the time;
 * - the same at commit `BENCH_BASELINE_CEILING` (default 658fb4e, before issue #13's work), via src/baseline.ts;
 * - a raw BullMQ `Worker` processing the same number of pre-added jobs (same job options as the adapter's);
 * - the raw BullMQ worker again with the jobs added inside the timed part, as superspreader's own
 *   enqueue is (prioritized, 500 a pipeline, like the adapter): superspreader / this is its own
 *   per-batch cost without the enqueue;
 * - a raw Bee-Queue worker processing pre-added jobs;
 * - superspreader on Bee-Queue (adapter-bee-queue).
 *
 * Every timed measurement also reads `INFO commandstats` and CPU before and after (the server
 * is used by nothing else meanwhile). A separate, untimed pass per arm runs MONITOR to count the
 * commands clients send, EVALSHA named by script. The server is FLUSHALLed after each measurement,
 * so it is always one this benchmark started (`BENCH_HZ`, default Redis's 10).
 *
 *   pnpm --filter @superspreader/bench ceiling
 *   BENCH_BATCHES=10000 BENCH_ROUNDS=3 BENCH_COUNT_BATCHES=3000 pnpm --filter @superspreader/bench ceiling
 *   BENCH_RATE=800 …   # superspreader paced below the queue's speed: batches start on time (the cached-read path)
 */
import { createBeeQueueJobQueue, runBeeQueueWorker } from "@superspreader/adapter-bee-queue";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createMemoryIdSource, createSuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import BeeQueue from "bee-queue";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { loadBaseline } from "./src/baseline.js";
import { addClientScripts, commandStats, diff, libraryScriptNames, startMonitor, total, type Stat } from "./src/ceiling-commands.js";
import { startRedisWithHz } from "./src/lateness-servers.js";
import { median, round, suffix, writeResult } from "./src/report.js";

const BATCHES = Number(process.env.BENCH_BATCHES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COUNT_BATCHES = Number(process.env.BENCH_COUNT_BATCHES ?? 3_000);
/** superspreader's rate (batches/s); by default every batch is planned in the first second (a backlog: most start over a second late). */
const RATE = process.env.BENCH_RATE === undefined ? null : Number(process.env.BENCH_RATE);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const HZ = Number(process.env.BENCH_HZ ?? 10);
const BASELINE = process.env.BENCH_BASELINE_CEILING ?? "658fb4e";
const WITH_BEFORE = process.env.BENCH_NO_BEFORE !== "1";

type Core = typeof import("@superspreader/core");
type Bull = typeof import("@superspreader/adapter-bullmq");
type Store = typeof import("@superspreader/store-redis");

/** One arm's measurement, set up (untimed) and ready to go. */
interface Prepared {
  /** The timed part: resolves when every job or batch is done. */
  go(): Promise<void>;
  /** ioredis clients whose defined scripts name EVALSHA calls. */
  readonly clients: Redis[];
  cleanup(): Promise<void>;
}

interface Arm {
  readonly name: string;
  readonly queue: "bullmq" | "bee-queue";
  readonly kind: "superspreader" | "superspreader (before)" | "raw" | "raw (added while timed)";
  prepare(url: string, n: number): Promise<Prepared>;
}

/** Resolves after `n` calls of the returned function. */
function countdown(n: number): { tick: () => void; done: Promise<void> } {
  let left = n;
  let resolve = () => {};
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    tick: () => {
      if (--left === 0) resolve();
    },
    done,
  };
}

/** A payload of the size of a batch job's (`BatchJobData`). */
const payload = (i: number) => ({ kind: "batch", backfill: "ceiling", runId: "r0000000000a", cycle: 0, beginId: String(i), endId: String(i), scheduledAt: Date.now() });

interface Versions {
  readonly core: Pick<Core, "createSuperSpreader" | "createMemoryIdSource">;
  readonly bull: Pick<Bull, "createBullMQJobQueue" | "runBullMQWorker">;
  readonly store: Pick<Store, "createRedisStateStore">;
  readonly quietLog: boolean;
}

/** superspreader's backfill definition: `n` one-id batches, every one planned in the first cycle. */
function defineBackfill(spreader: ReturnType<Core["createSuperSpreader"]>, core: Versions["core"], name: string, n: number, onDone: () => void): void {
  spreader.define(name, {
    source: core.createMemoryIdSource({ minId: 1n, maxId: BigInt(n) }),
    config: { batchSize: 1, duration: 1, perSecondOnPeak: RATE ?? n, perSecondOffPeak: RATE ?? n },
    async handle() {},
  });
  spreader.on("batchFinished", onDone);
}

/** A superspreader arm's measurement: `start()` to the last batch; then its worker and queue closed, in that order. */
function preparedBackfill(spreader: { start(name: string): Promise<unknown> }, done: Promise<void>, connection: Redis, closing: Array<{ close(): Promise<void> }>): Prepared {
  return {
    clients: [connection],
    async go() {
      await spreader.start("ceiling");
      await done;
    },
    async cleanup() {
      for (const c of closing) await c.close();
      connection.disconnect();
    },
  };
}

function superspreaderBullMQ(v: Versions, kind: Arm["kind"]): Arm {
  return {
    name: kind === "superspreader" ? "superspreader on BullMQ" : `superspreader on BullMQ (before, ${BASELINE})`,
    queue: "bullmq",
    kind,
    async prepare(url, n) {
      const connection = new Redis(url, { maxRetriesPerRequest: null });
      const queueName = `ceiling-${suffix()}`;
      const queue = v.bull.createBullMQJobQueue({ connection, queueName });
      const spreader = v.core.createSuperSpreader({ queue, store: v.store.createRedisStateStore({ client: connection, prefix: `ceiling-${suffix()}` }) });
      const all = countdown(n);
      defineBackfill(spreader as never, v.core, "ceiling", n, all.tick);
      const worker = await v.bull.runBullMQWorker({ spreader, connection, queueName, concurrency: CONCURRENCY, ...(v.quietLog ? { log: "quiet" } : {}) } as never);
      return preparedBackfill(spreader, all.done, connection, [worker, queue]);
    },
  };
}

/**
 * A raw BullMQ worker. `addedInTimed`: the jobs are added inside the timed part, while the worker
 * runs, with the adapter's priority (1,000) in chunks of 500 as the adapter sends them; otherwise
 * they are plain jobs added beforehand.
 */
function rawBullMQ(addedInTimed: boolean): Arm {
  return {
    name: addedInTimed ? "raw BullMQ worker (jobs added while timed, prioritized)" : "raw BullMQ worker",
    queue: "bullmq",
    kind: addedInTimed ? "raw (added while timed)" : "raw",
    async prepare(url, n) {
      const connection = new Redis(url, { maxRetriesPerRequest: null });
      const queueName = `ceiling-raw-${suffix()}`;
      const queue = new Queue(queueName, { connection });
      await queue.getJobCounts("wait"); // connected and scripts loaded
      const now = Date.now();
      const jobs = Array.from({ length: n }, (_, i) => ({
        name: "batch",
        data: payload(i),
        opts: {
          jobId: `b.${i}`,
          timestamp: now,
          attempts: 3,
          backoff: { type: "exponential", delay: 1_000 },
          removeOnComplete: { age: 86_400 },
          removeOnFail: { age: 604_800 },
          ...(addedInTimed ? { priority: 1_000 } : {}),
        },
      }));
      const add = async (size: number) => {
        for (let i = 0; i < jobs.length; i += size) await queue.addBulk(jobs.slice(i, i + size));
      };
      if (!addedInTimed) await add(1_000);
      const all = countdown(n);
      const worker = new Worker(queueName, async () => all.tick(), { connection, concurrency: CONCURRENCY, autorun: false });
      await worker.waitUntilReady();
      return {
        clients: [connection],
        async go() {
          worker.run().catch(() => {});
          if (addedInTimed) await add(500);
          await all.done;
        },
        async cleanup() {
          await worker.close();
          await queue.close();
          connection.disconnect();
        },
      };
    },
  };
}

const rawBeeQueue: Arm = {
  name: "raw Bee-Queue worker",
  queue: "bee-queue",
  kind: "raw",
  async prepare(url, n) {
    const queueName = `ceiling-raw-${suffix()}`;
    const producer = new BeeQueue(queueName, { redis: { url }, isWorker: false, getEvents: false, storeJobs: false, activateDelayedJobs: false } as BeeQueue.QueueSettings);
    await producer.ready();
    const jobs = Array.from({ length: n }, (_, i) => producer.createJob<unknown>(payload(i)).setId(`b.${i}`).retries(2).backoff("exponential", 1_000));
    for (let i = 0; i < jobs.length; i += 1_000) await producer.saveAll(jobs.slice(i, i + 1_000));
    // The settings the adapter's worker uses.
    const worker = new BeeQueue(queueName, {
      redis: { url },
      isWorker: true,
      getEvents: false,
      storeJobs: false,
      activateDelayedJobs: true,
      delayedDebounce: 10,
      nearTermWindow: 5_000,
    } as BeeQueue.QueueSettings);
    await worker.ready();
    const all = countdown(n);
    return {
      clients: [],
      async go() {
        worker.process(CONCURRENCY, async () => all.tick());
        await all.done;
      },
      async cleanup() {
        await worker.close();
        await producer.close();
      },
    };
  },
};

const superspreaderBeeQueue: Arm = {
  name: "superspreader on Bee-Queue",
  queue: "bee-queue",
  kind: "superspreader",
  async prepare(url, n) {
    const connection = new Redis(url);
    const queueName = `ceiling-${suffix()}`;
    const queue = createBeeQueueJobQueue({ redis: url, queueName });
    const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: connection, prefix: `ceiling-${suffix()}` }) });
    const all = countdown(n);
    defineBackfill(spreader, { createSuperSpreader, createMemoryIdSource }, "ceiling", n, all.tick);
    const worker = await runBeeQueueWorker({ spreader, redis: url, queueName, concurrency: CONCURRENCY, log: "quiet" });
    return preparedBackfill(spreader, all.done, connection, [worker, queue]);
  },
};

/* ---------------------------------------------------------------------- main */

const AFTER: Versions = { core: { createSuperSpreader, createMemoryIdSource }, bull: { createBullMQJobQueue, runBullMQWorker }, store: { createRedisStateStore }, quietLog: true };
const arms: Arm[] = [superspreaderBullMQ(AFTER, "superspreader"), rawBullMQ(false), rawBeeQueue, superspreaderBeeQueue, rawBullMQ(true)];
if (WITH_BEFORE) {
  const before: Versions = {
    core: await loadBaseline<Core>("core", BASELINE),
    bull: await loadBaseline<Bull>("adapter-bullmq", BASELINE),
    store: await loadBaseline<Store>("store-redis", BASELINE),
    quietLog: true,
  };
  arms.splice(1, 0, superspreaderBullMQ(before, "superspreader (before)"));
}

interface Measurement {
  readonly ms: number;
  readonly jobsPerSecond: number;
  readonly executedPerBatch: number;
  readonly redisUsecPerBatch: number;
  readonly nodeCpuUsPerBatch: number;
  readonly redisCpuUsPerBatch: number;
}

const redis = await startRedisWithHz(HZ);
const admin = new Redis(redis.url);
const scriptNames = await libraryScriptNames();
const redisCpu = async () => {
  const info = await admin.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return field("used_cpu_user") + field("used_cpu_sys");
};

async function measure(arm: Arm, n: number): Promise<Measurement & { executed: Map<string, Stat> }> {
  const prepared = await arm.prepare(redis.url, n);
  const [stats, cpu, rcpu] = [await commandStats(admin), process.cpuUsage(), await redisCpu()];
  const started = performance.now();
  await prepared.go();
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const redisUsed = (await redisCpu()) - rcpu;
  const executed = diff(await commandStats(admin), stats);
  await prepared.cleanup();
  await admin.flushall();
  return {
    ms,
    jobsPerSecond: (n / ms) * 1000,
    executedPerBatch: [...executed.values()].reduce((a, s) => a + s.calls, 0) / n,
    redisUsecPerBatch: [...executed.values()].reduce((a, s) => a + s.usec, 0) / n,
    nodeCpuUsPerBatch: ((used.user + used.system) / n),
    redisCpuUsPerBatch: (redisUsed * 1e6) / n,
    executed,
  };
}

/** The untimed MONITOR pass: commands sent per batch, by name, and those run inside scripts. */
async function countPass(arm: Arm, n: number) {
  const prepared = await arm.prepare(redis.url, n);
  addClientScripts(scriptNames, prepared.clients);
  const adminAddr = `127.0.0.1:${(admin as unknown as { stream: { localPort: number } }).stream.localPort}`;
  const before = await commandStats(admin);
  const monitor = await startMonitor(redis.port, scriptNames, [adminAddr]);
  await prepared.go();
  await monitor.stop();
  const executed = diff(await commandStats(admin), before);
  await prepared.cleanup();
  await admin.flushall();
  const perBatch = (m: ReadonlyMap<string, number>) =>
    Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, c]) => [k, round(c / n, 3)]));
  return {
    batches: n,
    sentPerBatch: round(total(monitor.sent) / n, 3),
    inScriptsPerBatch: round(total(monitor.inScripts) / n, 3),
    executedPerBatch: round([...executed.values()].reduce((a, s) => a + s.calls, 0) / n, 3),
    sent: perBatch(monitor.sent),
    inScripts: perBatch(monitor.inScripts),
    executedUsecPerBatch: Object.fromEntries(
      [...executed].sort((a, b) => b[1].usec - a[1].usec).map(([k, s]) => [k, { calls: round(s.calls / n, 3), usec: round(s.usec / n, 2) }]),
    ),
  };
}

try {
  // Warm-up (untimed): scripts loaded, code paths in the JIT.
  for (const arm of arms) await measure(arm, Math.min(2_000, BATCHES));

  const results = new Map<Arm, Measurement[]>(arms.map((a) => [a, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = arms.map((_, i) => arms[(i + r) % arms.length] as Arm);
    for (const arm of order) {
      const { executed: _executed, ...m } = await measure(arm, BATCHES);
      results.get(arm)?.push(m);
      console.log(
        `round ${r + 1}/${ROUNDS} ${arm.name}: ${Math.round(m.jobsPerSecond)} jobs/s, ${m.executedPerBatch.toFixed(1)} executed/batch, ` +
          `node ${m.nodeCpuUsPerBatch.toFixed(0)} µs + redis ${m.redisCpuUsPerBatch.toFixed(0)} µs CPU/batch`,
      );
    }
  }

  const counts: Record<string, unknown> = {};
  for (const arm of arms) {
    const c = await countPass(arm, COUNT_BATCHES);
    counts[arm.name] = c;
    console.log(`commands (${arm.name}): ${c.sentPerBatch} sent/batch, ${c.executedPerBatch} executed/batch; sent ${JSON.stringify(c.sent)}`);
  }

  const raw = (queue: Arm["queue"]) => arms.find((a) => a.queue === queue && a.kind === "raw") as Arm;
  const rawAdded = arms.find((a) => a.kind === "raw (added while timed)") as Arm;
  const summary: Record<string, unknown> = {};
  for (const arm of arms) {
    const runs = results.get(arm) ?? [];
    const rawRuns = results.get(raw(arm.queue)) ?? [];
    const med = (f: (m: Measurement) => number) => round(median(runs.map(f)), 2);
    summary[arm.name] = {
      jobsPerSecond: Math.round(median(runs.map((m) => m.jobsPerSecond))),
      ...(arm.kind.startsWith("raw")
        ? {}
        : {
            overRaw: round(median(runs.map((m) => m.jobsPerSecond)) / median(rawRuns.map((m) => m.jobsPerSecond)), 3),
            overRawPerRoundMedian: round(median(runs.map((m, i) => m.jobsPerSecond / (rawRuns[i]?.jobsPerSecond ?? Number.NaN))), 3),
            ...(arm.queue === "bullmq"
              ? {
                  overRawAddedWhileTimedPerRoundMedian: round(
                    median(runs.map((m, i) => m.jobsPerSecond / ((results.get(rawAdded) ?? [])[i]?.jobsPerSecond ?? Number.NaN))),
                    3,
                  ),
                }
              : {}),
          }),
      executedPerBatch: med((m) => m.executedPerBatch),
      redisCommandUsecPerBatch: med((m) => m.redisUsecPerBatch),
      nodeCpuUsPerBatch: med((m) => m.nodeCpuUsPerBatch),
      redisCpuUsPerBatch: med((m) => m.redisCpuUsPerBatch),
      allJobsPerSecond: runs.map((m) => Math.round(m.jobsPerSecond)),
      commands: counts[arm.name],
    };
    const s = summary[arm.name] as Record<string, unknown>;
    console.log(
      `${arm.name}: ${s.jobsPerSecond} jobs/s${arm.kind.startsWith("raw") ? "" : ` → ${s.overRaw}× raw ${arm.queue} (per-round median ${s.overRawPerRoundMedian}${s.overRawAddedWhileTimedPerRoundMedian === undefined ? "" : `; ${s.overRawAddedWhileTimedPerRoundMedian}× raw BullMQ with its adds timed`})`}`,
    );
  }
  const path = writeResult("ceiling", "ceiling", {
    batches: BATCHES,
    rounds: ROUNDS,
    concurrency: CONCURRENCY,
    redisHz: HZ,
    superspreaderRate: RATE ?? "all batches in the first second",
    baselineCommit: WITH_BEFORE ? BASELINE : null,
    note:
      "No-op handler. superspreader is timed from start() to the last batchFinished (its tick and enqueue of the cycle included); raw workers " +
      "process pre-added jobs. executedPerBatch and redisCommandUsecPerBatch come from INFO commandstats around each timed run (scripts' inner calls " +
      "included); commands.sent from a separate MONITOR pass of commands.batches batches. Target: superspreader on BullMQ ≥ 0.90× raw BullMQ.",
    target: { superspreaderOverRawBullMQ: 0.9 },
    arms: summary,
  });
  console.log(`wrote ${path}`);
} finally {
  admin.disconnect();
  await redis.stop();
}
