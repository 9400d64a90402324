import { createRequire } from "node:module";
import BeeQueue from "bee-queue";
import type { JobQueue } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createBeeQueueJobQueue, runBeeQueueWorker } from "../src/index.js";
import type { BeeQueueRedisOptions, BeeQueueWorkerHandle } from "../src/index.js";
import { batchJob, redisUrl, storedJob, uniqueName, useQueueFixtures, waitUntil } from "./helpers.js";

const fx = useQueueFixtures("bqt");
const { prefix, toClose } = fx;

function newQueue(queueName = uniqueName("q"), extra: Parameters<typeof createBeeQueueJobQueue>[0] = {}): { queue: JobQueue; queueName: string } {
  const queue = createBeeQueueJobQueue({ redis: redisUrl(), queueName, prefix, ...extra });
  toClose.push(queue);
  return { queue, queueName };
}

async function startWorker(queueName: string, extra: Partial<Parameters<typeof runBeeQueueWorker>[0]> = {}): Promise<BeeQueueWorkerHandle> {
  const worker = await runBeeQueueWorker({
    spreader: { perform: async () => "done", watchdog: async () => [] },
    redis: redisUrl(),
    queueName,
    prefix,
    onError: () => undefined,
    ...extra,
  });
  toClose.push(worker);
  return worker;
}

