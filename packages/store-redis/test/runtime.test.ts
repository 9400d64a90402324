import {
  createManualClock,
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryWorker,
  createSuperSpreader,
  type BatchJobData,
} from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createRedisStateStore } from "../src/index.js";
import { countCommands, newClient, randomPrefix } from "./helpers.js";

const client = newClient();
const T0 = Date.parse("2026-11-16T00:00:00Z");
const config = { batchSize: 100, duration: 10, perSecondOnPeak: 50, perSecondOffPeak: 50 };

/** The core runtime on the Redis store, with the in-memory queue and a manual clock. */
function world(queueOptions: { retryDelayMs?: number } = {}) {
  const prefix = randomPrefix();
  const clock = createManualClock(T0);
  const queue = createMemoryJobQueue({ clock, ...queueOptions });
  const store = createRedisStateStore({ client, prefix });
  const spreader = createSuperSpreader({ queue, store, clock });
  const worker = createMemoryWorker({ queue, spreader });
  return { prefix, clock, queue, store, spreader, run: (maxJobs?: number) => worker.runUntilIdle(clock, { maxJobs: maxJobs ?? 1_000_000 }) };
}

function counter(size: number) {
  const counts = new Uint8Array(size + 1);
  return {
    handle: async ({ beginId, endId }: { beginId: bigint; endId: bigint }) => {
      for (let id = Number(beginId); id <= Number(endId); id++) counts[id] = (counts[id] ?? 0) + 1;
    },
    notOnce: () => counts.slice(1).filter((c) => c !== 1).length,
  };
}

