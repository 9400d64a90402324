import { describe, expect, it } from "vitest";
import {
  createManualClock,
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryStateStore,
  createMemoryWorker,
  createSuperSpreader,
  type BatchJobData,
  type JobOutcome,
  type MemoryJobQueue,
  type QueueJob,
} from "../src/index.js";
import { T0, idCounter } from "./harness.js";

function job(id: string, runAt: number, extra: Partial<QueueJob> = {}): QueueJob {
  const data: BatchJobData = { kind: "batch", backfill: "q", runId: "r1", cycle: 0, beginId: "1", endId: "10" };
  return { id, runAt, attempts: 2, data, ...extra };
}

const claimAll = (queue: MemoryJobQueue) => {
  const ids: string[] = [];
  for (let record = queue.claim(); record; record = queue.claim()) ids.push(record.job.id);
  return ids;
};

describe("createMemoryJobQueue", () => {
  it("among due jobs, claims the lowest priority number first (none before any), then the earliest run time, then the first accepted", async () => {
    const clock = createManualClock(T0);
    const queue = createMemoryJobQueue({ clock });
    await queue.enqueue([
      job("late-p5", T0 - 10, { priority: 5 }),
      job("early-p5", T0 - 500, { priority: 5 }),
      job("p1", T0, { priority: 1 }),
      job("none", T0),
      job("early-p5-again", T0 - 500, { priority: 5 }),
      job("future-p1", T0 + 1, { priority: 1 }),
    ]);
    expect(claimAll(queue)).toEqual(["none", "p1", "early-p5", "early-p5-again", "late-p5"]);
    clock.advance(1);
    expect(claimAll(queue)).toEqual(["future-p1"]);
  });

  it("claims in exactly the order a scan of every pending job would, through retries, stalls, removals and discards", async () => {
    // A model check of the heaps: after every operation, claim() and nextRunAt() must answer what a
    // scan of all pending records (the queue before its heaps) answers. Seeded, so a failure replays.
    for (const seed of [1, 2, 3]) {
      let state = seed;
      const random = () => {
        state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
        return state / 4_294_967_296;
      };
      const clock = createManualClock(T0);
      const queue = createMemoryJobQueue({ clock, retryDelayMs: 7 });
      const rank = (r: { job: QueueJob; runAt: number; seq: number }) => [r.job.priority ?? 0, r.runAt, r.seq] as const;
      const earlier = (a: readonly number[], b: readonly number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
      const expectedNext = () => {
        const pending = queue.all().filter((r) => r.state === "delayed" || r.state === "waiting");
        const due = pending.filter((r) => r.runAt <= clock.now()).sort((a, b) => earlier(rank(a), rank(b)));
        const next = pending.length === 0 ? null : Math.min(...pending.map((r) => r.runAt));
        return { id: due[0]?.job.id ?? null, next };
      };
      const running: string[] = [];
      let n = 0;
      let claims = 0;
      for (let step = 0; step < 3_000; step++) {
        const op = random();
        if (op < 0.3) {
          const jobs = Array.from({ length: 1 + Math.floor(random() * 5) }, () => {
            const priority = random() < 0.3 ? 1 + Math.floor(random() * 3) : undefined;
            return job(`j${n++}`, clock.now() + Math.floor(random() * 200) - 50, priority === undefined ? {} : { priority });
          });
          await queue.enqueue(jobs);
        } else if (op < 0.6) {
          const { id, next } = expectedNext();
          if (id === null) expect(queue.nextRunAt()).toBe(next);
          const claimed = queue.claim();
          expect(claimed?.job.id ?? null).toBe(id);
          if (claimed) {
            running.push(claimed.job.id);
            claims += 1;
          }
        } else if (op < 0.75 && running.length > 0) {
          const id = running.splice(Math.floor(random() * running.length), 1)[0]!;
          const r = random();
          if (r < 0.4) queue.settle(id, { outcome: "done" });
          else if (r < 0.8) queue.settle(id, { error: new Error("boom") });
          else queue.stall(id);
        } else if (op < 0.82) {
          const all = queue.all();
          const victim = all[Math.floor(random() * all.length)];
          if (victim) {
            if (random() < 0.5) queue.remove(victim.job.id);
            else queue.discard(victim.job.id);
          }
        } else {
          clock.advance(Math.floor(random() * 40));
        }
      }
      expect(claims).toBeGreaterThan(300);
    }
  });

  it("stall() hands a claimed job back without spending its attempt", async () => {
    const queue = createMemoryJobQueue({ clock: createManualClock(T0) });
    await queue.enqueue([job("s", T0)]);
    expect(queue.claim()?.attemptsMade).toBe(1);
    expect(queue.stall("s")).toBe(true);
    expect(await queue.lookup(["s"])).toEqual(["waiting"]);
    expect(queue.claim()?.attemptsMade).toBe(1);
    expect(queue.stall("nope")).toBe(false);
  });

  it("remove(): lookup says missing, the id is accepted again, and the worker that ran it records nothing", async () => {
    const queue = createMemoryJobQueue({ clock: createManualClock(T0) });
    await queue.enqueue([job("r", T0), job("kept", T0 + 60_000)]);
    const running = queue.claim();
    expect(running?.job.id).toBe("r");
    expect(queue.remove("r")).toBe(true);
    expect(await queue.lookup(["r", "kept"])).toEqual(["missing", "delayed"]);
    expect(queue.settle("r", { outcome: "done" })).toBe(false);
    expect(queue.all().map((record) => record.job.id)).toEqual(["kept"]);
    expect(await queue.enqueue([job("r", T0)])).toEqual({ added: 1, duplicates: 0 });
    expect(queue.remove("unknown")).toBe(false);
  });

  it("discard(): the queue gives a pending or running job up; lookup says failed and it never runs again", async () => {
    const queue = createMemoryJobQueue({ clock: createManualClock(T0) });
    await queue.enqueue([job("waits", T0), job("runs", T0 + 1)]);
    expect(queue.discard("waits", "stalled more than allowable limit")).toBe(true);
    expect(await queue.lookup(["waits"])).toEqual(["failed"]);
    expect(queue.all().find((r) => r.job.id === "waits")?.lastError).toBe("stalled more than allowable limit");
    expect(queue.claim()).toBeNull();

    const clock = createManualClock(T0 + 1);
    const other = createMemoryJobQueue({ clock });
    await other.enqueue([job("runs", T0)]);
    other.claim();
    expect(other.discard("runs")).toBe(true);
    expect(other.settle("runs", { error: new Error("late") })).toBe(false);
    expect(await other.lookup(["runs"])).toEqual(["failed"]);
    expect(await other.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, failed: 1 });
    expect(other.discard("runs")).toBe(false);
  });
});

