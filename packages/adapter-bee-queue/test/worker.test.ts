import BeeQueue from "bee-queue";
import type { JobContext, JobProcessor, WatchdogAction } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createBeeQueueJobQueue, runBeeQueueWorker } from "../src/index.js";
import type { BeeQueueJobQueueOptions, BeeQueueWorkerHandle, BeeQueueWorkerJobInfo, BeeQueueWorkerOptions } from "../src/index.js";
import { batchJob, redisUrl, storedJob, uniqueName, useQueueFixtures, waitUntil } from "./helpers.js";

// Concurrency, the shutdown modes, hand-back, dead workers, the stall limit and the watchdog loop
// are checked by the worker contract (contract.test.ts); these are Bee-Queue's specifics.

const fx = useQueueFixtures("bqw");
const { prefix, toClose } = fx;

interface Seen {
  readonly beginId: string;
  readonly attempt: number;
  readonly maxAttempts: number;
}

function setup(queueOptions: Partial<BeeQueueJobQueueOptions> = {}) {
  const queueName = uniqueName("w");
  const queue = createBeeQueueJobQueue({ redis: redisUrl(), queueName, prefix, ...queueOptions });
  toClose.push(queue);
  const start = async (perform: JobProcessor["perform"], extra: Partial<BeeQueueWorkerOptions> = {}): Promise<BeeQueueWorkerHandle> => {
    const worker = await runBeeQueueWorker({
      spreader: { perform, watchdog: async () => [] },
      redis: redisUrl(),
      queueName,
      prefix,
      watchdogIntervalMs: 0,
      onError: () => undefined,
      ...extra,
    });
    toClose.push(worker);
    return worker;
  };
  const status = async (id: string) => (await storedJob(fx.redis, prefix, queueName, id))?.status;
  return { queue, queueName, start, status };
}

const seenOf = (data: unknown, context: JobContext): Seen => ({
  beginId: (data as { beginId: string }).beginId,
  attempt: context.attempt,
  maxAttempts: context.maxAttempts,
});

