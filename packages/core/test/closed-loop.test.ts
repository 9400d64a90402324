import { describe, expect, it } from "vitest";
import { createMemoryIdSource, isSuperSpreaderError, type SuperSpreaderError, type BatchContext, type HealthReading, type SuperSpreaderEvents } from "../src/index.js";
import { T0, idCounter, world } from "./harness.js";

/*
 * The closed loop (issue #9) through the runtime: in memory, on a manual clock. The control law itself
 * is checked against a database model in control.test.ts.
 */

const base = { duration: 10, perSecondOnPeak: 4, perSecondOffPeak: 4 } as const;

/** A health indicator whose reading the test sets. */
function switchable(initial: HealthReading = { level: "ok", reason: "replica lag 0.1 s", value: 0.1 }) {
  let reading: HealthReading | Error = initial;
  let polls = 0;
  return {
    set(next: HealthReading | Error) {
      reading = next;
    },
    get polls() {
      return polls;
    },
    indicator: async () => {
      polls++;
      if (reading instanceof Error) throw reading;
      return reading;
    },
  };
}

function errorOf(promise: Promise<unknown>): Promise<SuperSpreaderError> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => {
      if (isSuperSpreaderError(error)) return error;
      throw error;
    },
  );
}

describe("batch-size autotune", () => {
  it("moves the batch size toward the target handler time, in the stored plans, with every id once", async () => {
    const w = world();
    const ids = idCounter(60_000);
    const tuned: SuperSpreaderEvents["tuned"][] = [];
    w.spreader.on("tuned", (e) => tuned.push(e));
    // Each id costs 0.5 ms: the config's 1,000-id batches take 500 ms, the target of 100 ms needs 200.
    w.spreader.define("sized", {
      source: createMemoryIdSource({ minId: 1n, maxId: 60_000n }),
      config: { ...base, batchSize: 1_000, autotune: { batchSize: { targetMs: 100, min: 10, max: 5_000 }, rate: false } },
      async handle(context: BatchContext) {
        await ids.handle(context);
        w.clock.advance(Number(context.endId - context.beginId + 1n) * 0.5);
      },
    });
    await w.spreader.start("sized");
    await w.run();
    expect((await w.spreader.status("sized")).status).toBe("completed");
    expect(ids.mismatches()).toEqual([]);
    const sizes = tuned.filter((e) => e.field === "batchSize");
    expect(sizes.length).toBeGreaterThanOrEqual(1);
    // Down from 1,000 (a decrease is not capped), never below the bound, ending within the dead band around 200.
    expect(sizes[0]).toMatchObject({ from: 1_000 });
    expect(sizes.every((e) => e.to < e.from && e.to >= 10)).toBe(true);
    const last = sizes[sizes.length - 1]!.to;
    expect(last).toBeGreaterThanOrEqual(Math.floor(200 * 0.85));
    expect(last).toBeLessThanOrEqual(Math.ceil(200 * 1.1));
    // Smaller batches do not raise the load: still at most the configured 4 batches a second.
    expect(sizes.every((e) => e.perSecond <= 4)).toBe(true);
    // Recorded like an operator's change.
    const trail = await w.spreader.audit("sized");
    expect(trail.complete).toBe(true);
    const changes = await w.store.listConfigChanges("sized", 100);
    const byLoop = changes.filter((c) => c.actor === "autotune");
    expect(byLoop.length).toBe(sizes.length);
    expect(byLoop[0]?.changes.batchSize).toMatchObject({ to: last });
    expect(byLoop[0]?.reason).toMatch(/batches take \d+ ms at [\d.]+ µs per id, target 100 ms/);
  });

  it("grows batches larger than the config's at fewer batches a second, so ids per second stay within the config", async () => {
    const w = world();
    const plans: SuperSpreaderEvents["cyclePlanned"][] = [];
    w.spreader.on("cyclePlanned", (e) => plans.push(e));
    w.spreader.define("grow", {
      source: createMemoryIdSource({ minId: 1n, maxId: 200_000n }),
      config: { ...base, batchSize: 100, autotune: { batchSize: { targetMs: 100, max: 1_000 }, rate: false } },
      async handle({ beginId, endId }) {
        w.clock.advance(Number(endId - beginId + 1n) * 0.01); // 1 ms per 100 ids: far under target
      },
    });
    await w.spreader.start("grow");
    await w.run(3_000);
    const status = await w.spreader.status("grow");
    expect(status.control?.batchSize).toBe(1_000);
    // 4 batches/s of 100 ids = 400 ids/s configured: at 1,000 ids a batch, 0.4 batches/s.
    expect(status.rate.perSecond).toBe(0.4);
    expect(plans[plans.length - 1]?.perSecond).toBe(0.4);
  });
});