describe("the memory queue's test aids heal with the runtime", () => {
  // 10 batches of 100 ids in one 10 s cycle: ticks go on every 10 s while a range is outstanding.
  const config = { batchSize: 100, duration: 10, perSecondOnPeak: 1, perSecondOffPeak: 1 };

  const setup = (size = 1_000) => {
    const clock = createManualClock(T0);
    const queue = createMemoryJobQueue({ clock });
    const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock, reconcileAfterMs: 5_000 });
    const ids = idCounter(size);
    spreader.define("aid", { source: createMemoryIdSource({ minId: 1, maxId: size }), config, handle: ids.handle });
    const worker = createMemoryWorker({ queue, spreader });
    const batch = (beginId: string) => queue.all().find((r) => r.job.data.kind === "batch" && r.job.data.beginId === beginId);
    return { clock, queue, spreader, ids, worker, batch };
  };

  it.each([
    ["discard", "failed"],
    ["remove", "missing"],
  ] as const)("a batch job the queue %ss is enqueued again by reconciliation and processed once", async (aid, state) => {
    const { clock, queue, spreader, ids, worker, batch } = setup();
    const lost: string[] = [];
    spreader.on("rangesLost", (event) => lost.push(...event.ranges.map((r) => `${r.beginId}..${r.endId} ${r.state}`)));
    await spreader.start("aid");
    await worker.runUntilIdle(clock, { maxJobs: 1 }); // tick 0 enqueues the cycle's 10 batches
    const victim = batch("401");
    expect(victim?.state).toBe("delayed");
    queue[aid](victim!.job.id);
    await worker.runUntilIdle(clock);
    expect(lost).toEqual([`401..500 ${state}`]);
    expect(ids.mismatches(1)).toEqual([]);
    expect((await spreader.status("aid")).status).toBe("completed");
  });

  it("a tick job removed by hand is revived by the watchdog", async () => {
    // Two cycles: without tick 1, ids 1..1000 are never planned.
    const { clock, queue, spreader, ids, worker } = setup(2_000);
    await spreader.start("aid");
    await worker.runUntilIdle(clock, { maxJobs: 1 });
    const tick = queue.all().find((r) => r.job.data.kind === "tick" && r.state === "delayed");
    queue.remove(tick!.job.id);
    await worker.runUntilIdle(clock); // the batches of cycle 0, then nothing is left
    expect(ids.missing().length).toBeGreaterThan(0);
    clock.advance(60_000);
    expect((await spreader.watchdog()).map((a) => a.action)).toEqual(["revived"]);
    await worker.runUntilIdle(clock);
    expect(ids.mismatches(1)).toEqual([]);
    expect((await spreader.status("aid")).status).toBe("completed");
  });
});

describe("createMemoryWorker", () => {
  it("rejects bad options with INVALID_ARGUMENT naming the field", () => {
    const queue = createMemoryJobQueue();
    const spreader = { perform: async (): Promise<JobOutcome> => "done", watchdog: async () => [] };
    for (const [field, value] of [
      ["concurrency", 0],
      ["shutdown", "later"],
      ["shutdownTimeoutMs", -1],
      ["watchdogIntervalMs", 1.5],
      ["onError", "log"],
    ] as const) {
      expect(() => createMemoryWorker({ queue, spreader, [field]: value } as never), field).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT", field }),
      );
    }
  });
});
