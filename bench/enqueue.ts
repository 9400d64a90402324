/**
 * Enqueue cost (issue #3).
 *
 * Part 1: one scheduler cycle of 10,000 batch jobs (plus its next tick, as the runtime
 * enqueues them) through each adapter's `enqueue`, against the same jobs through the
 * raw client in bulk (BullMQ `addBulk`, Bee-Queue `saveAll`) and one awaited `add` /
 * `save` at a time. Same Redis, same job options, fresh queues, medians of several rounds.
 * Timed from the job list (`QueueJob`s, as the runtime hands them over) to stored, so the
 * raw methods pay for mapping them to their library's job objects, as the adapter does.
 * Target: adapter ≤ 1.10 × raw bulk.
 *
 * Part 2: Redis commands the runtime's bookkeeping (the state store) sends per executed
 * batch job, over a real backfill with BullMQ workers. The store has its own client and
 * its own redis-server, so the queue's traffic is not counted. Target: ≤ 3. Measured for
 * this version and for the baseline (BENCH_BASELINE, default the release before issue #8)
 * in the same run, so what reconciliation and the watchdog add per batch is their difference
 * (target: at most one command more than before). Part 1 also times the baseline adapter.
 *
 *   pnpm --filter @superspreader/bench enqueue
 *   BENCH_BATCHES=10000 BENCH_ROUNDS=5 SUPERSPREADER_REDIS_URL=redis://… pnpm --filter @superspreader/bench enqueue
 */
import { createBeeQueueJobQueue } from "@superspreader/adapter-bee-queue";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { batchJobId, createMemoryIdSource, createSuperSpreader, spread, tickJobId, validateConfig } from "@superspreader/core";
import type { JobQueue, QueueJob } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import BeeQueue from "bee-queue";
import { Queue } from "bullmq";
import type { JobsOptions } from "bullmq";
import { Redis } from "ioredis";
import { BASELINE_COMMIT, loadBaseline } from "./src/baseline.js";
import { median, round, suffix, timeMs, writeResult } from "./src/report.js";
import { urlOf, useServers } from "./src/servers.js";

const BATCHES = Number(process.env.BENCH_BATCHES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11);
const BACKOFF_MS = 1_000;

/* ------------------------------------------------------- the jobs of one cycle */

/** The jobs one cycle of `BATCHES` batches produces, built as the runtime builds them (highest ids first, next tick last). */
function cycleJobs(name: string, runId: string): QueueJob[] {
  const perSecond = 100;
  const config = validateConfig({ batchSize: 100, duration: BATCHES / perSecond, perSecondOnPeak: perSecond, perSecondOffPeak: perSecond });
  const beginAt = Date.now() + 5_000;
  const jobs: QueueJob[] = spread({ initialId: 1_000_000_000n, batchSize: config.batchSize, perSecond, duration: config.duration, beginAt }).map(
    (batch) => ({
      id: batchJobId(name, runId, 0, batch),
      runAt: batch.runAt.getTime(),
      attempts: config.maxAttempts,
      data: {
        kind: "batch",
        backfill: name,
        runId,
        cycle: 0,
        beginId: batch.beginId.toString(),
        endId: batch.endId.toString(),
        scheduledAt: batch.runAt.getTime(),
      },
    }),
  );
  const nextTickAt = beginAt + config.duration * 1000;
  jobs.push({
    id: tickJobId(name, runId, 1, 0),
    runAt: nextTickAt,
    attempts: 25,
    data: { kind: "tick", backfill: name, runId, cycle: 1, epoch: 0, scheduledAt: nextTickAt },
  });
  return jobs;
}

/** The same jobs as BullMQ bulk entries, with the options the adapter gives them. */
function bullJobs(jobs: readonly QueueJob[]): Array<{ name: string; data: QueueJob["data"]; opts: JobsOptions }> {
  const now = Date.now();
  return jobs.map((job) => ({
    name: job.data.kind,
    data: job.data,
    opts: {
      jobId: job.id,
      timestamp: now,
      delay: Math.max(0, job.runAt - now),
      attempts: job.attempts,
      backoff: { type: "exponential", delay: BACKOFF_MS },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 604_800 },
    },
  }));
}

/** The same jobs as Bee-Queue jobs, with the options the adapter gives them. */
function beeJobs(queue: BeeQueue, jobs: readonly QueueJob[]): BeeQueue.Job<unknown>[] {
  return jobs.map((job) =>
    queue.createJob<unknown>(job.data).setId(job.id).retries(job.attempts - 1).backoff("exponential", BACKOFF_MS).delayUntil(Math.ceil(job.runAt)),
  );
}