describe("createBeeQueueJobQueue", () => {
  it("has no priorities", () => {
    expect(newQueue().queue.capabilities).toEqual({ priorities: false });
  });

  it("stores a job's data in an envelope with its attempts, retries and backoff", async () => {
    const { queue, queueName } = newQueue();
    const job = batchJob("b-1", { attempts: 4 });
    expect(await queue.enqueue([job])).toEqual({ added: 1, duplicates: 0 });
    const stored = await storedJob(fx.redis, prefix, queueName, "b-1");
    expect(stored?.data).toEqual({ superspreader: 1, attempts: 4, data: job.data });
    // A strategy of the adapter's own: Bee-Queue's exponential backoff has no cap; the workers compute this one.
    expect(stored?.options).toMatchObject({ retries: 3, backoff: { strategy: "superspreader-exponential", delay: 1000, maxDelay: 60_000 } });
  });

  it("skips a duplicate id and keeps the stored job exactly as it was", async () => {
    const { queue, queueName } = newQueue();
    await queue.enqueue([batchJob("dup", {}, "1", "10")]);
    const before = await storedJob(fx.redis, prefix, queueName, "dup");
    const result = await queue.enqueue([batchJob("dup", { attempts: 5, runAt: Date.now() + 60_000 }, "500", "600"), batchJob("other")]);
    expect(result).toEqual({ added: 1, duplicates: 1 });
    expect(await storedJob(fx.redis, prefix, queueName, "dup")).toEqual(before);
    expect(await queue.counts()).toEqual({ waiting: 2, delayed: 0, active: 0, failed: 0 });
  });

  it("still skips an id after its job completed", async () => {
    const { queue, queueName } = newQueue();
    const seen: unknown[] = [];
    await startWorker(queueName, { spreader: { perform: async (data) => (seen.push(data), "done"), watchdog: async () => [] } });
    await queue.enqueue([batchJob("once")]);
    await waitUntil("the job to complete", async () => (await fx.redis.sismember(`${prefix}:${queueName}:succeeded`, "once")) === 1);
    expect(await queue.enqueue([batchJob("once")])).toEqual({ added: 0, duplicates: 1 });
    expect(seen).toHaveLength(1);
  });

  it("counts duplicates within one call and across chunks, keeping the order of the list", async () => {
    const { queue, queueName } = newQueue(undefined, { chunkSize: 100 });
    const jobs = Array.from({ length: 1234 }, (_, i) => batchJob(`j-${i}`));
    expect(await queue.enqueue([...jobs, batchJob("j-5")])).toEqual({ added: 1234, duplicates: 1 });
    expect(await queue.enqueue(jobs)).toEqual({ added: 0, duplicates: 1234 });
    // Bee-Queue LPUSHes and workers pop from the right: the list reversed is the run order.
    const waiting = await fx.redis.lrange(`${prefix}:${queueName}:waiting`, 0, -1);
    expect(waiting.reverse()).toEqual(jobs.map((j) => j.id));
  });

  it("stores a job with a future runAt as delayed and one in the past as waiting", async () => {
    const { queue, queueName } = newQueue();
    const runAt = Date.now() + 60_000.4;
    await queue.enqueue([batchJob("later", { runAt }), batchJob("past", { runAt: Date.now() - 5_000 }), batchJob("zero", { runAt: -1 })]);
    expect(await queue.counts()).toEqual({ waiting: 2, delayed: 1, active: 0, failed: 0 });
    // Rounded up, never down: a job must not start before its runAt.
    expect(await fx.redis.zscore(`${prefix}:${queueName}:delayed`, "later")).toBe(String(Math.ceil(runAt)));
  });

  it("honours run times: no job starts before its runAt", async () => {
    const { queue, queueName } = newQueue();
    const started = new Map<string, number>();
    await startWorker(queueName, {
      spreader: {
        watchdog: async () => [],
        perform: async (data) => {
          started.set((data as { beginId: string }).beginId, Date.now());
          return "done";
        },
      },
    });
    const now = Date.now();
    const runAts = [now - 1_000, now + 300, now + 900, now + 1_500];
    await queue.enqueue(runAts.map((runAt, i) => batchJob(`t-${i}`, { runAt }, String(i), String(i))));
    await waitUntil("every job to run", () => started.size === runAts.length);
    runAts.forEach((runAt, i) => expect(started.get(String(i))).toBeGreaterThanOrEqual(runAt));
    expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 0 });
  });

  it.each([
    ["an id with a colon", { id: "a:b" }, "id"],
    ["a purely numeric id", { id: "123" }, "id"],
    ["an empty id", { id: "" }, "id"],
    ["an id over 200 characters", { id: "x".repeat(201) }, "id"],
    ["a non-finite runAt", { runAt: Number.NaN }, "runAt"],
    ["an infinite runAt", { runAt: Number.POSITIVE_INFINITY }, "runAt"],
    ["attempts 0", { attempts: 0 }, "attempts"],
    ["fractional attempts", { attempts: 1.5 }, "attempts"],
  ])("rejects %s and writes nothing, not even the valid jobs before it", async (_label, bad, field) => {
    const { queue, queueName } = newQueue();
    const jobs = [batchJob("good-1"), batchJob("good-2", { runAt: Date.now() + 60_000 }), { ...batchJob("bad"), ...bad }];
    await expect(queue.enqueue(jobs)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field });
    expect(await fx.redis.keys(`${prefix}:${queueName}:*`)).toEqual([]);
  });

  it("reports a job Redis refused as ADAPTER_ERROR naming its id", async () => {
    const { queue, queueName } = newQueue();
    // A jobs key of the wrong type makes Bee-Queue's add script fail for every job.
    await fx.redis.set(`${prefix}:${queueName}:jobs`, "not a hash");
    const error = await queue.enqueue([batchJob("first"), batchJob("second")]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ADAPTER_ERROR" });
    expect((error as Error).message).toContain('"first" and 1 more');
    expect((error as Error).message).toContain("WRONGTYPE");
  });

  it("counts waiting, delayed, active and failed jobs", async () => {
    const { queue, queueName } = newQueue();
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    await startWorker(queueName, {
      activateDelayedJobs: false,
      spreader: {
        watchdog: async () => [],
        perform: async (data) => {
          if ((data as { beginId: string }).beginId === "1") throw new Error("boom");
          await blocked;
          return "done";
        },
      },
    });
    await queue.enqueue([batchJob("fails", {}, "1", "1")]);
    await waitUntil("the job to fail", async () => (await queue.counts()).failed === 1);
    await queue.enqueue([batchJob("blocks", {}, "2", "2")]);
    await waitUntil("the job to be active", async () => (await queue.counts()).active === 1);
    await queue.enqueue([batchJob("waits", {}, "3", "3"), batchJob("delayed", { runAt: Date.now() + 60_000 })]);
    expect(await queue.counts()).toEqual({ waiting: 1, delayed: 1, active: 1, failed: 1 });
    release();
  });

  describe("lookup", () => {
    it("answers delayed, waiting, active, succeeded, failed and retrying jobs, in the order asked", async () => {
      const { queue, queueName } = newQueue(undefined, { backoff: { type: "fixed", delayMs: 60_000 } });
      await queue.enqueue([batchJob("later", { runAt: Date.now() + 60_000 }), batchJob("next", {}, "4", "4")]);
      expect(await queue.lookup(["next", "later", "nope"])).toEqual(["waiting", "delayed", "missing"]);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      await startWorker(queueName, {
        concurrency: 3,
        spreader: {
          watchdog: async () => [],
          perform: async (data) => {
            const begin = (data as { beginId: string }).beginId;
            if (begin === "1") await held;
            if (begin === "2" || begin === "3") throw new Error("no");
            return "done";
          },
        },
      });
      await queue.enqueue([batchJob("held", {}, "1", "1"), batchJob("fails", {}, "2", "2"), batchJob("retries", { attempts: 2 }, "3", "3")]);
      await waitUntil("the failures, the held job and the next", async () => {
        const states = await queue.lookup(["held", "fails", "retries", "next"]);
        return JSON.stringify(states) === JSON.stringify(["active", "failed", "delayed", "completed"]);
      });
      // The retry waits out its backoff in the delayed set: not failed, which is final.
      expect(await queue.lookup(["next", "retries", "held"])).toEqual(["completed", "delayed", "active"]);
      release();
      await waitUntil("succeeded", async () => (await queue.lookup(["held"]))[0] === "completed");
    });

    it("answers missing for a job removed by hand or in no list, in one batch for 2,500 ids", async () => {
      const { queue, queueName } = newQueue();
      const ids = Array.from({ length: 2_500 }, (_, i) => `many-${i}`);
      await queue.enqueue(ids.filter((_, i) => i % 2 === 0).map((id) => batchJob(id, { runAt: Date.now() + 60_000 })));
      await queue.enqueue([batchJob("removed"), batchJob("orphan")]);
      await fx.redis.hdel(`${prefix}:${queueName}:jobs`, "removed");
      // A job in the hash but in no list is never delivered: nothing will run it.
      await fx.redis.lrem(`${prefix}:${queueName}:waiting`, 0, "orphan");
      expect(await queue.lookup(["removed", "orphan"])).toEqual(["missing", "missing"]);
      const states = await queue.lookup(ids);
      expect(states).toEqual(ids.map((_, i) => (i % 2 === 0 ? "delayed" : "missing")));
    });

    it("rejects ids that are not strings before connecting", async () => {
      const queue = createBeeQueueJobQueue({ redis: "redis://127.0.0.1:1", queueName: uniqueName("q"), prefix });
      await expect(queue.lookup(["a", 7 as unknown as string])).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "ids" });
      expect(await queue.lookup([])).toEqual([]);
      await queue.close();
    });
  });

  it("never closes an injected Bee-Queue, and refuses work once closed", async () => {
    const queueName = uniqueName("q");
    const bee = new BeeQueue(queueName, { prefix, redis: { url: redisUrl() }, isWorker: false, getEvents: false, storeJobs: false });
    toClose.push(bee);
    const queue = createBeeQueueJobQueue({ queue: bee });
    expect(await queue.enqueue([batchJob("inj")])).toEqual({ added: 1, duplicates: 0 });
    await Promise.all([queue.close(), queue.close()]);
    await queue.close();
    expect((await bee.checkHealth()).waiting).toBe(1);
    await expect(queue.enqueue([batchJob("after")])).rejects.toMatchObject({ code: "INVALID_STATE" });
    await expect(queue.counts()).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("accepts a node_redis v3 client as redis and leaves it open on close", async () => {
    // node_redis v3 is Bee-Queue's own dependency; load it from there.
    const nodeRedis = createRequire(createRequire(import.meta.url).resolve("bee-queue"))("redis") as {
      createClient(options: { url: string }): { connected: boolean; quit(cb: () => void): void; on(e: string, f: () => void): void };
    };
    const client = nodeRedis.createClient({ url: redisUrl() });
    await new Promise<void>((resolve) => client.on("ready", resolve));
    const { queue } = newQueue(undefined, { redis: client as unknown as BeeQueueRedisOptions });
    expect(await queue.enqueue([batchJob("via-client")])).toEqual({ added: 1, duplicates: 0 });
    await queue.close();
    expect(client.connected).toBe(true);
    await new Promise<void>((resolve) => client.quit(() => resolve()));
  });

  it("opens nothing until used, and close is idempotent", async () => {
    const { queue } = newQueue();
    expect(await queue.enqueue([])).toEqual({ added: 0, duplicates: 0 });
    await queue.close();
    await queue.close();
    await expect(queue.enqueue([batchJob("x")])).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("rejects an unreachable Redis with ADAPTER_ERROR and can be closed", async () => {
    const queue = createBeeQueueJobQueue({ redis: "redis://127.0.0.1:1", queueName: uniqueName("q"), prefix });
    await expect(queue.counts()).rejects.toMatchObject({ code: "ADAPTER_ERROR", field: "redis" });
    await queue.close();
  });

  it.each([
    ["neither queue nor redis", {}, "redis"],
    ["both queue and redis", { queue: {} as BeeQueue, redis: "redis://localhost" }, "queue"],
    ["a queue that is not a Bee-Queue", { queue: {} as BeeQueue }, "queue"],
    ["an empty redis URL", { redis: "" }, "redis"],
    ["a queue name with a colon", { redis: "redis://localhost", queueName: "a:b" }, "queueName"],
    ["an empty prefix", { redis: "redis://localhost", prefix: "" }, "prefix"],
    ["chunkSize 0", { redis: "redis://localhost", chunkSize: 0 }, "chunkSize"],
    ["an unknown backoff", { redis: "redis://localhost", backoff: { type: "linear" } }, "backoff.type"],
    ["a backoff delay of 0", { redis: "redis://localhost", backoff: { type: "fixed", delayMs: 0 } }, "backoff.delayMs"],
    ["a backoff cap below its delay", { redis: "redis://localhost", backoff: { type: "exponential", delayMs: 500, maxDelayMs: 100 } }, "backoff.delayMs"],
    ["a fractional backoff cap", { redis: "redis://localhost", backoff: { type: "exponential", maxDelayMs: 1.5 } }, "backoff.maxDelayMs"],
  ])("rejects %s before connecting", (_label, options, field) => {
    expect(() => createBeeQueueJobQueue(options as Parameters<typeof createBeeQueueJobQueue>[0])).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", field }),
    );
  });
});
