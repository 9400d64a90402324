import type { BatchJobData, JobContext, JobOutcome, JobProcessor, JobQueue, QueueJob, WatchdogAction } from "@superspreader/core";
import { createMemoryIdSource, createMemoryStateStore, createSuperSpreader } from "@superspreader/core";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import type { BullMQJobQueueOptions, BullMQWorkerHandle, BullMQWorkerOptions } from "../src/index.js";
import { connect, redisUrl, uniqueQueueName, waitUntil } from "./helpers.js";

// Concurrency, the shutdown modes, hand-back, dead workers, the stall limit, priorities and the
// watchdog loop are checked by the worker contract (contract.test.ts); these are BullMQ's specifics.

interface Delivery {
  id: string;
  context: Omit<JobContext, "signal">;
  signal: AbortSignal;
  at: number;
}

function job(id: string, extra: Partial<QueueJob> = {}): QueueJob {
  const data: BatchJobData = { kind: "batch", backfill: "w", runId: "r1", cycle: 0, beginId: id.replace(/\D/g, "") || "1", endId: "100" };
  return { id, runAt: Date.now(), attempts: 1, data, ...extra };
}

describe("runBullMQWorker", () => {
  let connection: Redis;
  let queueName: string;
  let queue: JobQueue;
  let inspector: Queue;
  let workers: BullMQWorkerHandle[];
  let deliveries: Delivery[];

  const recording = (behaviour: (d: Delivery) => Promise<JobOutcome> | JobOutcome = () => "done"): JobProcessor => ({
    watchdog: async () => [],
    perform: async (data, context) => {
      const d: Delivery = {
        id: (data as BatchJobData).beginId,
        context: { attempt: context.attempt, maxAttempts: context.maxAttempts },
        signal: context.signal,
        at: Date.now(),
      };
      deliveries.push(d);
      return behaviour(d);
    },
  });
  const start = async (spreader: JobProcessor, extra: Partial<BullMQWorkerOptions> = {}) => {
    const worker = await runBullMQWorker({ spreader, connection, queueName, watchdogIntervalMs: 0, onError: () => {}, ...extra });
    workers.push(worker);
    return worker;
  };
  const openQueue = (extra: Partial<BullMQJobQueueOptions>) => {
    queue = createBullMQJobQueue({ connection, queueName, onError: () => {}, ...extra });
    return queue;
  };

  beforeEach(() => {
    connection = connect();
    queueName = uniqueQueueName("worker");
    openQueue({ backoff: { type: "fixed", delayMs: 50 } });
    inspector = new Queue(queueName, { connection });
    workers = [];
    deliveries = [];
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await queue.close();
    await inspector.obliterate({ force: true });
    await inspector.close();
    connection.disconnect();
  });

  it("tells the attempt number through retries, and the job completes on the last one", async () => {
    await start(
      recording((d) => {
        if (d.context.attempt < 4) throw new Error(`fail ${d.context.attempt}`);
        return "done";
      }),
    );
    await queue.enqueue([job("j1", { attempts: 4 })]);
    await waitUntil("completion", async () => (await inspector.getJobState("j1")) === "completed");
    expect(deliveries.map((d) => d.context)).toEqual([1, 2, 3, 4].map((attempt) => ({ attempt, maxAttempts: 4 })));
  });

  it("waits a capped exponential backoff between attempts: no retry waits longer than maxDelayMs", async () => {
    await queue.close();
    openQueue({ backoff: { type: "exponential", delayMs: 100, maxDelayMs: 200 } });
    await start(recording(() => Promise.reject(new Error("down"))));
    await queue.enqueue([job("backoff7", { attempts: 6 })]);
    await waitUntil("the job to fail for good", async () => (await inspector.getJobState("backoff7")) === "failed", 15_000);
    const gaps = deliveries.slice(1).map((d, i) => d.at - (deliveries[i]?.at ?? 0));
    // 100, then the cap; uncapped, the last two would wait 800 and 1,600 ms.
    const expected = [100, 200, 200, 200, 200];
    expect(gaps).toHaveLength(expected.length);
    gaps.forEach((gap, i) => {
      expect(gap, `retry ${i + 1}`).toBeGreaterThanOrEqual((expected[i] ?? 0) - 5);
      // The cap plus room for a loaded machine, well below the 800 and 1,600 ms of an uncapped backoff.
      expect(gap, `retry ${i + 1}`).toBeLessThan(200 + 500);
    });
  });

  it("reports failed attempts to onError with the job", async () => {
    const errors: Array<{ message: string; job: unknown }> = [];
    await start(
      recording(() => {
        throw new Error("handler broke");
      }),
      { onError: (error, info) => errors.push({ message: (error as Error).message, job: info }) },
    );
    await queue.enqueue([job("j2", { attempts: 2 })]);
    await waitUntil("the job failing for good", async () => (await inspector.getJobState("j2")) === "failed");
    expect(errors).toEqual([
      { message: "handler broke", job: { id: "j2", attempt: 1, maxAttempts: 2 } },
      { message: "handler broke", job: { id: "j2", attempt: 2, maxAttempts: 2 } },
    ]);
  });

  it("by default, a batch failing to reach its own database is a worker error, not 'waiting for Redis'", async () => {
    const lines: string[] = [];
    const log = { info: (_: object, m: string) => lines.push(m), warn: (_: object, m: string) => lines.push(m), error: (_: object, m: string) => lines.push(m) };
    await start(
      recording(() => {
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
      }),
      // setup's silent onError is replaced by the runner's default.
      { onError: undefined as never, log },
    );
    await queue.enqueue([job("pg-down", { attempts: 2 })]);
    await waitUntil("the job failing for good", async () => (await inspector.getJobState("pg-down")) === "failed");
    expect(lines.filter((l) => l.startsWith("waiting for"))).toEqual([]);
    expect(lines).toContain("worker error: connect ECONNREFUSED 127.0.0.1:5432");
  });

  it("reports a failing watchdog run to onError without a job, and keeps running it", async () => {
    const errors: Array<{ message: string; job: unknown }> = [];
    let runs = 0;
    await start(
      {
        perform: async () => "done",
        watchdog: async (): Promise<WatchdogAction[]> => {
          runs += 1;
          throw new Error(`store down ${runs}`);
        },
      },
      { watchdogIntervalMs: 100, onError: (error, info) => errors.push({ message: (error as Error).message, job: info }) },
    );
    await waitUntil("two watchdog runs", () => runs >= 2);
    expect(errors.slice(0, 2)).toEqual([
      { message: "store down 1", job: undefined },
      { message: "store down 2", job: undefined },
    ]);
  });

  it("close() lets a job that finishes on abort complete normally, and is idempotent", async () => {
    const worker = await start(
      recording((d) => new Promise<JobOutcome>((resolve) => d.signal.addEventListener("abort", () => resolve("done")))),
      { shutdown: "abort" },
    );
    await queue.enqueue([job("j4")]);
    await waitUntil("the delivery", () => deliveries.length === 1);
    const closing = worker.close();
    expect(worker.close()).toBe(closing);
    await closing;
    expect(await inspector.getJobState("j4")).toBe("completed");
  });

  it("leaves a job whose handler ignores the abort active, not back to waiting where it would run twice at once", async () => {
    const stuck = await start(recording(() => new Promise<JobOutcome>(() => {})), {
      shutdown: "abort",
      shutdownTimeoutMs: 300,
      lockDurationMs: 1_000,
      // The stalled check is queue-wide and throttled by the interval of the last worker that ran it.
      stalledIntervalMs: 300,
    });
    await queue.enqueue([job("j5", { attempts: 2 })]);
    await waitUntil("the first delivery", () => deliveries.length === 1);
    await stuck.close();
    expect(await inspector.getJobState("j5")).toBe("active");

    await start(recording(), { stalledIntervalMs: 300 });
    await waitUntil("completion after the lock expired", async () => (await inspector.getJobState("j5")) === "completed", 15_000);
    expect(deliveries.map((d) => d.context.attempt)).toEqual([1, 1]);
    // The abandoned run counted as a stall, as a dead worker's does.
    expect((await inspector.getJob("j5"))?.stalledCounter).toBe(1);
  }, 20_000);

  it("hands an aborted job back to the prioritized set when it has a priority", async () => {
    const worker = await start(recording((d) => new Promise<JobOutcome>((_r, reject) => d.signal.addEventListener("abort", () => reject(new Error("stop"))))), {
      shutdown: "abort",
    });
    await queue.enqueue([job("j6", { priority: 7, attempts: 2 })]);
    await waitUntil("the delivery", () => deliveries.length === 1);
    await worker.close();
    expect(await inspector.getJobState("j6")).toBe("prioritized");
    expect(await queue.lookup(["j6"])).toEqual(["waiting"]);
    expect((await inspector.getJob("j6"))?.attemptsMade).toBe(0);
  });

  it("talks: a line when it starts, the state of the backfills it defines, and when it stops", async () => {
    const lines: string[] = [];
    const logger = { info: (_f: unknown, m: string) => lines.push(`info ${m}`), warn: (_f: unknown, m: string) => lines.push(`warn ${m}`), error: (_f: unknown, m: string) => lines.push(`error ${m}`) };
    const spreader = createSuperSpreader({ queue: openQueue({}), store: createMemoryStateStore() });
    spreader.define("talking", { source: createMemoryIdSource({ minId: 1, maxId: 100 }), config: { batchSize: 10, duration: 1, perSecondOnPeak: 50, perSecondOffPeak: 50 }, handle: async () => {} });
    const worker = await runBullMQWorker({ spreader, connection, queueName, watchdogIntervalMs: 0, log: logger });
    workers.push(worker);
    expect(lines[0]).toBe(`info worker started on BullMQ queue ${queueName}, concurrency 1, backfills: talking`);
    await spreader.start("talking");
    await waitUntil("the completion line", () => lines.some((l) => l.startsWith("info talking: completed: 100 ids")), 20_000).catch((e: unknown) => {
      throw new Error(`${String(e)}; lines: ${JSON.stringify(lines)}`);
    });
    await worker.close();
    expect(lines.at(-1)).toBe("info worker stopped");
    // It looks at the backfill's state every 5 s: the completion line comes within that.
  }, 30_000);

  it("rejects bad options before connecting, with INVALID_ARGUMENT naming the field", async () => {
    const spreader = recording();
    const eager = new Redis(redisUrl(), { lazyConnect: true });
    const prefixed = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: null, keyPrefix: "x:" });
    try {
      await expect(runBullMQWorker({ spreader, connection: eager, queueName })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        field: "connection",
        message: expect.stringContaining("maxRetriesPerRequest: null"),
      });
      await expect(runBullMQWorker({ spreader, connection: prefixed, queueName })).rejects.toMatchObject({ field: "connection" });
      await expect(runBullMQWorker({ spreader: {} as JobProcessor, connection, queueName })).rejects.toMatchObject({ field: "spreader" });
      for (const [field, value] of [
        ["concurrency", 0],
        ["shutdown", "now"],
        ["shutdownTimeoutMs", -1],
        ["watchdogIntervalMs", 0.5],
        ["lockDurationMs", 1.5],
        ["stalledIntervalMs", 0],
        ["maxStalledCount", -1],
        ["queueName", "a:b"],
        ["prefix", ""],
        ["onError", "log"],
      ] as const) {
        await expect(runBullMQWorker({ spreader, connection, queueName, [field]: value } as BullMQWorkerOptions)).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          field,
        });
      }
    } finally {
      eager.disconnect();
      prefixed.disconnect();
    }
  });
});