/* ------------------------------------------------------------------- methods */

/** One way of storing a cycle: opens a fresh queue (untimed), stores the jobs (timed), deletes the queue (untimed). */
interface Method {
  readonly library: "bullmq" | "bee-queue";
  readonly name: "adapter" | "adapter (before)" | "raw bulk" | "raw one by one";
  run(jobs: readonly QueueJob[]): Promise<number>;
}

type Bull = typeof import("@superspreader/adapter-bullmq");
type Core = typeof import("@superspreader/core");
type Store = typeof import("@superspreader/store-redis");
const before = {
  bull: await loadBaseline<Bull>("adapter-bullmq"),
  core: await loadBaseline<Core>("core"),
  store: await loadBaseline<Store>("store-redis"),
};

function bullMethods(connection: Redis): Method[] {
  /** Times `store` on a fresh, connected queue, then deletes the queue. */
  const method = (name: Method["name"], store: (queue: Queue, jobs: readonly QueueJob[]) => Promise<unknown>): Method => ({
    library: "bullmq",
    name,
    async run(jobs) {
      const queue = new Queue(`bench-enqueue-${suffix()}`, { connection });
      await queue.getJobCounts("delayed"); // connected and scripts loaded
      const ms = await timeMs(() => store(queue, jobs));
      await queue.obliterate({ force: true });
      await queue.close();
      return ms;
    },
  });
  return [
    method("adapter", async (queue, jobs) => {
      const adapter: JobQueue = createBullMQJobQueue({ connection, queueName: queue.name });
      await adapter.enqueue(jobs);
      await adapter.close();
    }),
    method("adapter (before)", async (queue, jobs) => {
      const adapter = before.bull.createBullMQJobQueue({ connection, queueName: queue.name });
      await adapter.enqueue(jobs as never);
      await adapter.close();
    }),
    method("raw bulk", (queue, jobs) => queue.addBulk(bullJobs(jobs))),
    method("raw one by one", async (queue, jobs) => {
      for (const job of bullJobs(jobs)) await queue.add(job.name, job.data, job.opts);
    }),
  ];
}

function beeMethods(redisUrl: string): Method[] {
  /** Times `store` on a fresh, connected producer, then destroys the queue. */
  const method = (name: Method["name"], store: (queue: BeeQueue, jobs: readonly QueueJob[]) => Promise<unknown>): Method => ({
    library: "bee-queue",
    name,
    async run(jobs) {
      const queue = new BeeQueue(`bench-enqueue-${suffix()}`, {
        redis: { url: redisUrl },
        isWorker: false,
        getEvents: false,
        storeJobs: false,
        activateDelayedJobs: false,
      } as BeeQueue.QueueSettings);
      await queue.ready();
      const ms = await timeMs(() => store(queue, jobs));
      await queue.destroy();
      await queue.close();
      return ms;
    },
  });
  return [
    // The adapter over the injected producer (it never closes an injected queue).
    method("adapter", (queue, jobs) => createBeeQueueJobQueue({ queue }).enqueue(jobs)),
    method("raw bulk", (queue, jobs) => queue.saveAll(beeJobs(queue, jobs))),
    method("raw one by one", async (queue, jobs) => {
      for (const job of beeJobs(queue, jobs)) await job.save();
    }),
  ];
}

/* ------------------------------------------------- part 2: store commands per batch */

/** Counts the commands an ioredis client sends (each command once, even if ioredis re-sends it from its offline queue). */
function countCommands(client: Redis): { counts: Map<string, number>; reset(): void } {
  const counts = new Map<string, number>();
  const seen = new WeakSet<object>();
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string }, stream?: unknown) => {
    if (!seen.has(command)) {
      seen.add(command);
      counts.set(command.name, (counts.get(command.name) ?? 0) + 1);
    }
    return send(command as never, stream as never);
  }) as typeof client.sendCommand;
  return { counts, reset: () => counts.clear() };
}