describe("rate control on health signals", () => {
  it("lowers the rate when an indicator says slow, says why in status, and raises it back when clear", async () => {
    const w = world();
    const health = switchable();
    w.spreader.define("throttled", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      config: { ...base, batchSize: 100, autotune: { batchSize: false, rate: {} } },
      health: [health.indicator],
      async handle() {},
    });
    await w.spreader.start("throttled");
    await w.run(200);
    expect((await w.spreader.status("throttled")).rate.perSecond).toBe(4);
    health.set({ level: "slow", reason: "replica lag 2.3 s > 1.5 s", value: 2.3 });
    await w.run(60);
    const slowed = await w.spreader.status("throttled");
    expect(slowed.rate.perSecond).toBeLessThan(4);
    expect(slowed.control?.summary).toMatch(/^throttled: slow: replica lag 2\.3 s > 1\.5 s \([\d.]+\/s of 4\/s, batch 100\)$/);
    const changes = await w.store.listConfigChanges("throttled", 10);
    expect(changes[0]).toMatchObject({ actor: "autotune", changes: { perSecond: { from: 4 } } });
    health.set({ level: "ok", reason: "replica lag 0.2 s", value: 0.2 });
    await w.run(2_000);
    const clear = await w.spreader.status("throttled");
    expect(clear.rate.perSecond).toBeGreaterThan(slowed.rate.perSecond);
  });

  it("lowers the rate when batches start later than planned (workers cannot keep up)", async () => {
    const w = world();
    const tuned: Array<{ field: string; reason: string }> = [];
    w.spreader.on("tuned", (e) => tuned.push(e));
    w.spreader.define("late", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      config: { ...base, batchSize: 100, autotune: { batchSize: false, rate: { latenessMs: 2_000 } } },
      async handle() {
        w.clock.advance(600); // one worker, 0.6 s a batch: at most 1.67 batches a second, 4 planned
      },
    });
    await w.spreader.start("late");
    await w.run(300);
    const status = await w.spreader.status("late");
    // Around what the worker finishes (1.67/s), not down to the floor: while it keeps up with the rate the
    // backlog it carries is the start bucket's, so the rate rises again until it falls short.
    expect(status.rate.perSecond).toBeLessThan(4 * 0.85);
    expect(status.rate.perSecond).toBeGreaterThan(0.7 / 0.6);
    expect(tuned.some((t) => t.field === "rate" && /workers finish [\d.]+ batches\/s of the [\d.]+ planned/.test(t.reason))).toBe(true);
  });
});