describe("the runtime on the Redis store", () => {
  it("runs a backfill to completion with every id handled once and a one-range ledger", async () => {
    const w = world();
    const ids = counter(20_000);
    w.spreader.define("full", { source: createMemoryIdSource({ minId: 1, maxId: 20_000 }), config, handle: ids.handle });
    const { runId } = await w.spreader.start("full");
    await w.run();
    expect(ids.notOnce()).toBe(0);
    expect((await w.spreader.status("full")).status).toBe("completed");
    expect((await w.spreader.audit("full")).gaps).toEqual([]);
    expect(await w.store.listDone("full", runId)).toEqual([{ beginId: 1n, endId: 20_000n }]);
    expect(await w.store.metrics("full", runId)).toMatchObject({ batchesDone: 200, idsDone: "20000" });
    expect(await w.store.list()).toEqual(["full"]);
  });

  it("pauses, defers in Redis, and finishes after resume", async () => {
    const w = world();
    const ids = counter(5_000);
    w.spreader.define("pausing", { source: createMemoryIdSource({ minId: 1, maxId: 5_000 }), config, handle: ids.handle });
    const { runId } = await w.spreader.start("pausing");
    await w.run(10);
    await w.spreader.pause("pausing");
    await w.run();
    expect((await w.store.metrics("pausing", runId)).batchesDeferred).toBeGreaterThan(0);
    await w.spreader.resume("pausing");
    await w.run();
    expect(ids.notOnce()).toBe(0);
    expect((await w.spreader.status("pausing")).status).toBe("completed");
    expect(await w.store.listDeferred("pausing", runId, 10)).toEqual([]);
  });

  it("records a failing range in Redis and retries it on request", async () => {
    const w = world();
    const ids = counter(1_000);
    let broken = true;
    w.spreader.define("flaky", {
      source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
      config: { ...config, batchSize: 10, maxAttempts: 2 },
      handle: async (ctx) => {
        if (broken && ctx.beginId <= 500n && ctx.endId >= 500n) throw new TypeError("row 500 is malformed");
        await ids.handle(ctx);
      },
    });
    const { runId } = await w.spreader.start("flaky");
    await w.run();
    expect(await w.store.listFailed("flaky", runId, 10)).toMatchObject([{ beginId: 491n, endId: 500n, errorName: "TypeError", attempts: 2 }]);
    broken = false;
    expect(await w.spreader.retryFailed("flaky")).toBe(1);
    await w.run();
    expect(ids.notOnce()).toBe(0);
    expect((await w.spreader.status("flaky")).status).toBe("completed");
  });

  it("enqueues again a batch job deleted from the queue and one the queue gave up on, and completes", async () => {
    const w = world();
    const ids = counter(5_000);
    w.spreader.define("lossy", { source: createMemoryIdSource({ minId: 1, maxId: 5_000 }), config, handle: ids.handle });
    const { runId } = await w.spreader.start("lossy");
    await w.run(1); // the first tick plans cycle 0 and records its batches as outstanding
    const batches = w.queue.all().filter((r) => r.job.data.kind === "batch");
    const [deleted, givenUp] = [batches[3]!.job, batches[7]!.job];
    expect(w.queue.remove(deleted.id)).toBe(true);
    expect(w.queue.discard(givenUp.id, "job stalled more than allowable limit")).toBe(true);
    const lost: string[] = [];
    w.spreader.on("rangesLost", (e) => lost.push(...e.ranges.map((r) => `${r.beginId}..${r.endId} ${r.state}`)));
    await w.run();
    expect(ids.notOnce()).toBe(0);
    expect((await w.spreader.status("lossy")).status).toBe("completed");
    const range = (d: unknown) => `${(d as BatchJobData).beginId}..${(d as BatchJobData).endId}`;
    expect(lost.sort()).toEqual([`${range(deleted.data)} missing`, `${range(givenUp.data)} failed`].sort());
    expect(await w.store.metrics("lossy", runId)).toMatchObject({ batchesLost: 2, batchesDone: 50, idsDone: "5000", batchesFailed: 0 });
    expect(await w.store.listOutstanding("lossy", runId, Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
    expect(await w.store.listDone("lossy", runId)).toEqual([{ beginId: 1n, endId: 5_000n }]);
  });

  it("holds through an outage without spending attempts, and resumes by itself", async () => {
    // Retries wait a second, as on BullMQ and Bee-Queue: with none, a range spends all its
    // attempts at the outage's first instant, before ten failures in a row can hold the run.
    const w = world({ retryDelayMs: 1_000 });
    const ids = counter(3_000);
    const outage = { from: T0 + 2_000, to: T0 + 25_000 };
    w.spreader.define("outage", {
      source: createMemoryIdSource({ minId: 1, maxId: 3_000 }),
      config: { ...config, perSecondOnPeak: 5, perSecondOffPeak: 5 },
      handle: async (ctx) => {
        const now = w.clock.now();
        if (now >= outage.from && now < outage.to) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
        await ids.handle(ctx);
      },
    });
    const events: string[] = [];
    w.spreader.on("held", (e) => events.push(`held: ${e.reason}`));
    w.spreader.on("resumed", (e) => events.push(`resumed by ${e.by}`));
    const { runId } = await w.spreader.start("outage");
    await w.run(10_000);
    expect(ids.notOnce()).toBe(0);
    expect((await w.spreader.status("outage")).status).toBe("completed");
    expect(events[0]).toBe("held: 10 failed attempts in a row");
    expect(events.at(-1)).toBe("resumed by probe");
    const m = await w.store.metrics("outage", runId);
    expect(m).toMatchObject({ batchesFailed: 0, consecutiveFailures: 0, idsDone: "3000" });
    expect(m.recent.reduce((sum, b) => sum + b.failures, 0)).toBeGreaterThanOrEqual(10);
    expect(await w.store.listFailed("outage", runId, 10)).toEqual([]);
  });

  it("spends 1 Redis command on a batch that starts on time, and 2 on a late one (the read with its start slot)", async () => {
    const w = world();
    w.spreader.define("budget", { source: createMemoryIdSource({ minId: 1, maxId: 1_000 }), config, handle: async () => {} });
    await w.spreader.start("budget");
    await w.run(1); // the first tick plans cycle 0
    const batches = w.queue
      .all()
      .map((r) => r.job.data)
      .filter((d): d is BatchJobData => d.kind === "batch")
      .sort((a, b) => (a.scheduledAt ?? 0) - (b.scheduledAt ?? 0));
    expect(batches.length).toBeGreaterThan(3);
    const context = { attempt: 1, maxAttempts: 3, signal: new AbortController().signal };
    const at = (batch: BatchJobData | undefined, lateMs: number) => w.clock.set((batch?.scheduledAt ?? 0) + lateMs);
    at(batches[0], 0);
    await w.spreader.perform(batches[0], context); // warm-up: loads the scripts on this socket
    // On time: the document this process read a moment ago is good enough, so only the completion goes out.
    at(batches[1], 100);
    const onTime = await countCommands(client, w.prefix, () => w.spreader.perform(batches[1], context));
    expect(onTime.map((c) => c[0]?.toLowerCase())).toEqual(["evalsha"]);
    // Late (past ON_TIME_MS): the batch reserves a slot of the run's rate with its read.
    at(batches[2], 5_000);
    const late = await countCommands(client, w.prefix, () => w.spreader.perform(batches[2], context));
    // The start script's first use on this socket goes out as EVAL (ioredis loads it): still one round trip.
    expect(late.map((c) => c[0]?.toLowerCase().replace(/^eval$/, "evalsha"))).toEqual(["evalsha", "evalsha"]);
    expect((await w.store.metrics("budget", batches[0]!.runId)).batchesDone).toBe(3);
  });
});
