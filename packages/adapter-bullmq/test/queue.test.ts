import type { BatchJobData, JobOutcome, JobQueue, QueueJob } from "@superspreader/core";
import { FlowProducer, Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import type { BullMQJobQueueOptions, BullMQWorkerHandle } from "../src/index.js";
import { connect, redisUrl, uniqueQueueName, waitUntil } from "./helpers.js";

function job(id: string, extra: Partial<QueueJob> = {}, beginId = "1"): QueueJob {
  const data: BatchJobData = { kind: "batch", backfill: "q", runId: "r1", cycle: 0, beginId, endId: "100" };
  return { id, runAt: Date.now(), attempts: 1, data, ...extra };
}

describe("createBullMQJobQueue", () => {
  let connection: Redis;
  let queueName: string;
  let inspector: Queue;
  let queues: JobQueue[];
  let worker: BullMQWorkerHandle | undefined;
  let seen: Array<{ beginId: string; at: number }>;

  const open = (extra: Partial<BullMQJobQueueOptions> = {}): JobQueue => {
    const queue = createBullMQJobQueue({ connection, queueName, onError: () => {}, ...extra });
    queues.push(queue);
    return queue;
  };
  const startWorker = async (perform: () => Promise<JobOutcome> | JobOutcome = () => "done") => {
    worker = await runBullMQWorker({
      connection,
      queueName,
      onError: () => {},
      spreader: {
        watchdog: async () => [],
        perform: async (data) => {
          seen.push({ beginId: (data as BatchJobData).beginId, at: Date.now() });
          return perform();
        },
      },
    });
  };
  const keysOfQueue = async () => (await connection.keys(`bull:${queueName}:*`)).sort();

  beforeEach(() => {
    connection = connect();
    queueName = uniqueQueueName("queue");
    inspector = new Queue(queueName, { connection });
    queues = [];
    worker = undefined;
    seen = [];
  });
  afterEach(async () => {
    await worker?.close();
    await Promise.all(queues.map((q) => q.close()));
    await inspector.obliterate({ force: true });
    await inspector.close();
    connection.disconnect();
  });

  it("skips an id already present and keeps the stored job's data, across calls and within one call", async () => {
    const queue = open();
    const later = Date.now() + 60_000;
    expect(await queue.enqueue([job("a", { runAt: later }, "1")])).toEqual({ added: 1, duplicates: 0 });
    expect(await queue.enqueue([job("a", { runAt: later }, "999"), job("b", { runAt: later }, "2"), job("b", { runAt: later }, "3")])).toEqual({
      added: 1,
      duplicates: 2,
    });
    expect((await inspector.getJob("a"))?.data).toMatchObject({ beginId: "1" });
    expect((await inspector.getJob("b"))?.data).toMatchObject({ beginId: "2" });
  });

  it("makes a job due at exactly its runAt and does not run it before", async () => {
    const queue = open();
    const runAt = Date.now() + 1_500;
    await queue.enqueue([job("later", { runAt }, "7"), job("past", { runAt: Date.now() - 10_000 }, "8")]);
    const stored = await inspector.getJob("later");
    expect((stored?.timestamp ?? 0) + (stored?.delay ?? 0)).toBe(runAt);
    expect((await inspector.getJob("past"))?.delay).toBe(0);

    await startWorker();
    await waitUntil("both jobs", () => seen.length === 2);
    expect(seen.map((s) => s.beginId)).toEqual(["8", "7"]);
    expect(seen[1]?.at).toBeGreaterThanOrEqual(runAt);
  });

  it("rejects a list holding a bad job before writing any of it", async () => {
    const queue = open({ chunkSize: 1 });
    await queue.counts(); // lets BullMQ write its queue metadata first
    const before = await keysOfQueue();
    const good = job("good");
    for (const bad of [job("has:colon"), job("42"), job("x".repeat(201)), job("nan", { runAt: Number.NaN }), job("zero", { attempts: 0 })]) {
      await expect(queue.enqueue([good, bad])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect(await keysOfQueue()).toEqual(before);
    expect(await inspector.getJob("good")).toBeUndefined();
  });

  it("stores jobs in chunks, in order, counting duplicates per chunk", async () => {
    const queue = open({ chunkSize: 3 });
    const ids = Array.from({ length: 10 }, (_, i) => `o${i}`);
    const past = Date.now() - 1_000;
    await queue.enqueue([job("o4", { runAt: past }, "4"), job("o8", { runAt: past }, "8")]);
    expect(await queue.enqueue(ids.map((id, i) => job(id, { runAt: past }, String(i))))).toEqual({ added: 8, duplicates: 2 });
    await startWorker();
    await waitUntil("ten deliveries", () => seen.length === 10);
    // One worker, concurrency 1: delivery order is storage order (the two early ones first).
    expect(seen.map((s) => s.beginId)).toEqual(["4", "8", "0", "1", "2", "3", "5", "6", "7", "9"]);
  });

  it("checks for present ids with one EXISTS per chunk, and sends a wholly present chunk nowhere", async () => {
    const queue = open({ chunkSize: 4 });
    const later = Date.now() + 60_000;
    await queue.counts(); // BullMQ's one-time queue setup is not part of an enqueue
    const sent: string[] = [];
    const send = connection.sendCommand.bind(connection);
    const spy = vi.spyOn(connection, "sendCommand").mockImplementation((command, stream) => {
      sent.push(command.name);
      return send(command, stream);
    });
    try {
      const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
      expect(await queue.enqueue(ids.map((id) => job(id, { runAt: later, priority: 5 })))).toEqual({ added: 8, duplicates: 0 });
      // Two chunks: one EXISTS and one add script per job each; no EXISTS per job.
      expect(sent.filter((name) => name === "exists")).toHaveLength(2);
      expect(sent.filter((name) => name !== "exists")).toHaveLength(8);
      sent.length = 0;
      // Chunk 1 wholly present: its EXISTS only. Chunk 2 mixed: sent whole, the script keeps c4..c5.
      const again = [...ids.slice(0, 6), "c8", "c9"].map((id) => job(id, { runAt: later, priority: 5 }, "999"));
      expect(await queue.enqueue(again)).toEqual({ added: 2, duplicates: 6 });
      expect(sent.filter((name) => name === "exists")).toHaveLength(2);
      expect(sent.filter((name) => name !== "exists")).toHaveLength(4);
    } finally {
      spy.mockRestore();
    }
    expect((await inspector.getJob("c5"))?.data).toMatchObject({ beginId: "1" });
    expect((await inspector.getJob("c9"))?.data).toMatchObject({ beginId: "999" });
    expect(await inspector.getJobCounts("delayed")).toEqual({ delayed: 10 });
  });

  it("runs due jobs by priority across chunks, and counts prioritized jobs as waiting", async () => {
    const queue = open({ chunkSize: 2 });
    const past = Date.now() - 1_000;
    await queue.enqueue([5, 3, 9, 1, 7].map((p) => job(`p${p}`, { runAt: past, priority: p }, String(p))));
    expect(await queue.counts()).toEqual({ waiting: 5, delayed: 0, active: 0, failed: 0 });
    await startWorker();
    await waitUntil("five deliveries", () => seen.length === 5);
    expect(seen.map((s) => s.beginId)).toEqual(["1", "3", "5", "7", "9"]);
  });

  it("applies retention and backoff options to the stored jobs", async () => {
    const queue = open({ keepCompleted: { ageSeconds: 3_600, count: 10 }, keepFailed: "forever", backoff: { type: "fixed", delayMs: 250 } });
    await queue.enqueue([job("opts", { runAt: Date.now() + 60_000, attempts: 3 })]);
    expect((await inspector.getJob("opts"))?.opts).toMatchObject({
      attempts: 3,
      backoff: { type: "fixed", delay: 250 },
      removeOnComplete: { age: 3_600, count: 10 },
      removeOnFail: false,
    });
    const defaults = open();
    await defaults.enqueue([job("defaults", { runAt: Date.now() + 60_000 })]);
    expect((await inspector.getJob("defaults"))?.opts).toMatchObject({
      // A custom type: BullMQ's own exponential backoff has no cap; the worker computes this one.
      backoff: { type: "superspreader-exponential", delay: 1_000, maxDelay: 60_000 },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 604_800 },
    });
  });

  it("counts failed jobs and the jobs a worker holds", async () => {
    const queue = open();
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    await startWorker(async () => {
      await gate;
      throw new Error("no");
    });
    await queue.enqueue([job("f1")]);
    await waitUntil("one active", async () => (await queue.counts()).active === 1);
    release();
    await waitUntil("one failed", async () => (await queue.counts()).failed === 1);
    expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 1 });
  });

  describe("lookup", () => {
    it("answers prioritized, plain waiting, delayed and flow-parent jobs, in the order asked", async () => {
      const queue = open();
      await queue.enqueue([job("prio", { priority: 5 }), job("later", { runAt: Date.now() + 60_000, priority: 5 })]);
      // Jobs without a priority sit in BullMQ's wait list; superspreader's always have one.
      await inspector.add("plain", {}, { jobId: "plain" });
      const flows = new FlowProducer({ connection });
      try {
        await flows.add({ name: "parent", queueName, opts: { jobId: "parent" }, children: [{ name: "child", queueName, opts: { jobId: "child" } }] });
      } finally {
        await flows.close();
      }
      expect(await queue.lookup(["later", "plain", "nope", "prio", "parent", "child"])).toEqual([
        "delayed",
        "waiting",
        "missing",
        "waiting",
        // Not ready until its children finish.
        "delayed",
        "waiting",
      ]);
    });

    it("answers missing for a job deleted by hand or left in no list, and failed for one a worker gave up", async () => {
      const queue = open();
      await queue.enqueue([job("deleted", { priority: 1 }), job("orphan", { priority: 1 }), job("plain-orphan")]);
      await connection.del(`bull:${queueName}:deleted`);
      // A hash in no list or set is never delivered: nothing will run it.
      await connection.zrem(`bull:${queueName}:prioritized`, "orphan");
      await connection.lrem(`bull:${queueName}:wait`, 0, "plain-orphan");
      expect(await queue.lookup(["deleted", "orphan", "plain-orphan"])).toEqual(["missing", "missing", "missing"]);
    });

    it("answers 2,500 ids in order with one pipeline", async () => {
      const queue = open({ chunkSize: 1_000 });
      const ids = Array.from({ length: 2_500 }, (_, i) => `many-${i}`);
      await queue.enqueue(ids.filter((_, i) => i % 2 === 0).map((id) => job(id, { runAt: Date.now() + 60_000, priority: 3 })));
      const pipelines = vi.spyOn(connection, "pipeline");
      const states = await queue.lookup(ids);
      expect(pipelines).toHaveBeenCalledTimes(1);
      pipelines.mockRestore();
      expect(states).toEqual(ids.map((_, i) => (i % 2 === 0 ? "delayed" : "missing")));
    });

    it("rejects ids that are not strings", async () => {
      await expect(open().lookup(["a", 7 as unknown as string])).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "ids" });
    });
  });

  it("close() leaves the injected connection open, is idempotent, and later enqueues reject", async () => {
    const queue = open();
    await queue.close();
    await queue.close();
    expect(await connection.ping()).toBe("PONG");
    await expect(queue.enqueue([job("late")])).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("accepts a producer connection with ioredis' default retries", async () => {
    const producer = new Redis(redisUrl());
    try {
      const queue = createBullMQJobQueue({ connection: producer, queueName, onError: () => {} });
      expect(await queue.enqueue([job("p")])).toEqual({ added: 1, duplicates: 0 });
      await queue.close();
      expect(await producer.ping()).toBe("PONG");
    } finally {
      producer.disconnect();
    }
  });

  it("rejects bad options naming the field", () => {
    const cases: Array<[string, Partial<BullMQJobQueueOptions>]> = [
      ["queueName", { queueName: "a:b" }],
      ["prefix", { prefix: "" }],
      ["chunkSize", { chunkSize: 0 }],
      ["keepCompleted.ageSeconds", { keepCompleted: { ageSeconds: -1 } }],
      ["keepCompleted.count", { keepCompleted: { ageSeconds: 10, count: 0.5 } }],
      ["keepFailed", { keepFailed: "never" as "forever" }],
      ["backoff.type", { backoff: { type: "linear" as "fixed", delayMs: 1 } }],
      ["backoff.delayMs", { backoff: { type: "fixed", delayMs: Number.NaN } }],
      ["backoff.maxDelayMs", { backoff: { type: "exponential", delayMs: 10, maxDelayMs: -1 } }],
      ["backoff.delayMs", { backoff: { type: "exponential", delayMs: 2_000, maxDelayMs: 1_000 } }],
      ["onError", { onError: "log" as unknown as () => void }],
    ];
    for (const [field, extra] of cases) {
      expect(() => createBullMQJobQueue({ connection, queueName, ...extra }), field).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", field }));
    }
    expect(() => createBullMQJobQueue({ connection: {} as Redis })).toThrow(expect.objectContaining({ field: "connection" }));
  });
});