/** Calls per command from `INFO commandstats`, without the admin commands used to read them. */
async function serverCommandStats(admin: Redis): Promise<Map<string, number>> {
  const stats = new Map<string, number>();
  for (const line of (await admin.info("commandstats")).split("\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match && !/^(info|config|client|hello|ping)/.test(match[1] ?? "")) stats.set(match[1] as string, Number(match[2]));
  }
  return stats;
}

const total = (counts: ReadonlyMap<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

/** The runtime of one version: this one, or the baseline's. */
interface Version {
  readonly label: "after" | "before";
  readonly createSuperSpreader: Core["createSuperSpreader"];
  readonly createMemoryIdSource: Core["createMemoryIdSource"];
  readonly createBullMQJobQueue: Bull["createBullMQJobQueue"];
  readonly runBullMQWorker: Bull["runBullMQWorker"];
  readonly createRedisStateStore: Store["createRedisStateStore"];
}
const AFTER: Version = { label: "after", createSuperSpreader, createMemoryIdSource, createBullMQJobQueue, runBullMQWorker, createRedisStateStore };
const BEFORE: Version = {
  label: "before",
  createSuperSpreader: before.core.createSuperSpreader as never,
  createMemoryIdSource: before.core.createMemoryIdSource as never,
  createBullMQJobQueue: before.bull.createBullMQJobQueue as never,
  runBullMQWorker: before.bull.runBullMQWorker as never,
  createRedisStateStore: before.store.createRedisStateStore as never,
};

async function storeCommandsPerBatch(version: Version, queueRedisUrl: string, storeRedisUrl: string) {
  const { createSuperSpreader, createMemoryIdSource, createBullMQJobQueue, runBullMQWorker, createRedisStateStore } = version;
  const ids = 200_000n;
  const config = { batchSize: 100, duration: 2, perSecondOnPeak: 250, perSecondOffPeak: 250 }; // 2,000 batches, 500 per cycle
  const queueConnection = new Redis(queueRedisUrl, { maxRetriesPerRequest: null });
  const storeClient = new Redis(storeRedisUrl);
  const admin = new Redis(storeRedisUrl);
  await Promise.all([storeClient.ping(), admin.ping()]);
  const name = `cmds-${suffix()}`;
  const queueName = `bench-cmds-${suffix()}`;
  const queue = createBullMQJobQueue({ connection: queueConnection, queueName });
  const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: storeClient, prefix: `bench-${suffix()}` }) });
  let batches = 0;
  spreader.define(name, {
    source: createMemoryIdSource({ minId: 1n, maxId: ids }),
    config,
    async handle() {
      batches += 1;
    },
  });
  const worker = await runBullMQWorker({ spreader, connection: queueConnection, queueName, concurrency: 8, ...(version.label === "after" ? { log: "quiet" } : {}) } as never);
  const client = countCommands(storeClient);
  await admin.config("RESETSTAT");
  let ticks = 0;
  spreader.on("cyclePlanned", () => {
    ticks += 1;
  });
  const completed = new Promise<void>((resolve) => spreader.on("completed", () => resolve()));
  const started = performance.now();
  await spreader.start(name);
  await completed;
  const seconds = (performance.now() - started) / 1000;
  const server = await serverCommandStats(admin);
  const clientCounts = new Map(client.counts);
  await worker.close();
  const inspector = new Queue(queueName, { connection: queueConnection });
  await inspector.obliterate({ force: true });
  await inspector.close();
  await queue.close();
  queueConnection.disconnect();
  storeClient.disconnect();
  admin.disconnect();
  return {
    version: version.label,
    ids: ids.toString(),
    config,
    batches,
    cyclesPlanned: ticks,
    seconds: round(seconds, 1),
    clientCommands: Object.fromEntries(clientCounts),
    clientCommandsPerBatch: round(total(clientCounts) / batches, 3),
    serverCommands: Object.fromEntries(server),
    serverCommandsPerBatch: round(total(server) / batches, 3),
  };
}

/* ---------------------------------------------------------------------- main */

