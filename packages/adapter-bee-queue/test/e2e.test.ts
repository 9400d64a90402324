import { createMemoryIdSource, createSuperSpreader } from "@superspreader/core";
import type { BackfillConfigInput, JobOutcome, JobProcessor, SuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { createBeeQueueJobQueue, runBeeQueueWorker } from "../src/index.js";
import type { BeeQueueWorkerOptions } from "../src/index.js";
import { dropKeys, exited, redisUrl, spawnFixture, uniqueName, waitUntil } from "./helpers.js";

const PREFIX = "bqe2e";
/** 100 batches of 1,000 ids per 1 s cycle: 200,000 ids take two cycles. */
const FAST: BackfillConfigInput = { batchSize: 1_000, duration: 1, perSecondOnPeak: 100, perSecondOffPeak: 100 };

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One Redis, one Bee-Queue queue and one store prefix shared by every "process" of a test. */
function setup() {
  const queueName = uniqueName("e2e");
  const storePrefix = uniqueName("ss");
  const location = { redis: redisUrl(), queueName, prefix: PREFIX };
  const admin = new Redis(redisUrl());
  cleanups.push(async () => {
    await dropKeys(admin, `${PREFIX}:${queueName}:*`);
    await dropKeys(admin, `${storePrefix}:*`);
    admin.disconnect();
  });
  const monitor = createBeeQueueJobQueue(location);
  cleanups.push(() => monitor.close());

  /** A runtime as one process would create it: its own queue and store clients. */
  const instance = (): SuperSpreader => {
    const client = new Redis(redisUrl());
    const queue = createBeeQueueJobQueue(location);
    cleanups.push(async () => {
      await queue.close();
      client.disconnect();
    });
    return createSuperSpreader({ queue, store: createRedisStateStore({ client, prefix: storePrefix }) });
  };

  const worker = async (spreader: JobProcessor, extra: Partial<BeeQueueWorkerOptions> = {}) => {
    const handle = await runBeeQueueWorker({ ...location, spreader, concurrency: 4, onError: () => undefined, ...extra });
    cleanups.push(() => handle.close());
    return handle;
  };

  const idle = () =>
    waitUntil("the queue to drain", async () => {
      const c = await monitor.counts();
      return c.waiting === 0 && c.active === 0 && c.delayed === 0;
    });

  return { location, storePrefix, instance, worker, idle, monitor };
}

/** Per-id handler run counts of one backfill, shared by the in-process instances. */
function defineCounting(spreaders: SuperSpreader[], name: string, maxId: number, config: BackfillConfigInput = FAST): Uint16Array {
  const seen = new Uint16Array(maxId + 1);
  for (const spreader of spreaders) {
    spreader.define(name, {
      source: createMemoryIdSource({ minId: 1n, maxId: BigInt(maxId) }),
      config,
      async handle({ beginId, endId }) {
        for (let id = Number(beginId); id <= Number(endId); id++) seen[id] = (seen[id] as number) + 1;
      },
    });
  }
  return seen;
}

const completed = (spreader: SuperSpreader, name: string) =>
  waitUntil(`backfill ${name} to complete`, async () => (await spreader.status(name)).status === "completed", 45_000);

/** Ids in 1..maxId the handler never saw, and ids it saw more than once (first few of each). */
function coverage(seen: Uint16Array) {
  const missing: number[] = [];
  const repeated: number[] = [];
  for (let id = 1; id < seen.length; id++) {
    if (seen[id] === 0 && missing.length < 5) missing.push(id);
    if ((seen[id] as number) > 1 && repeated.length < 5) repeated.push(id);
  }
  return { missing, repeated, zero: seen[0] };
}

// Each test takes a few seconds; the bound only stops a hung run.
describe("end to end on Bee-Queue and the Redis store", { timeout: 60_000 }, () => {
  it("backfills 200,000 ids with two worker instances, each id handled exactly once", async () => {
    const { instance, worker, idle } = setup();
    const [a, b] = [instance(), instance()];
    const name = uniqueName("big");
    const seen = defineCounting([a, b], name, 200_000);
    const performedBy = [0, 0];
    const counting = (spreader: SuperSpreader, i: number): JobProcessor => ({
      watchdog: () => spreader.watchdog(),
      perform: async (data, context) => {
        performedBy[i] = (performedBy[i] as number) + 1;
        return spreader.perform(data, context);
      },
    });
    await worker(counting(a, 0));
    await worker(counting(b, 1));

    await a.start(name);
    await completed(a, name);

    const audit = await b.audit(name);
    expect(audit.gaps).toEqual([]);
    expect(audit.complete).toBe(true);
    expect(audit.done).toEqual([{ beginId: 1n, endId: 200_000n }]);
    expect(coverage(seen)).toEqual({ missing: [], repeated: [], zero: 0 });
    expect(performedBy.every((n) => n > 0)).toBe(true);
    await idle();
  });

  it("pause defers in-flight batches and resume enqueues them again: nothing is lost", async () => {
    const { instance, worker, idle } = setup();
    const [a, b] = [instance(), instance()];
    const name = uniqueName("pause");
    // 50 batches per second over 2 s cycles: most of a cycle is still queued when we pause.
    const seen = defineCounting([a, b], name, 200_000, { ...FAST, duration: 2, perSecondOnPeak: 50, perSecondOffPeak: 50 });
    await worker(a);
    await worker(b);

    await a.start(name);
    await waitUntil("some progress", async () => (await a.status(name)).progress.batchesDone > 0);
    await b.pause(name);
    await idle();
    const paused = await a.status(name);
    expect(paused.status).toBe("paused");
    expect(paused.progress.batchesDeferred).toBeGreaterThan(0);
    expect((await a.audit(name)).gaps).not.toEqual([]);

    await b.resume(name);
    await completed(a, name);
    const audit = await a.audit(name);
    expect(audit.gaps).toEqual([]);
    expect(audit.deferred).toEqual([]);
    expect(coverage(seen)).toMatchObject({ missing: [], zero: 0 });
  });

  it("loses nothing when a worker process is SIGKILLed mid-batch", async () => {
    const { location, storePrefix, instance, worker } = setup();
    const a = instance();
    const name = uniqueName("kill");
    const maxId = 100_000;
    const seen = defineCounting([a], name, maxId);
    const lines: Array<{ hanging?: [string, string]; done?: [string, string]; ready?: number }> = [];
    const child = spawnFixture(
      "backfill-worker.ts",
      {
        QUEUE_NAME: location.queueName,
        PREFIX: location.prefix,
        STORE_PREFIX: storePrefix,
        BACKFILL: name,
        MAX_ID: String(maxId),
        HANG_AFTER: "2",
        STALL_MS: "400",
      },
      (line) => lines.push(JSON.parse(line) as (typeof lines)[number]),
    );
    cleanups.push(async () => {
      child.kill("SIGKILL");
      await exited(child);
    });
    await waitUntil("the child worker to be ready", () => lines.some((l) => l.ready !== undefined), 30_000);
    await worker(a, { stallIntervalMs: 400 });

    await a.start(name);
    await waitUntil("the child to hang in a batch", () => lines.some((l) => l.hanging !== undefined), 20_000);
    child.kill("SIGKILL");
    await exited(child);

    await completed(a, name);
    expect((await a.audit(name)).gaps).toEqual([]);
    // The range the child died in was handled again here.
    const [begin, end] = (lines.find((l) => l.hanging)?.hanging ?? []).map(Number) as [number, number];
    expect(seen.subarray(begin, end + 1).every((n) => n >= 1)).toBe(true);
    // Everything else was handled by one of the two processes.
    const childDone = lines.flatMap((l) => (l.done ? [l.done.map(Number) as [number, number]] : []));
    expect(childDone).toHaveLength(2);
    for (const [b, e] of childDone) seen.fill(1, b, e + 1);
    expect(coverage(seen).missing).toEqual([]);
  });

  it("runs two backfills at once on one queue without mixing them", async () => {
    const { instance, worker } = setup();
    const [a, b] = [instance(), instance()];
    const first = uniqueName("one");
    const second = uniqueName("two");
    const seenFirst = defineCounting([a, b], first, 60_000);
    const seenSecond = defineCounting([a, b], second, 40_000, { ...FAST, batchSize: 700 });
    await worker(a);
    await worker(b);

    await Promise.all([a.start(first), b.start(second)]);
    await Promise.all([completed(a, first), completed(b, second)]);

    expect((await a.audit(first)).done).toEqual([{ beginId: 1n, endId: 60_000n }]);
    expect((await a.audit(second)).done).toEqual([{ beginId: 1n, endId: 40_000n }]);
    expect(coverage(seenFirst)).toEqual({ missing: [], repeated: [], zero: 0 });
    expect(coverage(seenSecond)).toEqual({ missing: [], repeated: [], zero: 0 });
  });

  it("a second start() of a running backfill does not start a second tick chain", async () => {
    const { instance, worker, idle } = setup();
    const [a, b] = [instance(), instance()];
    const name = uniqueName("restart");
    const seen = defineCounting([a, b], name, 200_000);
    const planned = new Map<number, number>();
    const recording = (spreader: SuperSpreader): JobProcessor => ({
      watchdog: () => spreader.watchdog(),
      perform: async (data, context) => {
        const outcome: JobOutcome = await spreader.perform(data, context);
        const tick = data as { kind: string; cycle: number };
        if (tick.kind === "tick" && outcome === "planned") planned.set(tick.cycle, (planned.get(tick.cycle) ?? 0) + 1);
        return outcome;
      },
    });
    await worker(recording(a));
    await worker(recording(b));

    const started = await a.start(name);
    expect((await b.start(name)).runId).toBe(started.runId);
    await waitUntil("the first cycle", () => planned.size >= 1);
    expect((await a.start(name)).runId).toBe(started.runId);
    await completed(a, name);
    await idle();

    // Every cycle planned exactly once (a last, empty cycle may follow while the final batches finish).
    const cycles = [...planned.keys()].sort((x, y) => x - y);
    expect(cycles).toEqual(cycles.map((_, i) => i));
    expect(cycles.length).toBeGreaterThanOrEqual(2);
    expect([...planned.values()].every((n) => n === 1)).toBe(true);
    expect(coverage(seen)).toEqual({ missing: [], repeated: [], zero: 0 });
  });
});
