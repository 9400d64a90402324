import { describe, expect, it } from "vitest";
import { createMemoryIdSource, type BackfillConfigInput } from "../src/index.js";
import { T0, world, type World } from "./harness.js";

/**
 * Runs a backfill on the manual clock and returns the planned run time of every batch job, in order. With
 * the in-memory worker on a manual clock a batch starts exactly at its run time, so these are the starts.
 */
async function startTimes(config: BackfillConfigInput, batches: number, prepare?: (w: World) => void | Promise<void>): Promise<{ w: World; times: number[] }> {
  const w = world();
  w.spreader.define("paced", { source: createMemoryIdSource({ minId: 1, maxId: batches * config.batchSize }), config, handle: async () => {} });
  const starts: number[] = [];
  w.spreader.on("batchStarted", (e) => starts.push(e.at));
  await prepare?.(w);
  await w.spreader.start("paced");
  await w.run();
  expect((await w.spreader.status("paced")).status).toBe("completed");
  return { w, times: starts };
}

/**
 * The most the count of starts in a window [a, a + span) strays from rate × span, over windows starting at
 * every start time (in whole-second mode a second's batches start together, so windows are whole seconds
 * from a start; in spread mode, windows also start between starts).
 */
function worstDeviation(times: readonly number[], perSecond: number, spanMs: number, spread: boolean): number {
  let worst = 0;
  const last = times[times.length - 1] as number;
  const starts = spread ? times.flatMap((t) => [t, t + 1, t + 333]) : times;
  for (const a of starts) {
    if (a + spanMs > last) break;
    let count = 0;
    for (const t of times) if (t >= a && t < a + spanMs) count++;
    worst = Math.max(worst, Math.abs(count - (perSecond * spanMs) / 1000));
  }
  return worst;
}