describe("health stop", () => {
  it("holds the run within one poll interval of a stop, then resumes by itself once the signal clears", async () => {
    const w = world();
    const ids = idCounter(20_000);
    const health = switchable();
    const starts: number[] = [];
    const held: SuperSpreaderEvents["held"][] = [];
    const resumed: SuperSpreaderEvents["resumed"][] = [];
    w.spreader.on("batchStarted", (e) => starts.push(e.at));
    w.spreader.on("held", (e) => held.push(e));
    w.spreader.on("resumed", (e) => resumed.push(e));
    w.spreader.define("guarded", {
      source: createMemoryIdSource({ minId: 1n, maxId: 20_000n }),
      config: { ...base, batchSize: 100, health: { interval: 2, stopHold: 60 } },
      health: [health.indicator],
      handle: ids.handle,
    });
    await w.spreader.start("guarded");
    await w.run(30);
    const stopAt = w.clock.now();
    health.set({ level: "stop", reason: "replica lag 12 s > 10 s", value: 12 });
    await w.run(40);
    const status = await w.spreader.status("guarded");
    expect(status.status).toBe("held");
    expect(status.hold).toMatchObject({ cause: "health", reason: "health: replica lag 12 s > 10 s" });
    expect(held[0]).toMatchObject({ cause: "health" });
    // No batch started later than one interval (2 s) after the signal turned.
    const afterStop = starts.filter((t) => t > stopAt);
    expect(afterStop.every((t) => t <= stopAt + 2_000)).toBe(true);
    // Still stop when the hold is up: held again for stopHold.
    w.clock.advance(61_000);
    await w.run(5);
    expect((await w.spreader.status("guarded")).status).toBe("held");
    health.set({ level: "ok", reason: "replica lag 0.3 s", value: 0.3 });
    await w.run();
    expect(resumed[0]).toMatchObject({ by: "health" });
    expect((await w.spreader.status("guarded")).status).toBe("completed");
    expect(ids.missing()).toEqual([]);
  });

  it("fails closed: a signal that cannot be read counts as stop after failClosedAfter", async () => {
    const w = world();
    const health = switchable();
    w.spreader.define("blind", {
      source: createMemoryIdSource({ minId: 1n, maxId: 100_000n }),
      config: { ...base, batchSize: 100, health: { interval: 1, failClosedAfter: 5, stopHold: 30 } },
      health: [health.indicator],
      async handle() {},
    });
    await w.spreader.start("blind");
    await w.run(10);
    health.set(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
    await w.run(60);
    const status = await w.spreader.status("blind");
    expect(status.status).toBe("held");
    expect(status.hold?.reason).toMatch(/^health: the health signal could not be read for \d+ s \(.*ECONNREFUSED/);
  });
});

describe("pins", () => {
  it("pins the rate and the batch size live, refuses bad values naming them, and unpins", async () => {
    const w = world();
    w.spreader.define("pinned", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      config: { ...base, batchSize: 100, autotune: { batchSize: false } },
      async handle() {},
    });
    await w.spreader.start("pinned");
    await w.run(20);
    await expect(errorOf(w.spreader.pin("pinned", { perSecond: 9 }))).resolves.toMatchObject({ code: "INVALID_ARGUMENT", field: "values.perSecond" });
    await expect(errorOf(w.spreader.pin("pinned", { perSecond: -1 }))).resolves.toMatchObject({ field: "values.perSecond" });
    await expect(errorOf(w.spreader.pin("pinned", { batchSize: 2.5 }))).resolves.toMatchObject({ field: "values.batchSize" });
    await expect(errorOf(w.spreader.pin("pinned", { rate: 2 } as never))).resolves.toMatchObject({ field: "values.rate" });
    const pinned = await w.spreader.pin("pinned", { perSecond: 1.5, batchSize: 40 }, { actor: "alice", reason: "incident 4711" });
    expect(pinned.control?.pins).toEqual({ perSecond: 1.5, batchSize: 40 });
    await w.run(20);
    const plan = await w.spreader.plan("pinned");
    expect(plan?.perSecond).toBe(1.5);
    expect(plan?.batches.every((b) => b.endId - b.beginId + 1n === 40n)).toBe(true);
    expect((await w.spreader.status("pinned")).control?.summary).toMatch(/^rate pinned at 1\.5\/s; batch size pinned at 40/);
    const [change] = await w.store.listConfigChanges("pinned", 1);
    expect(change).toMatchObject({ actor: "alice", reason: "incident 4711", changes: { "pin.perSecond": { from: null, to: 1.5 }, "pin.batchSize": { from: null, to: 40 } } });
    await w.spreader.pin("pinned", { perSecond: null, batchSize: null });
    await w.run(20);
    expect((await w.spreader.plan("pinned"))?.perSecond).toBe(4);
  });
});

describe("deadline mode", () => {
  const peak = { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [9, 17] as [number, number] };

  it("refuses a deadline the configured rates cannot meet, saying which rates would, and writes nothing", async () => {
    const w = world();
    w.spreader.define("late-deadline", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      // 1,000 batches at 1/s take 1,000 s; the deadline is 500 s away.
      config: { duration: 10, batchSize: 1_000, perSecondOnPeak: 1, perSecondOffPeak: 1, finishBy: T0 + 500_000 },
      async handle() {},
    });
    const error = await errorOf(w.spreader.start("late-deadline"));
    expect(error).toMatchObject({ code: "INVALID_CONFIG", field: "finishBy" });
    expect(error.message).toMatch(
      /finishBy 2026-11-16T00:08:20Z cannot be met: at perSecondOnPeak 1 and perSecondOffPeak 1 the run finishes 2026-11-16T00:16:39Z; perSecondOnPeak 2\.03\d and perSecondOffPeak 2\.03\d \(2\.03\d× the configured rates\) would, or a later deadline$/,
    );
    expect(await w.store.get("late-deadline")).toBeNull();
  });

  it("refuses an infeasible deadline in updateConfig and keeps the stored config", async () => {
    const w = world();
    w.spreader.define("moved", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      config: { duration: 10, batchSize: 1_000, perSecondOnPeak: 1, perSecondOffPeak: 1 },
      async handle() {},
    });
    await w.spreader.start("moved");
    const before = (await w.spreader.status("moved")).config;
    await expect(errorOf(w.spreader.updateConfig("moved", { finishBy: T0 + 100_000 }))).resolves.toMatchObject({ code: "INVALID_CONFIG", field: "finishBy" });
    expect((await w.spreader.status("moved")).config).toEqual(before);
  });

  it("finishes within one cycle of a deadline a month away, across the start of daylight saving time", async () => {
    const start = Date.parse("2027-02-25T00:00:00Z"); // Los Angeles moves to daylight saving time on 2027-03-14
    const finishBy = Date.parse("2027-03-25T00:00:00Z");
    const w = world();
    w.clock.set(start);
    const ids = idCounter(500_000);
    w.spreader.define("monthly", {
      source: createMemoryIdSource({ minId: 1n, maxId: 500_000n }),
      // 5,000 batches; the ceilings (0.002/s on peak, 0.005/s off) would take about two weeks.
      config: { duration: 600, batchSize: 100, perSecondOnPeak: 0.002, perSecondOffPeak: 0.005, peak, finishBy: new Date(finishBy).toISOString() },
      handle: ids.handle,
    });
    await w.spreader.start("monthly");
    const eta = await w.spreader.eta("monthly");
    expect(eta?.finishAt).toBeLessThanOrEqual(finishBy);
    await w.run();
    const done = await w.spreader.status("monthly");
    expect(done.status).toBe("completed");
    expect(ids.mismatches()).toEqual([]);
    const finished = done.finishedAt as number;
    expect(finished).toBeLessThanOrEqual(finishBy);
    expect(finishBy - finished).toBeLessThanOrEqual(600_000);
    // It ran under the ceilings, as slowly as the deadline allowed.
    expect(done.control?.deadline).toMatchObject({ finishBy, feasible: true });
    expect(done.control?.deadline?.share).toBeLessThan(1);
  }, 60_000);
});

