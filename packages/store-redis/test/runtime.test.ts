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
function world() {
  const prefix = randomPrefix();
  const clock = createManualClock(T0);
  const queue = createMemoryJobQueue({ clock });
  const store = createRedisStateStore({ client, prefix });
  const spreader = createSuperSpreader({ queue, store, clock });
  const worker = createMemoryWorker({ queue, spreader });
  return { prefix, queue, store, spreader, run: (maxJobs?: number) => worker.runUntilIdle(clock, maxJobs === undefined ? {} : { maxJobs }) };
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

  it("spends at most 3 Redis commands on a batch", async () => {
    const w = world();
    w.spreader.define("budget", { source: createMemoryIdSource({ minId: 1, maxId: 1_000 }), config, handle: async () => {} });
    await w.spreader.start("budget");
    await w.run(1); // the first tick plans cycle 0
    const batches = w.queue
      .all()
      .map((r) => r.job.data)
      .filter((d): d is BatchJobData => d.kind === "batch");
    expect(batches.length).toBeGreaterThan(2);
    const context = { attempt: 1, maxAttempts: 3, signal: new AbortController().signal };
    await w.spreader.perform(batches[0], context); // warm-up: loads the scripts on this socket
    const commands = await countCommands(client, w.prefix, () => w.spreader.perform(batches[1], context));
    expect(commands.length, JSON.stringify(commands.map((c) => c[0]))).toBeLessThanOrEqual(3);
    expect(commands.filter((c) => c[0]?.toLowerCase() === "evalsha")).toHaveLength(1);
  });
});