describe("runBeeQueueWorker", { timeout: 30_000 }, () => {
  it("hands the runtime the job's data unchanged, with attempt 1 of its attempts", async () => {
    const { queue, start, status } = setup();
    const received: unknown[] = [];
    await start(async (data, context) => {
      received.push({ data, attempt: context.attempt, maxAttempts: context.maxAttempts, aborted: context.signal.aborted });
      return "done";
    });
    const tick = { kind: "tick", backfill: "bf", runId: "r1", cycle: 7, epoch: 2, scheduledAt: 1_700_000_000_000 } as const;
    await queue.enqueue([{ id: "tick-7", runAt: 0, attempts: 5, data: tick }]);
    await waitUntil("the job to succeed", async () => (await status("tick-7")) === "succeeded");
    expect(received).toEqual([{ data: tick, attempt: 1, maxAttempts: 5, aborted: false }]);
  });

  it("numbers attempts through retries and fails the job for good after the last", async () => {
    const { queue, start, status } = setup({ backoff: { type: "immediate" } });
    const seen: Seen[] = [];
    await start(async (data, context) => {
      seen.push(seenOf(data, context));
      throw new Error(`attempt ${context.attempt} failed`);
    });
    await queue.enqueue([batchJob("flaky", { attempts: 3 })]);
    await waitUntil("the job to fail for good", async () => (await status("flaky")) === "failed");
    expect(seen.map((s) => [s.attempt, s.maxAttempts])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 1 });
  });

  it("waits a capped exponential backoff between attempts: no retry waits longer than maxDelayMs", async () => {
    const { queue, start, status } = setup({ backoff: { type: "exponential", delayMs: 100, maxDelayMs: 200 } });
    const times: number[] = [];
    const seen: Seen[] = [];
    await start(async (data, context) => {
      times.push(Date.now());
      seen.push(seenOf(data, context));
      throw new Error("down");
    });
    await queue.enqueue([batchJob("capped", { attempts: 6 })]);
    await waitUntil("the job to fail for good", async () => (await status("capped")) === "failed", 15_000);
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // 100, then the cap; uncapped (Bee-Queue's own), the last two would wait 800 and 1,600 ms.
    [100, 200, 200, 200, 200].forEach((expected, i) => {
      expect(gaps[i], `retry ${i + 1}`).toBeGreaterThanOrEqual(expected - 5);
      // The cap plus room for Bee-Queue's activation (its timer, then a script) on a loaded machine.
      expect(gaps[i], `retry ${i + 1}`).toBeLessThan(200 + 500);
    });
  });

  it("starts each delayed job at its run time, not with the last one due within Bee-Queue's 1 s debounce", async () => {
    const { queue, start } = setup();
    const started = new Map<string, number>();
    await start(async (data) => {
      started.set((data as { beginId: string }).beginId, Date.now());
      return "done";
    });
    const at = Date.now() + 300;
    const runAts = [at, at + 300, at + 700];
    // Only the earliest is announced to the worker; activating it, Bee-Queue schedules its next
    // activation for the last job due within delayedDebounce of the next one. With its default of
    // 1000, the second job would wait for the third.
    await queue.enqueue(runAts.map((runAt, i) => batchJob(`d${i}`, { runAt }, String(i))));
    await waitUntil("the jobs to start", () => started.size === 3);
    runAts.forEach((runAt, i) => {
      const lateMs = (started.get(String(i)) as number) - runAt;
      expect(lateMs, `job ${i}`).toBeGreaterThanOrEqual(0);
      // Generous for a loaded machine, and still 100 ms before the next job is due.
      expect(lateMs, `job ${i}`).toBeLessThan(300);
    });
  });

  it("finds due delayed jobs it was not told about within nearTermWindowMs", async () => {
    const { queue, queueName, start } = setup();
    const started: number[] = [];
    await start(
      async () => {
        started.push(Date.now());
        return "done";
      },
      { nearTermWindowMs: 300 },
    );
    await queue.enqueue([batchJob("far", { runAt: Date.now() + 3_600_000 })]);
    // Moved forward behind Bee-Queue's back, as if the "earlierDelayed" message had been lost.
    const due = Date.now() + 100;
    expect(await fx.redis.zadd(`${prefix}:${queueName}:delayed`, "XX", "CH", due, "far")).toBe(1);
    await waitUntil("the job to start", () => started.length === 1, 5_000);
    expect(started[0]).toBeGreaterThanOrEqual(due);
    expect((started[0] as number) - due).toBeLessThan(300 + 500);
  });

  it("fails a job it did not write with CORRUPT_DATA", async () => {
    const { queueName, start } = setup();
    const errors: Array<{ error: unknown; job: BeeQueueWorkerJobInfo | undefined }> = [];
    await start(async () => "done", { onError: (error, job) => errors.push({ error, job }) });
    const foreign = new BeeQueue(queueName, { prefix, redis: { url: redisUrl() }, isWorker: false, getEvents: false, storeJobs: false });
    toClose.push(foreign);
    await foreign.createJob({ hello: "world" }).setId("foreign").save();
    await waitUntil("the job to fail", async () => (await storedJob(fx.redis, prefix, queueName, "foreign"))?.status === "failed");
    expect(errors).toEqual([{ error: expect.objectContaining({ code: "CORRUPT_DATA" }), job: expect.objectContaining({ id: "foreign" }) }]);
  });

  it("reports failed attempts (with the job) and failing watchdog runs (without) to onError", async () => {
    const { queue, start, status } = setup({ backoff: { type: "immediate" } });
    const errors: Array<{ message: string; job: BeeQueueWorkerJobInfo | undefined }> = [];
    let runs = 0;
    const broken = async (): Promise<never> => {
      throw new Error("handler broke");
    };
    await start(broken, {
      spreader: {
        perform: broken,
        watchdog: async (): Promise<WatchdogAction[]> => {
          runs += 1;
          throw new Error("store down");
        },
      },
      watchdogIntervalMs: 100,
      onError: (error, job) => errors.push({ message: (error as Error).message, job }),
    });
    await queue.enqueue([batchJob("broken", { attempts: 2 })]);
    await waitUntil("the job to fail for good", async () => (await status("broken")) === "failed");
    await waitUntil("two watchdog runs", () => runs >= 2);
    expect(errors.filter((e) => e.message === "handler broke")).toEqual([
      { message: "handler broke", job: { id: "broken", attempt: 1, maxAttempts: 2 } },
      { message: "handler broke", job: { id: "broken", attempt: 2, maxAttempts: 2 } },
    ]);
    expect(errors.filter((e) => e.message === "store down").slice(0, 2)).toEqual([
      { message: "store down", job: undefined },
      { message: "store down", job: undefined },
    ]);
  });

  it("by default, a batch failing to reach its own database is a worker error, not 'waiting for Redis'", async () => {
    const { queue, start, status } = setup({ backoff: { type: "immediate" } });
    const lines: string[] = [];
    const log = { info: (_: object, m: string) => lines.push(m), warn: (_: object, m: string) => lines.push(m), error: (_: object, m: string) => lines.push(m) };
    const unreachable = async (): Promise<never> => {
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    };
    // setup() passes a silent onError; undefined puts the runner's default back.
    await start(unreachable, { onError: undefined as never, log });
    await queue.enqueue([batchJob("pg-down", { attempts: 2 })]);
    await waitUntil("the job to fail for good", async () => (await status("pg-down")) === "failed");
    expect(lines.filter((l) => l.startsWith("waiting for"))).toEqual([]);
    expect(lines).toContain("worker error: connect ECONNREFUSED 127.0.0.1:5432");
  });

  it("close() in drain mode records a job that finishes during the drain, and is idempotent", async () => {
    const { queue, start, status } = setup();
    let finish!: () => void;
    let signal: AbortSignal | undefined;
    const worker = await start(async (_data, context) => {
      signal = context.signal;
      await new Promise<void>((resolve) => (finish = resolve));
      return "done";
    });
    await queue.enqueue([batchJob("graceful")]);
    await waitUntil("the job to start", () => signal !== undefined);
    const closed = worker.close();
    expect(worker.close()).toBe(closed);
    setTimeout(() => finish(), 100);
    await closed;
    expect(signal?.aborted).toBe(false);
    expect(await status("graceful")).toBe("succeeded");
  });

  it("hands an aborted job back to the head of the waiting list with its retries untouched", async () => {
    const { queue, queueName, start } = setup();
    const worker = await start((_data, context) => new Promise((_resolve, reject) => context.signal.addEventListener("abort", () => reject(new Error("stop")))), {
      shutdown: "abort",
    });
    await queue.enqueue([batchJob("back", { attempts: 3 })]);
    await waitUntil("the job to be active", async () => (await queue.counts()).active === 1);
    await queue.enqueue([batchJob("behind")]);
    await worker.close();
    expect(await fx.redis.lrange(`${prefix}:${queueName}:waiting`, 0, -1)).toEqual(["behind", "back"]);
    expect(await fx.redis.smembers(`${prefix}:${queueName}:stalling`)).toEqual([]);
    expect((await storedJob(fx.redis, prefix, queueName, "back"))?.options).toMatchObject({ retries: 2 });
    expect(await queue.lookup(["back"])).toEqual(["waiting"]);
  });

  it.each([
    ["no spreader", { spreader: undefined }, "spreader"],
    ["no redis", { redis: undefined }, "redis"],
    ["concurrency 0", { concurrency: 0 }, "concurrency"],
    ["a fractional shutdownTimeoutMs", { shutdownTimeoutMs: 1.5 }, "shutdownTimeoutMs"],
    ["an unknown shutdown", { shutdown: "later" }, "shutdown"],
    ["a negative watchdogIntervalMs", { watchdogIntervalMs: -1 }, "watchdogIntervalMs"],
    ["a non-function onError", { onError: "log" }, "onError"],
    ["stallIntervalMs 0", { stallIntervalMs: 0 }, "stallIntervalMs"],
    ["a negative stalledCheckIntervalMs", { stalledCheckIntervalMs: -1 }, "stalledCheckIntervalMs"],
    ["a non-boolean activateDelayedJobs", { activateDelayedJobs: "yes" }, "activateDelayedJobs"],
    ["a negative delayedDebounceMs", { delayedDebounceMs: -1 }, "delayedDebounceMs"],
    ["a fractional delayedDebounceMs", { delayedDebounceMs: 2.5 }, "delayedDebounceMs"],
    ["nearTermWindowMs 0", { nearTermWindowMs: 0 }, "nearTermWindowMs"],
    ["a string nearTermWindowMs", { nearTermWindowMs: "5s" }, "nearTermWindowMs"],
    ["a bad prefix", { prefix: "a b" }, "prefix"],
  ])("rejects %s before connecting", async (_label, bad, field) => {
    const options = { spreader: { perform: async () => "done", watchdog: async () => [] }, redis: redisUrl(), ...bad } as unknown as BeeQueueWorkerOptions;
    await expect(runBeeQueueWorker(options)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field });
  });

  it("rejects an unreachable Redis with ADAPTER_ERROR", async () => {
    await expect(
      runBeeQueueWorker({
        spreader: { perform: async () => "done", watchdog: async () => [] },
        redis: { host: "127.0.0.1", port: 1 },
        queueName: uniqueName("w"),
        prefix,
      }),
    ).rejects.toMatchObject({ code: "ADAPTER_ERROR", field: "redis" });
  });
});
