import type { BatchJobData, JobContext, JobOutcome, JobProcessor, JobQueue, QueueJob } from "@superspreader/core";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import type { BullMQWorkerHandle, BullMQWorkerOptions } from "../src/index.js";
import { connect, forkFixture, uniqueQueueName, waitUntil } from "./helpers.js";
import type { ChildWorker } from "./helpers.js";

interface Delivery {
  id: string;
  context: Omit<JobContext, "signal">;
  signal: AbortSignal;
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
  let children: ChildWorker[];
  let deliveries: Delivery[];

  const recording = (behaviour: (d: Delivery) => Promise<JobOutcome> | JobOutcome = () => "done"): JobProcessor => ({
    perform: async (data, context) => {
      const d: Delivery = {
        id: (data as BatchJobData).beginId,
        context: { attempt: context.attempt, maxAttempts: context.maxAttempts },
        signal: context.signal,
      };
      deliveries.push(d);
      return behaviour(d);
    },
  });
  const start = async (spreader: JobProcessor, extra: Partial<BullMQWorkerOptions> = {}) => {
    const worker = await runBullMQWorker({ spreader, connection, queueName, onError: () => {}, ...extra });
    workers.push(worker);
    return worker;
  };

  beforeEach(() => {
    connection = connect();
    queueName = uniqueQueueName("worker");
    queue = createBullMQJobQueue({ connection, queueName, backoff: { type: "fixed", delayMs: 50 }, onError: () => {} });
    inspector = new Queue(queueName, { connection });
    workers = [];
    children = [];
    deliveries = [];
  });
  afterEach(async () => {
    await Promise.all(children.map((c) => c.kill()));
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

  it("close() aborts the signal, waits for the running job, and gives an interrupted job back without spending an attempt", async () => {
    let finished = false;
    const first = await start(
      recording(
        (d) =>
          new Promise<JobOutcome>((_resolve, reject) => {
            d.signal.addEventListener("abort", () =>
              setTimeout(() => {
                finished = true;
                reject(new Error("interrupted"));
              }, 200),
            );
          }),
      ),
    );
    await queue.enqueue([job("j3", { attempts: 3 })]);
    await waitUntil("the first delivery", () => deliveries.length === 1);
    await first.close();
    expect(finished, "close() resolved before the running handler settled").toBe(true);
    expect(deliveries[0]?.signal.aborted).toBe(true);
    expect(await inspector.getJobState("j3")).toBe("waiting");

    await start(recording());
    await waitUntil("completion by another worker", async () => (await inspector.getJobState("j3")) === "completed");
    expect(deliveries.map((d) => d.context)).toEqual([
      { attempt: 1, maxAttempts: 3 },
      { attempt: 1, maxAttempts: 3 },
    ]);
  });

  it("close() lets a job that finishes on abort complete normally, and is idempotent", async () => {
    const worker = await start(
      recording((d) => new Promise<JobOutcome>((resolve) => d.signal.addEventListener("abort", () => resolve("done")))),
    );
    await queue.enqueue([job("j4")]);
    await waitUntil("the delivery", () => deliveries.length === 1);
    const closing = worker.close();
    expect(worker.close()).toBe(closing);
    await closing;
    expect(await inspector.getJobState("j4")).toBe("completed");
  });

  it("close() stops waiting after shutdownTimeoutMs; the job left behind runs again elsewhere once its lock expires", async () => {
    const stuck = await start(recording(() => new Promise<JobOutcome>(() => {})), {
      shutdownTimeoutMs: 300,
      lockDurationMs: 1_000,
      // The stalled check is queue-wide and throttled by the interval of the last worker that ran it.
      stalledIntervalMs: 300,
    });
    await queue.enqueue([job("j5", { attempts: 2 })]);
    await waitUntil("the first delivery", () => deliveries.length === 1);
    const started = Date.now();
    await stuck.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // Left active (not given back at once) because its handler may still be running.
    expect(await inspector.getJobState("j5")).toBe("active");

    await start(recording(), { stalledIntervalMs: 300 });
    await waitUntil("completion after the lock expired", async () => (await inspector.getJobState("j5")) === "completed", 15_000);
    expect(deliveries.map((d) => d.context.attempt)).toEqual([1, 1]);
  }, 20_000);

  it("runs a job again on another worker when its worker process is SIGKILLed mid-job, with the same attempt", async () => {
    const child = forkFixture("hanging-worker", [queueName, "1000", "300"]);
    children.push(child);
    await child.waitFor("ready", (m) => m.type === "ready");
    await queue.enqueue([job("j6", { attempts: 3 })]);
    const started = await child.waitFor("the delivery", (m) => m.type === "started");
    expect(started).toMatchObject({ attempt: 1, maxAttempts: 3, data: { beginId: "6" } });
    await child.kill();
    expect(await inspector.getJobState("j6")).toBe("active");

    await start(recording(), { stalledIntervalMs: 300 });
    await waitUntil("the re-run", async () => (await inspector.getJobState("j6")) === "completed", 15_000);
    expect(deliveries.map((d) => d.context)).toEqual([{ attempt: 1, maxAttempts: 3 }]);
    const recovered = await inspector.getJob("j6");
    expect(recovered?.attemptsStarted).toBe(2);
    expect(recovered?.stalledCounter).toBe(1);
  }, 30_000);

  it("processes up to `concurrency` jobs at once", async () => {
    let running = 0;
    let peak = 0;
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    await start(
      recording(async (): Promise<JobOutcome> => {
        running += 1;
        peak = Math.max(peak, running);
        await gate;
        running -= 1;
        return "done";
      }),
      { concurrency: 3 },
    );
    await queue.enqueue(["c1", "c2", "c3", "c4", "c5"].map((id) => job(id)));
    await waitUntil("three running", () => running === 3);
    release();
    await waitUntil("all five", async () => (await inspector.getJobCounts("completed")).completed === 5);
    expect(peak).toBe(3);
  });

  it("rejects bad options before connecting", async () => {
    const spreader = recording();
    const { Redis } = await import("ioredis");
    const eager = new Redis(process.env.SUPERSPREADER_REDIS_URL ?? "", { lazyConnect: true });
    const prefixed = new Redis(process.env.SUPERSPREADER_REDIS_URL ?? "", { lazyConnect: true, maxRetriesPerRequest: null, keyPrefix: "x:" });
    try {
      await expect(runBullMQWorker({ spreader, connection: eager, queueName })).rejects.toMatchObject({
        code: "INVALID_CONFIG",
        field: "connection",
        message: expect.stringContaining("maxRetriesPerRequest: null"),
      });
      await expect(runBullMQWorker({ spreader, connection: prefixed, queueName })).rejects.toMatchObject({ field: "connection" });
      await expect(runBullMQWorker({ spreader: {} as JobProcessor, connection, queueName })).rejects.toMatchObject({ field: "spreader" });
      for (const [field, value] of [
        ["concurrency", 0],
        ["shutdownTimeoutMs", -1],
        ["lockDurationMs", 1.5],
        ["stalledIntervalMs", 0],
        ["maxStalledCount", -1],
        ["queueName", "a:b"],
        ["prefix", ""],
      ] as const) {
        await expect(runBullMQWorker({ spreader, connection, queueName, [field]: value })).rejects.toMatchObject({ code: "INVALID_CONFIG", field });
      }
    } finally {
      eager.disconnect();
      prefixed.disconnect();
    }
  });
});
