import { describe, expect, it } from "vitest";
import { createMemoryIdSource, type JobQueue, type StateStore } from "../src/index.js";
import { idCounter, world, type World } from "./harness.js";

/**
 * Fault injection: every call to a port method counts as one step. At step
 * `failAt` the process "crashes": with `after`, the call takes effect and then
 * throws (the crash came right after it); otherwise it throws without doing
 * anything. The job being processed fails, and the queue delivers it again, as a
 * real queue does after a worker dies.
 */
function injector(failAt: number, after: boolean) {
  let step = 0;
  let fired = false;
  let armed = true;
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof value !== "function" || prop === "close") return value;
        return async (...args: unknown[]) => {
          if (!armed) return (value as (...a: unknown[]) => unknown).apply(obj, args);
          step += 1;
          if (step === failAt && !fired) {
            fired = true;
            if (after) await (value as (...a: unknown[]) => unknown).apply(obj, args);
            throw new Error(`injected crash at step ${step} (${String(prop)}, ${after ? "after" : "before"} the call)`);
          }
          return (value as (...a: unknown[]) => unknown).apply(obj, args);
        };
      },
    });
  return { wrap, steps: () => step, fired: () => fired, disarm: () => (armed = false) };
}

interface Scenario {
  names: string[];
  size: number;
  /** Pause after this many jobs, run until idle, then resume. */
  pauseAfter?: number;
  /** The source holds this many ids at start and `size` after `growAfter` jobs (or once the run is idle). */
  startSize?: number;
  growAfter?: number;
  /** After growing: `extend` (by an operator, retried after a crash), or let `autoExtend` find the rows. */
  grow?: "extend" | "auto";
  /** Handlers return a result per batch, collected (`config.output`). */
  output?: boolean;
}

async function operator<T>(call: () => Promise<T>): Promise<T> {
  // An operator whose command crashed runs it again.
  for (let i = 0; ; i++) {
    try {
      return await call();
    } catch (error) {
      if (i > 3 || !String(error).includes("injected crash")) throw error;
    }
  }
}

async function play(scenario: Scenario, failAt: number, after: boolean) {
  const faults = injector(failAt, after);
  const w: World = world({ queue: (q: JobQueue) => faults.wrap(q), store: (s: StateStore) => faults.wrap(s) });
  const counters = new Map(scenario.names.map((n) => [n, idCounter(scenario.size)]));
  const deferrals = new Map<string, number>();
  w.spreader.on("batchDeferred", (e) => {
    const key = `${e.backfill}:${e.beginId}-${e.endId}`;
    deferrals.set(key, (deferrals.get(key) ?? 0) + 1);
  });
  let maxId = BigInt(scenario.startSize ?? scenario.size);
  for (const name of scenario.names) {
    w.spreader.define(name, {
      source: scenario.grow ? { capabilities: {}, minId: async () => 1n, maxId: async () => maxId } : createMemoryIdSource({ minId: 1, maxId: scenario.size }),
      config: { batchSize: 10, duration: 2, perSecondOnPeak: 10, perSecondOffPeak: 10, maxAttempts: 5, autoExtend: scenario.grow === "auto", ...(scenario.output ? { output: {} } : {}) },
      handle: async (batch) => {
        await counters.get(name)!.handle(batch);
        return { ids: batch.endId - batch.beginId + 1n };
      },
    });
  }
  for (const name of scenario.names) await operator(() => w.spreader.start(name));
  if (scenario.grow) {
    await w.run(scenario.growAfter);
    maxId = BigInt(scenario.size);
    if (scenario.grow === "extend") for (const name of scenario.names) await operator(() => w.spreader.extend(name));
    // A crash between reviving a finished run and enqueueing its tick leaves it to a worker's watchdog
    // (every 5 s, for a tick overdue by its grace): the operator's retry finds nothing new to extend.
    await w.run();
    w.clock.advance(10_000);
    await operator(() => w.spreader.watchdog());
  }
  if (scenario.pauseAfter !== undefined) {
    await w.run(scenario.pauseAfter);
    for (const name of scenario.names) await operator(() => w.spreader.pause(name));
    await w.run();
    for (const name of scenario.names) await operator(() => w.spreader.resume(name));
  }
  await w.run();
  // The checks that follow read through the same ports: they must not crash.
  faults.disarm();
  return { w, counters, deferrals, faults };
}