describe("exact pacing", () => {
  it.each<[string, number, number, boolean]>([
    ["duration 1 s, 0.3/s", 1, 0.3, false],
    ["duration 3 s, 0.5/s", 3, 0.5, false],
    ["duration 10 s, 0.35/s", 10, 0.35, false],
    ["duration 0.5 s, 0.1/s", 0.5, 0.1, false],
    ["duration 7.3 s, 2.7/s, spread within seconds", 7.3, 2.7, true],
    ["duration 0.1 s, 13/s", 0.1, 13, false],
  ])("starts rate × time batches within one over 300+ batches: %s", async (_label, duration, perSecond, spreadWithinSecond) => {
    const { times } = await startTimes({ batchSize: 10, duration, perSecondOnPeak: perSecond, perSecondOffPeak: perSecond, spreadWithinSecond }, 320);
    expect(times).toHaveLength(320);
    const elapsed = ((times[times.length - 1] as number) - (times[0] as number)) / 1000;
    // 320 starts at the rate span 319 intervals of 1/rate seconds: the long-run rate is the configured one.
    expect(Math.abs(319 / perSecond - elapsed)).toBeLessThanOrEqual(1 / perSecond + 1);
    // And in every window of about 100 slot intervals (many cycles), rate × window within one batch. Spread
    // mode puts slots on whole milliseconds (rounded down), so a window holds at most rate × (window + 1 ms) + 1.
    const span = spreadWithinSecond ? Math.round((100 / perSecond) * 1000) : Math.ceil(100 / perSecond) * 1000;
    expect(worstDeviation(times, perSecond, span, spreadWithinSecond)).toBeLessThanOrEqual(1 + (spreadWithinSecond ? perSecond / 1000 : 0) + 1e-9);
  });

  it("keeps the seed README's example exact: 6 batches at 22:51:59 and 22:52:00, the next tick at 22:52:01", async () => {
    const w = world();
    // The README's example is on 2020-11-16; the same wall times on the harness's Monday (the clock only moves forward).
    const at = Date.parse("2026-11-16T22:51:59Z");
    w.clock.set(at);
    w.spreader.define("readme", {
      source: createMemoryIdSource({ minId: 1, maxId: 100_000_000 }),
      config: { batchSize: 100, duration: 2, perSecondOnPeak: 3, perSecondOffPeak: 3 },
      handle: async () => {},
    });
    await w.spreader.start("readme");
    await w.run(1); // the first tick
    const jobs = w.queue.all().map((r) => r.job);
    const batches = jobs.filter((j) => j.data.kind === "batch");
    expect(batches.map((j) => [j.data.kind === "batch" && `${j.data.beginId}..${j.data.endId}`, new Date(j.runAt).toISOString()])).toEqual([
      ["99999901..100000000", "2026-11-16T22:51:59.000Z"],
      ["99999801..99999900", "2026-11-16T22:51:59.000Z"],
      ["99999701..99999800", "2026-11-16T22:51:59.000Z"],
      ["99999601..99999700", "2026-11-16T22:52:00.000Z"],
      ["99999501..99999600", "2026-11-16T22:52:00.000Z"],
      ["99999401..99999500", "2026-11-16T22:52:00.000Z"],
    ]);
    const next = jobs.filter((j) => j.data.kind === "tick").at(-1);
    expect(new Date(next?.runAt ?? 0).toISOString()).toBe("2026-11-16T22:52:01.000Z");
    expect((await w.spreader.status("readme")).cursor).toBe(99_999_400n);
  });

  it("holds the rate when it changes mid-run, on a live config change and across a peak window", async () => {
    // Off peak 0.7/s, on peak (01:00–01:10 UTC on Monday) 0.3/s; a live change to 1.3/s half an hour in.
    const peak = { timezone: "UTC", days: "Mon", hours: [1, 1 + 1 / 6] as [number, number] };
    const changeAt = T0 + 1_800_000;
    const { times } = await startTimes({ batchSize: 10, duration: 3, perSecondOnPeak: 0.3, perSecondOffPeak: 0.7, peak }, 4_500, async (w) => {
      w.spreader.on("cyclePlanned", (e) => {
        if (e.beginAt >= changeAt - 3_000 && e.beginAt < changeAt) void w.spreader.updateConfig("paced", { perSecondOffPeak: 1.3 });
      });
    });
    const inRange = (a: number, b: number) => times.filter((t) => t >= a && t < b).length;
    // Off peak before the change: 0.7/s over the first half hour (1,260 within one per rate segment).
    expect(Math.abs(inRange(T0, changeAt) - 0.7 * 1800)).toBeLessThanOrEqual(2);
    // After the change, until the peak window at 01:00: 1.3/s.
    const peakStart = T0 + 3_600_000;
    expect(Math.abs(inRange(changeAt + 3_000, peakStart) - 1.3 * ((peakStart - changeAt - 3_000) / 1000))).toBeLessThanOrEqual(2);
    // In the ten-minute peak window: 0.3/s.
    expect(Math.abs(inRange(peakStart, peakStart + 600_000) - 0.3 * 600)).toBeLessThanOrEqual(2);
  });

  it("a late tick starts its cycle when it runs and, with the batches left from before, never starts faster than the rate", async () => {
    const w = world();
    w.spreader.define("late", {
      source: createMemoryIdSource({ minId: 1, maxId: 100_000 }),
      config: { batchSize: 10, duration: 10, perSecondOnPeak: 2, perSecondOffPeak: 2 },
      handle: async () => {},
    });
    await w.spreader.start("late");
    await w.run(1); // tick 0: 20 batches over [0 s, 10 s), tick 1 due at 10 s
    // Every worker is gone for a minute: nothing runs, then the clock is 70 s on.
    w.clock.set(T0 + 70_000);
    const planned: Array<{ late: boolean; batches: number; beginAt: number }> = [];
    w.spreader.on("cyclePlanned", (e) => planned.push({ late: e.late, batches: e.batches, beginAt: e.beginAt }));
    const starts: number[] = [];
    w.spreader.on("batchStarted", (e) => starts.push(e.at));
    await w.run(400);
    // The late tick plans one cycle of 2/s × 10 s from now: 20 slots, not the six cycles it missed.
    expect(planned[0]).toEqual({ late: true, batches: 20, beginAt: T0 + 70_000 });
    // Cycle 0's 20 batches were due a minute ago; with the new cycle's 20 that is 40 due at once. The rate
    // is enforced when batches start (a bucket that lets one second of the rate through at once, as the
    // whole-second grid plans them): from the moment the workers are back, the first second holds at most
    // that burst plus the rate, every later second at most the rate, never the backlog at once.
    expect(starts.length).toBeGreaterThan(60);
    const perSecond = new Map<number, number>();
    for (const t of starts) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    expect(perSecond.get((T0 + 70_000) / 1000)).toBeLessThanOrEqual(2 + 2 - 1);
    const later = [...perSecond.entries()].filter(([second]) => second > (T0 + 70_000) / 1000).map(([, n]) => n);
    expect(Math.max(...later)).toBeLessThanOrEqual(2);
    expect(Math.min(...starts)).toBeGreaterThanOrEqual(T0 + 70_000);
    // Over the 30 s after the outage, the rate × the time within one batch.
    const first30 = starts.filter((t) => t < T0 + 100_000).length;
    expect(Math.abs(first30 - 60)).toBeLessThanOrEqual(2);
  });

  it("runs batches as fast as the workers can when they are slower than the rate: no batch waits, none is deferred", async () => {
    const w = world();
    // 50 batches/s planned, but each handler takes 100 ms on the one worker: 10/s at most.
    w.spreader.define("slow", {
      source: createMemoryIdSource({ minId: 1, maxId: 5_000 }),
      config: { batchSize: 10, duration: 2, perSecondOnPeak: 50, perSecondOffPeak: 50 },
      handle: async () => w.clock.advance(100),
    });
    const deferred: string[] = [];
    w.spreader.on("batchDeferred", (e) => deferred.push(e.reason));
    const starts: number[] = [];
    w.spreader.on("batchStarted", (e) => starts.push(e.at));
    await w.spreader.start("slow");
    await w.run();
    expect((await w.spreader.status("slow")).status).toBe("completed");
    expect(deferred).toEqual([]);
    // 500 batches of 100 ms back to back: the run takes the work's time, not more.
    const span = ((starts.at(-1) as number) - (starts[0] as number)) / 1000;
    expect(span).toBeLessThan(500 * 0.1 + 2);
  });
});
