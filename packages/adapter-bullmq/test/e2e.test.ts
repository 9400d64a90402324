import { createMemoryIdSource, createSuperSpreader, mergeRanges } from "@superspreader/core";
import type { BackfillConfigInput, IdRange, JobQueue, StateStore, SuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import type { BullMQWorkerHandle } from "../src/index.js";
import { E2E_CONFIG, E2E_WORKER } from "./fixtures/e2e-config.js";
import { connect, forkFixture, uniqueQueueName, waitUntil } from "./helpers.js";
import type { ChildWorker } from "./helpers.js";

interface BackfillSpec {
  name: string;
  minId: bigint;
  maxId: bigint;
  config?: BackfillConfigInput;
}

/** One "process": its own connection, runtime, queue, store and BullMQ worker. */
interface Instance {
  connection: Redis;
  spreader: SuperSpreader;
  queue: JobQueue;
  store: StateStore;
  worker: BullMQWorkerHandle;
}

describe("end to end: runtime + BullMQ queue and workers + Redis store", () => {
  let queueName: string;
  let storePrefix: string;
  let instances: Instance[];
  let children: ChildWorker[];
  let seen: Map<string, IdRange[]>;

  const spawn = async (specs: readonly BackfillSpec[], handleMs = 0): Promise<Instance> => {
    const connection = connect();
    const queue = createBullMQJobQueue({ connection, queueName, onError: () => {} });
    const store = createRedisStateStore({ client: connection, prefix: storePrefix });
    const spreader = createSuperSpreader({ queue, store });
    for (const spec of specs) {
      spreader.define(spec.name, {
        source: createMemoryIdSource({ minId: spec.minId, maxId: spec.maxId }),
        config: spec.config ?? E2E_CONFIG,
        async handle({ beginId, endId }) {
          if (handleMs > 0) await new Promise((resolve) => setTimeout(resolve, handleMs));
          seen.get(spec.name)?.push({ beginId, endId });
        },
      });
      if (!seen.has(spec.name)) seen.set(spec.name, []);
    }
    const worker = await runBullMQWorker({ spreader, connection, queueName, ...E2E_WORKER, onError: () => {} });
    const instance = { connection, spreader, queue, store, worker };
    instances.push(instance);
    return instance;
  };

  const finish = async (spreader: SuperSpreader, name: string, timeoutMs = 30_000) => {
    await waitUntil(`${name} to complete`, async () => (await spreader.status(name)).status === "completed", timeoutMs);
    const audit = await spreader.audit(name);
    expect(audit.gaps).toEqual([]);
    expect(audit.complete).toBe(true);
    expect(audit.failed).toEqual([]);
    expect(audit.deferred).toEqual([]);
    return audit;
  };

  const coveredBy = (ranges: readonly IdRange[]) => mergeRanges(ranges);

  beforeEach(() => {
    queueName = uniqueQueueName("e2e");
    storePrefix = uniqueQueueName("e2e-store");
    instances = [];
    children = [];
    seen = new Map();
  });
  afterEach(async () => {
    await Promise.all(children.map((c) => c.kill()));
    await Promise.all(instances.map((i) => i.worker.close()));
    const admin = connect();
    try {
      const inspector = new Queue(queueName, { connection: admin });
      await inspector.obliterate({ force: true });
      await inspector.close();
      const keys = await admin.keys(`${storePrefix}:*`);
      if (keys.length > 0) await admin.del(...keys);
    } finally {
      admin.disconnect();
    }
    for (const i of instances) {
      await i.queue.close();
      await i.store.close();
      i.connection.disconnect();
    }
  });

  it("covers all 200,000 ids with two workers", async () => {
    const spec = { name: "cover", minId: 1n, maxId: 200_000n };
    const [a] = [await spawn([spec]), await spawn([spec])];
    await a?.spreader.start("cover");
    await finish(a!.spreader, "cover");
    expect(coveredBy(seen.get("cover") ?? [])).toEqual([{ beginId: 1n, endId: 200_000n }]);
    expect((await a!.spreader.status("cover")).progress.idsDone).toBe(200_000n);
  }, 40_000);

  it("loses nothing across pause and resume: batches delivered while paused are deferred and run after resume", async () => {
    // 40 batches, 20 per two-second cycle, 100 ms apart: a pause lands mid-cycle.
    const config = { batchSize: 5_000, duration: 2, perSecondOnPeak: 10, perSecondOffPeak: 10, spreadWithinSecond: true };
    const spec = { name: "pausing", minId: 1n, maxId: 200_000n, config };
    const a = await spawn([spec]);
    await spawn([spec]);
    await a.spreader.start("pausing");
    await waitUntil("a few batches", async () => (await a.spreader.status("pausing")).progress.batchesDone >= 3);
    await a.spreader.pause("pausing");
    await waitUntil("deferred batches", async () => (await a.spreader.status("pausing")).progress.batchesDeferred >= 2);
    const whilePaused = (seen.get("pausing") ?? []).length;
    expect((await a.spreader.status("pausing")).status).toBe("paused");
    await a.spreader.resume("pausing");
    await finish(a.spreader, "pausing");
    expect((seen.get("pausing") ?? []).length).toBeGreaterThan(whilePaused);
    expect(coveredBy(seen.get("pausing") ?? [])).toEqual([{ beginId: 1n, endId: 200_000n }]);
  }, 40_000);

  it("loses nothing when a worker process is SIGKILLed mid-run", async () => {
    const spec = { name: "killed", minId: 1n, maxId: 200_000n };
    const child = forkFixture("spreader-worker", [queueName, storePrefix, spec.name, "1", "200000", "150"]);
    children.push(child);
    await child.waitFor("ready", (m) => m.type === "ready");
    const a = await spawn([spec], 20);
    await a.spreader.start("killed");
    await child.waitFor("five batches in the child", () => child.messages.filter((m) => m.type === "started").length >= 5);
    await child.kill();
    const inChild = child.messages.filter((m) => m.type === "started").map((m) => ({ beginId: BigInt(String(m.beginId)), endId: BigInt(String(m.endId)) }));

    await finish(a.spreader, "killed");
    expect(coveredBy([...(seen.get("killed") ?? []), ...inChild])).toEqual([{ beginId: 1n, endId: 200_000n }]);
    // The child held up to `concurrency` batches when it died; the survivor ran them again.
    const redone = inChild.filter((r) => (seen.get("killed") ?? []).some((s) => s.beginId === r.beginId));
    expect(redone.length).toBeGreaterThan(0);
  }, 60_000);

  it("runs two backfills at once on one queue without interference", async () => {
    const alpha = { name: "alpha", minId: 1n, maxId: 200_000n };
    const beta = { name: "beta", minId: 1_000_001n, maxId: 1_100_000n, config: { ...E2E_CONFIG, batchSize: 700 } };
    const a = await spawn([alpha, beta]);
    await spawn([alpha, beta]);
    await Promise.all([a.spreader.start("alpha"), a.spreader.start("beta")]);
    await Promise.all([finish(a.spreader, "alpha"), finish(a.spreader, "beta")]);
    expect(coveredBy(seen.get("alpha") ?? [])).toEqual([{ beginId: 1n, endId: 200_000n }]);
    expect(coveredBy(seen.get("beta") ?? [])).toEqual([{ beginId: 1_000_001n, endId: 1_100_000n }]);
    expect((seen.get("beta") ?? []).every((r) => r.endId - r.beginId + 1n <= 700n)).toBe(true);
  }, 40_000);

  it("a second start() of a running backfill leaves one tick chain", async () => {
    // Five one-second cycles, so the repeated starts land while the chain runs.
    const config = { ...E2E_CONFIG, perSecondOnPeak: 40, perSecondOffPeak: 40 };
    const spec = { name: "restarted", minId: 1n, maxId: 200_000n, config };
    const a = await spawn([spec]);
    await spawn([spec]);
    await a.spreader.start("restarted");
    await a.spreader.start("restarted");
    await waitUntil("cycle 2", async () => (await a.spreader.status("restarted")).cycle >= 2);
    await a.spreader.start("restarted");
    await finish(a.spreader, "restarted");

    const inspector = new Queue(queueName, { connection: a.connection });
    try {
      await waitUntil("no tick left pending", async () => {
        const pending = await inspector.getJobs(["wait", "delayed", "prioritized", "active"]);
        return pending.every((job) => job.name !== "tick");
      });
      const ticks = (await inspector.getJobs(["completed"], 0, -1)).filter((job) => job.name === "tick");
      const planned = ticks.filter((job) => job.returnvalue === "planned").map((job) => (job.data as { cycle: number }).cycle);
      // Exactly one planned tick per cycle, cycles in a row from 0, and one that ended the chain.
      expect([...planned].sort((x, y) => x - y)).toEqual(Array.from({ length: planned.length }, (_, i) => i));
      expect(planned.length).toBeGreaterThanOrEqual(5);
      const finished = ticks.filter((job) => job.returnvalue === "finished");
      expect(finished).toHaveLength(1);
      // Each start() of the running backfill began a new epoch (ids end in .e<epoch>), whose
      // tick turned the older chain's next tick stale: the chain that finished is epoch 2's.
      expect(finished[0]?.id).toMatch(/\.e2$/);
      expect(ticks.some((job) => job.returnvalue === "stale")).toBe(true);
    } finally {
      await inspector.close();
    }
    expect(coveredBy(seen.get("restarted") ?? [])).toEqual([{ beginId: 1n, endId: 200_000n }]);
  }, 40_000);
});