describe("shared budget", () => {
  it("keeps two backfills started together at the budget, then shares it by weight", async () => {
    const w = world();
    const starts: Array<{ at: number; backfill: string }> = [];
    w.spreader.on("batchStarted", (e) => starts.push({ at: e.at, backfill: e.backfill }));
    for (const [name, weight] of [["orders", 3], ["users", 1]] as const) {
      w.spreader.define(name, {
        source: createMemoryIdSource({ minId: 1n, maxId: 10_000_000n }),
        config: { duration: 10, batchSize: 100, perSecondOnPeak: 8, perSecondOffPeak: 8, budget: { key: "main-db", perSecond: 8, weight } },
        async handle() {},
      });
    }
    await w.spreader.start("orders");
    await w.spreader.start("users");
    await w.run(3_000);
    // Every 10 s window from the start: at most the budget's 80 starts (and one burst of a second).
    const end = w.clock.now();
    for (let t = T0; t + 10_000 <= end; t += 1_000) {
      const inWindow = starts.filter((s) => s.at >= t && s.at < t + 10_000).length;
      expect(inWindow, `starts in [${t - T0}, ${t - T0 + 10_000}) ms`).toBeLessThanOrEqual(80 + 8);
    }
    const orders = await w.spreader.status("orders");
    const users = await w.spreader.status("users");
    expect(orders.rate.perSecond).toBe(6);
    expect(users.rate.perSecond).toBe(2);
    expect(orders.control?.budget).toEqual({ key: "main-db", perSecond: 8, cap: 6 });
    // Paused, "orders" gives its share back: "users" gets the whole budget at its next claim.
    await w.spreader.pause("orders");
    await w.run(200);
    expect((await w.spreader.status("users")).rate.perSecond).toBe(8);
  });
});

describe("planDeadline", () => {
  it("says whether a deadline is feasible, the share it needs, or the rates that would make it", async () => {
    const { planDeadline } = await import("../src/index.js");
    const config = { duration: 10, batchSize: 1_000, perSecondOnPeak: 1, perSecondOffPeak: 1 };
    const feasible = planDeadline({ config, finishBy: T0 + 2_000_000, from: T0, idsRemaining: 1_000_000n });
    expect(feasible).toMatchObject({ finishBy: T0 + 2_000_000, feasible: true, needs: null });
    expect(feasible.share).toBeGreaterThan(0.45);
    expect(feasible.share).toBeLessThan(0.55);
    expect(feasible.finishAt).toBeLessThanOrEqual(T0 + 2_000_000 - 10_000);
    const infeasible = planDeadline({ config, finishBy: new Date(T0 + 500_000).toISOString(), from: T0, idsRemaining: 1_000_000n });
    expect(infeasible).toMatchObject({ feasible: false, share: 1 });
    expect(infeasible.needs?.perSecondOnPeak).toBeGreaterThan(2);
    expect(() => planDeadline({ config, from: T0, idsRemaining: 1n })).toThrow(expect.objectContaining({ field: "finishBy" }));
    expect(() => planDeadline({ config, finishBy: "soon", from: T0, idsRemaining: 1n })).toThrow(expect.objectContaining({ field: "finishBy" }));
  });
});
