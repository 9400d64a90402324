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
    spreader: { perform: async () => "done" },
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
    expect(stored?.options).toMatchObject({ retries: 3, backoff: { strategy: "exponential", delay: 1000 } });
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
    await startWorker(queueName, { spreader: { perform: async (data) => (seen.push(data), "done") } });
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
    ["an unknown backoff", { redis: "redis://localhost", backoff: { strategy: "linear" } }, "backoff.strategy"],
    ["a backoff delay of 0", { redis: "redis://localhost", backoff: { strategy: "fixed", delayMs: 0 } }, "backoff.delayMs"],
  ])("rejects %s before connecting", (_label, options, field) => {
    expect(() => createBeeQueueJobQueue(options as Parameters<typeof createBeeQueueJobQueue>[0])).toThrow(
      expect.objectContaining({ code: "INVALID_CONFIG", field }),
    );
  });
});