async function check(result: Awaited<ReturnType<typeof play>>, scenario: Scenario) {
  const { w, counters, deferrals } = result;
  for (const name of scenario.names) {
    // Every id was processed.
    expect(counters.get(name)!.missing(), `${name}: ids never processed`).toEqual([]);
    const status = await w.spreader.status(name);
    expect(status.status).toBe("completed");
    expect((await w.spreader.audit(name)).gaps).toEqual([]);
    // The scheduler enqueued each range once; a range appears again only after it was deferred.
    const seen = new Map<string, number>();
    for (const job of w.batchJobs(name)) {
      const key = `${job.beginId}-${job.endId}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    for (const [key, times] of seen) {
      expect(times, `${name}: range ${key} enqueued ${times} times`).toBeLessThanOrEqual(1 + (deferrals.get(`${name}:${key}`) ?? 0));
    }
    // The distinct ranges tile the id space exactly: no overlap, no gap.
    const ranges = [...seen.keys()]
      .map((k) => k.split("-").map(BigInt) as [bigint, bigint])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1));
    let next = 1n;
    for (const [begin, end] of ranges) {
      expect(begin, `${name}: ranges overlap or leave a gap at ${next}`).toBe(next);
      next = end + 1n;
    }
    expect(next).toBe(BigInt(scenario.size) + 1n);
    if (scenario.output) {
      // Every batch's result kept exactly once, whatever ran twice: the results tile the id space too.
      const page = await w.spreader.output(name, { limit: 10_000 });
      expect(page.dropped).toBe(0);
      const kept = [...page.entries].sort((a, b) => (a.beginId < b.beginId ? -1 : 1));
      let at = 1n;
      for (const e of kept) {
        expect(e.beginId, `${name}: results overlap or leave a gap at ${at}`).toBe(at);
        expect(JSON.parse(e.result)).toEqual({ ids: String(e.endId - e.beginId + 1n) });
        at = e.endId + 1n;
      }
      expect(at).toBe(BigInt(scenario.size) + 1n);
    }
  }
}

const scenarios: Record<string, Scenario> = {
  "one backfill": { names: ["solo"], size: 600 },
  "pause and resume mid-cycle": { names: ["paused"], size: 600, pauseAfter: 7 },
  "two backfills at once": { names: ["left", "right"], size: 400 },
  "extend mid-run": { names: ["grown"], size: 300, startSize: 200, growAfter: 9, grow: "extend" },
  "extend a completed run": { names: ["revived"], size: 300, startSize: 200, grow: "extend" },
  "collected output": { names: ["collected"], size: 300, output: true },
  "autoExtend at the bottom": { names: ["caught-up"], size: 300, startSize: 200, growAfter: 12, grow: "auto" },
};

describe("crash at every step", () => {
  for (const [title, scenario] of Object.entries(scenarios)) {
    it(`${title}: every id covered, no range enqueued twice by the scheduler`, async () => {
      const clean = await play(scenario, Number.POSITIVE_INFINITY, false);
      await check(clean, scenario);
      const total = clean.faults.steps();
      expect(total).toBeGreaterThan(50);
      let crashes = 0;
      for (let failAt = 1; failAt <= total; failAt++) {
        for (const after of [false, true]) {
          const result = await play(scenario, failAt, after);
          if (result.faults.fired()) crashes += 1;
          await check(result, scenario);
        }
      }
      // Every step of the clean run was crashed once before and once after the call.
      expect(crashes).toBe(2 * total);
    }, 120_000);
  }
});
