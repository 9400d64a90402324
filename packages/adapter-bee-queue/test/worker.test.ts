import BeeQueue from "bee-queue";
import type { JobContext, JobProcessor } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createBeeQueueJobQueue, runBeeQueueWorker } from "../src/index.js";
import type { BeeQueueJobQueueOptions, BeeQueueWorkerHandle, BeeQueueWorkerOptions } from "../src/index.js";
import { batchJob, exited, redisUrl, spawnFixture, storedJob, uniqueName, useQueueFixtures, waitUntil } from "./helpers.js";

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
    const worker = await runBeeQueueWorker({ spreader: { perform }, redis: redisUrl(), queueName, prefix, onError: () => undefined, ...extra });
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
    const { queue, start, status } = setup({ backoff: { strategy: "immediate" } });
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

  it("waits out a delayed (exponential) backoff between attempts and succeeds on a later one", async () => {
    const { queue, start, status } = setup({ backoff: { strategy: "exponential", delayMs: 100 } });
    const times: number[] = [];
    const seen: Seen[] = [];
    await start(async (data, context) => {
      times.push(Date.now());
      seen.push(seenOf(data, context));
      if (context.attempt < 3) throw new Error("not yet");
      return "done";
    });
    await queue.enqueue([batchJob("recovers", { attempts: 4 })]);
    await waitUntil("the job to succeed", async () => (await status("recovers")) === "succeeded");
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3]);
    expect(seen.every((s) => s.maxAttempts === 4)).toBe(true);
    // 100 ms, then 200 ms: lower bounds only (activation may add up to Bee-Queue's debounce).
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(100);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(200);
  });

  it("runs at most `concurrency` jobs at once", async () => {
    const { queue, start, status } = setup();
    let running = 0;
    let peak = 0;
    await start(
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 30));
        running -= 1;
        return "done";
      },
      { concurrency: 3 },
    );
    await queue.enqueue(Array.from({ length: 12 }, (_, i) => batchJob(`c-${i}`)));
    await waitUntil("all jobs to succeed", async () => (await status("c-11")) === "succeeded" && (await queue.counts()).waiting === 0);
    await waitUntil("the last jobs to finish", () => running === 0);
    expect(peak).toBe(3);
  });

  it("fails a job it did not write with CORRUPT_DATA", async () => {
    const { queueName, start } = setup();
    const errors: Array<{ error: unknown; jobId: string | null }> = [];
    await start(async () => "done", { onError: (error, jobId) => errors.push({ error, jobId }) });
    const foreign = new BeeQueue(queueName, { prefix, redis: { url: redisUrl() }, isWorker: false, getEvents: false, storeJobs: false });
    toClose.push(foreign);
    await foreign.createJob({ hello: "world" }).setId("foreign").save();
    await waitUntil("the job to fail", async () => (await storedJob(fx.redis, prefix, queueName, "foreign"))?.status === "failed");
    expect(errors).toEqual([{ error: expect.objectContaining({ code: "CORRUPT_DATA" }), jobId: "foreign" }]);
  });

  it("close() lets a running job finish within shutdownTimeoutMs, without aborting it, and is idempotent", async () => {
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
    // Finishing only after close() began: the outcome is still recorded, which
    // Bee-Queue refuses once it has closed, so close() did wait.
    setTimeout(() => finish(), 100);
    await closed;
    expect(signal?.aborted).toBe(false);
    expect(await status("graceful")).toBe("succeeded");
  });

  it("close() aborts a job still running after shutdownTimeoutMs; the job runs again elsewhere as the same attempt", async () => {
    const { queue, start, status } = setup();
    const seen: Seen[] = [];
    let abortedReason: unknown;
    const first = await start(
      async (data, context) => {
        seen.push(seenOf(data, context));
        await new Promise<void>((_resolve, reject) =>
          context.signal.addEventListener("abort", () => {
            abortedReason = context.signal.reason;
            reject(context.signal.reason);
          }),
        );
        return "done";
      },
      { shutdownTimeoutMs: 200, stallIntervalMs: 300 },
    );
    await queue.enqueue([batchJob("slow", { attempts: 2 })]);
    await waitUntil("the job to start", () => seen.length === 1);
    await first.close();
    expect(abortedReason).toMatchObject({ name: "AbortError" });
    // Not recorded as a failed attempt: it is still active, to be found stalled.
    await waitUntil("the aborted handler to settle", () => abortedReason !== undefined);
    expect(await status("slow")).toBe("created");
    expect((await queue.counts()).active).toBe(1);

    await start(async (data, context) => (seen.push(seenOf(data, context)), "done"), { stallIntervalMs: 300 });
    await waitUntil("the job to run again and succeed", async () => (await status("slow")) === "succeeded");
    expect(seen.map((s) => s.attempt)).toEqual([1, 1]);
  });

  it("re-runs the job of a worker process killed mid-job (SIGKILL) through stalled-job checks", async () => {
    const { queue, queueName, start, status } = setup();
    const lines: Array<Record<string, unknown>> = [];
    const child = spawnFixture("hanging-worker.ts", { QUEUE_NAME: queueName, PREFIX: prefix, STALL_MS: "400" }, (line) =>
      lines.push(JSON.parse(line) as Record<string, unknown>),
    );
    toClose.push({ close: async () => void child.kill("SIGKILL") });
    await waitUntil("the child worker to be ready", () => lines.some((l) => "ready" in l), 30_000);
    await queue.enqueue([batchJob("crashy", { attempts: 3 }, "41", "42")]);
    await waitUntil("the child to start the job", () => lines.some((l) => "started" in l));
    child.kill("SIGKILL");
    await exited(child);
    expect(child.signalCode).toBe("SIGKILL");

    const seen: Seen[] = [];
    await start(async (data, context) => (seen.push(seenOf(data, context)), "done"), { stallIntervalMs: 400 });
    await waitUntil("the job to run again and succeed", async () => (await status("crashy")) === "succeeded");
    expect(lines.filter((l) => "started" in l)).toEqual([{ started: expect.objectContaining({ beginId: "41", endId: "42" }), attempt: 1 }]);
    // A crash is not a failed attempt: the re-run is attempt 1 again.
    expect(seen).toEqual([{ beginId: "41", attempt: 1, maxAttempts: 3 }]);
  });

  it.each([
    ["no spreader", { spreader: undefined }, "spreader"],
    ["no redis", { redis: undefined }, "redis"],
    ["concurrency 0", { concurrency: 0 }, "concurrency"],
    ["a fractional shutdownTimeoutMs", { shutdownTimeoutMs: 1.5 }, "shutdownTimeoutMs"],
    ["stallIntervalMs 0", { stallIntervalMs: 0 }, "stallIntervalMs"],
    ["a negative stalledCheckIntervalMs", { stalledCheckIntervalMs: -1 }, "stalledCheckIntervalMs"],
    ["a non-boolean activateDelayedJobs", { activateDelayedJobs: "yes" }, "activateDelayedJobs"],
    ["a bad prefix", { prefix: "a b" }, "prefix"],
  ])("rejects %s before connecting", async (_label, bad, field) => {
    const options = { spreader: { perform: async () => "done" }, redis: redisUrl(), ...bad } as unknown as BeeQueueWorkerOptions;
    await expect(runBeeQueueWorker(options)).rejects.toMatchObject({ code: "INVALID_CONFIG", field });
  });

  it("rejects an unreachable Redis with ADAPTER_ERROR", async () => {
    await expect(
      runBeeQueueWorker({ spreader: { perform: async () => "done" }, redis: { host: "127.0.0.1", port: 1 }, queueName: uniqueName("w"), prefix }),
    ).rejects.toMatchObject({ code: "ADAPTER_ERROR", field: "redis" });
  });
});