const servers = await useServers(["redis", "store-redis"]);
try {
  const redisUrl = urlOf(servers, "redis");
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const methods = [...bullMethods(connection), ...beeMethods(redisUrl)];
  const timings = new Map<Method, number[]>(methods.map((m) => [m, []]));

  // Warm-up (untimed): loads every Lua script into Redis and the code paths into the JIT.
  const warm = cycleJobs("warm", "warm00000000").slice(-200);
  for (const method of methods) await method.run(warm);

  for (let r = 0; r < ROUNDS; r++) {
    // Rotating order, so drift (Redis memory, GC) does not always favour the same method.
    const order = methods.map((_, i) => methods[(i + r) % methods.length] as Method);
    for (const method of order) {
      const jobs = cycleJobs("bench", `r${r}${suffix()}`.slice(0, 12));
      const ms = await method.run(jobs);
      timings.get(method)?.push(ms);
      console.log(`round ${r + 1}/${ROUNDS} ${method.library} ${method.name}: ${ms.toFixed(0)} ms`);
    }
  }
  connection.disconnect();

  const summary: Record<string, Record<string, unknown>> = {};
  for (const library of ["bullmq", "bee-queue"] as const) {
    const runs = (name: Method["name"]) => timings.get(methods.find((m) => m.library === library && m.name === name) as Method) ?? [];
    const adapter = median(runs("adapter"));
    const adapterBefore = library === "bullmq" ? median(runs("adapter (before)")) : null;
    const bulk = median(runs("raw bulk"));
    const oneByOne = median(runs("raw one by one"));
    // The machine is shared, so each round's adapter run is also compared with the raw run
    // of the same round (measured back to back): the median of those ratios resists drift.
    const paired = median(runs("adapter").map((ms, i) => ms / (runs("raw bulk")[i] ?? ms)));
    summary[library] = {
      medianMs: { adapter: round(adapter, 1), rawBulk: round(bulk, 1), rawOneByOne: round(oneByOne, 1) },
      allMs: Object.fromEntries(
        methods.filter((m) => m.library === library).map((m) => [m.name, (timings.get(m) ?? []).map((v) => round(v, 1))]),
      ),
      adapterOverRawBulk: round(adapter / bulk, 3),
      ...(adapterBefore === null ? {} : { adapterBeforeOverRawBulk: round(adapterBefore / bulk, 3) }),
      adapterOverRawBulkPairedMedian: round(paired, 3),
      rawOneByOneOverAdapter: round(oneByOne / adapter, 2),
      jobsPerSecond: { adapter: Math.round(((BATCHES + 1) / adapter) * 1000), rawBulk: Math.round(((BATCHES + 1) / bulk) * 1000) },
      targetMet: adapter / bulk <= 1.1,
    };
    console.log(
      `${library}: adapter ${adapter.toFixed(0)} ms${adapterBefore === null ? "" : ` (before: ${adapterBefore.toFixed(0)} ms, ${(adapterBefore / bulk).toFixed(3)} of raw bulk)`}, raw bulk ${bulk.toFixed(0)} ms, one by one ${oneByOne.toFixed(0)} ms → ` +
        `adapter/raw bulk = ${(adapter / bulk).toFixed(3)} (target ≤ 1.10; per-round median ${paired.toFixed(3)}), one by one/adapter = ${(oneByOne / adapter).toFixed(1)}×`,
    );
  }

  // Interleaved rounds of the same backfill on both versions.
  const commandRounds: Array<Awaited<ReturnType<typeof storeCommandsPerBatch>>> = [];
  for (let r = 0; r < Math.max(1, Math.min(3, ROUNDS)); r++) {
    for (const version of r % 2 === 0 ? [AFTER, BEFORE] : [BEFORE, AFTER]) {
      const result = await storeCommandsPerBatch(version, redisUrl, urlOf(servers, "store-redis"));
      commandRounds.push(result);
      console.log(`store bookkeeping (${version.label}): ${result.clientCommandsPerBatch} sent per batch, ${result.serverCommandsPerBatch} executed by Redis per batch, ${JSON.stringify(result.clientCommands)}`);
    }
  }
  const of = (label: "after" | "before", field: "clientCommandsPerBatch" | "serverCommandsPerBatch") =>
    median(commandRounds.filter((c) => c.version === label).map((c) => c[field]));
  const commands = {
    baselineCommit: BASELINE_COMMIT,
    clientCommandsPerBatch: { before: of("before", "clientCommandsPerBatch"), after: of("after", "clientCommandsPerBatch") },
    serverCommandsPerBatch: { before: of("before", "serverCommandsPerBatch"), after: of("after", "serverCommandsPerBatch") },
    rounds: commandRounds,
  };
  const added = commands.clientCommandsPerBatch.after - commands.clientCommandsPerBatch.before;
  console.log(
    `store bookkeeping per executed batch: sent ${commands.clientCommandsPerBatch.before} before → ${commands.clientCommandsPerBatch.after} after ` +
      `(+${round(added, 3)}; target ≤ +1 and ≤ 3), executed by Redis ${commands.serverCommandsPerBatch.before} → ${commands.serverCommandsPerBatch.after}`,
  );

  const path = writeResult("enqueue", "enqueue", {
    jobsPerCycle: BATCHES + 1,
    rounds: ROUNDS,
    note:
      "Timed from the QueueJob list to stored: the adapter's enqueue, or the raw methods' mapping to their own job objects plus the call. " +
      "Each measurement uses a fresh queue, deleted afterwards. 'before' is the baseline commit's code, measured in the same run.",
    ...summary,
    storeCommandsPerBatch: { ...commands, addedByReconciliationAndWatchdog: round(added, 3), targetMet: added <= 1 && commands.clientCommandsPerBatch.after <= 3 },
  });
  console.log(`wrote ${path}`);
} finally {
  await servers.stop();
}
