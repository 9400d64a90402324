import { describe, expect, it } from "vitest";
import { estimate, nextWindowChange, observedRate, rateWindow } from "../src/estimate.js";
import {
  cycleCapacity,
  cycleJobs,
  isOnPeak,
  isSuperSpreaderError,
  planCycle,
  validateConfig,
  type BackfillConfig,
  type BackfillConfigInput,
  type RunState,
} from "../src/index.js";

const LA = "America/Los_Angeles";
const laWeekdays = { timezone: LA, days: "Mon-Fri", hours: [5, 17] } as const;

/** A stored run as the planner reads it, with only what planning looks at filled in. */
function runAt(config: BackfillConfig, t: number, cursor: bigint, minId: bigint, pace: RunState["pace"], cycle: number): RunState {
  return {
    schema: 1,
    name: "sim",
    runId: "r",
    status: "running",
    config,
    minId: minId.toString(),
    initialId: cursor.toString(),
    cursor: cursor.toString(),
    cycle,
    epoch: 0,
    nextTickAt: t,
    pending: null,
    startedAt: t,
    updatedAt: t,
    finishedAt: null,
    revision: 1,
    pace,
    hold: null,
    watchdog: { revivals: 0, lastRevivedAt: null, lastReason: null },
    tracking: true,
    request: null,
    repairRequest: null,
    lastRepair: null,
    needsTick: false,
    unstarted: false,
    floor: minId.toString(),
    spans: [],
    extendRequest: null,
    lastExtend: null,
    control: null,
  };
}

/**
 * The scheduler, cycle by cycle, with the planner itself: every tick on time at the time the previous plan
 * set, the rate in force then, `requeued` ranges first, then fresh ranges down from the cursor.
 * Returns the run time of the last batch and how many cycles it took, and per cycle its slot times.
 */
function simulate(input: BackfillConfigInput, from: number, minId: bigint, initialId: bigint, requeued = 0) {
  const config = validateConfig(input);
  let t = from;
  let cursor = initialId;
  let pending = requeued;
  let pace: RunState["pace"] = null;
  let cycles = 0;
  let finishAt = from;
  /** Per cycle: when it starts, its rate, how many batches were planned before it, and its batches' run times. */
  const log: Array<{ t: number; perSecond: number; before: number; used: number; times: number[] }> = [];
  while (cursor >= minId || pending > 0) {
    if (cycles > 2_000_000) throw new Error("simulation did not finish");
    const run = runAt(config, t, cursor, minId, pace, cycles);
    const deferred = Array.from({ length: Math.min(pending, cycleCapacity(run, t)) }, (_, i) => ({ beginId: 1n, endId: 1n, cycle: i }));
    const plan = planCycle(run, deferred, t);
    const times = cycleJobs(run, plan).batches.map((b) => b.runAt);
    pending -= plan.requeue.length;
    const used = times.length;
    log.push({ t, perSecond: Number(plan.perSecond), before: (log.at(-1)?.before ?? 0) + (log.at(-1)?.used ?? 0), used, times });
    if (used > 0) finishAt = times[used - 1] as number;
    cursor = BigInt(plan.nextCursor);
    pace = plan.pace;
    cycles++;
    t = plan.nextTickAt;
  }
  return { finishAt, cycles, log };
}

function errorOf(run: () => unknown) {
  try {
    run();
  } catch (error) {
    if (isSuperSpreaderError(error)) return error;
    throw error;
  }
  throw new Error("expected a SuperSpreaderError");
}

describe("estimate", () => {
  // Thursday 2026-10-15 00:00 UTC; Los Angeles falls back from PDT to PST on Sunday 2026-11-01.
  const from = Date.parse("2026-10-15T00:00:00Z");

  it.each<[string, BackfillConfigInput, bigint]>([
    ["on/off peak", { batchSize: 500, duration: 600, perSecondOnPeak: 0.05, perSecondOffPeak: 0.2, peak: laWeekdays }, 200_000_000n],
    [
      "two windows, one in the repeated hour, spread within seconds",
      {
        batchSize: 70,
        duration: 137.5,
        perSecondOnPeak: 0.03,
        perSecondOffPeak: 0.075,
        spreadWithinSecond: true,
        peak: { timezone: LA, windows: [{ days: "Mon-Fri", hours: [5, 17] }, { days: "Sun", hours: [1, 2] }] },
      },
      12_250_000n,
    ],
    ["a zero-rate peak", { batchSize: 1000, duration: 300, perSecondOnPeak: 0, perSecondOffPeak: 0.2, peak: laWeekdays }, 350_000_000n],
  ])("agrees with a cycle-by-cycle simulation for a month across the DST change (%s)", (_label, config, initialId) => {
    const expected = simulate(config, from, 1n, initialId);
    // The month-long span crosses the fall-back, so an ETA that ignored DST would be off by the shifted windows.
    expect(expected.finishAt).toBeGreaterThan(Date.parse("2026-11-10T00:00:00Z"));
    expect(expected.finishAt).toBeLessThan(Date.parse("2026-11-25T00:00:00Z"));
    const eta = estimate({ config, from, idsRemaining: initialId });
    expect(eta.finishAt).toBe(expected.finishAt);
    expect(eta.cyclesRemaining).toBe(expected.cycles);
    expect(eta.extrapolated).toBe(false);

    // Every shorter backfill too, ending in the first or last batch of the cycles on either side of a rate
    // change: these move with the windows, so they catch a window placed an hour off after the DST change.
    const { batchSize } = config;
    const rateChanges = (i: number) => i > 0 && expected.log[i]?.perSecond !== expected.log[i - 1]?.perSecond;
    expected.log.forEach((cycle, i) => {
      if (!rateChanges(i) && !rateChanges(i + 1)) return;
      for (const k of cycle.used > 0 ? [1, cycle.used] : []) {
        const batches = cycle.before + k;
        const got = estimate({ config, from, idsRemaining: BigInt(batches * batchSize) });
        expect(got, `${batches} batches`).toMatchObject({ finishAt: cycle.times[k - 1], cyclesRemaining: i + 1 });
      }
    });
  }, 30_000);

  it("never plans a batch in a zero-rate window: the finish falls after the weekday peak ends", () => {
    const config = { batchSize: 100, duration: 60, perSecondOnPeak: 0, perSecondOffPeak: 1, peak: laWeekdays };
    // Monday 2026-11-16 04:59 PST: 60 batches fit before 05:00, the next ones wait for 17:00 PST (01:00 UTC).
    const monday = Date.parse("2026-11-16T12:59:00Z");
    const eta = estimate({ config, from: monday, idsRemaining: 6_100 });
    expect(eta.finishAt).toBe(Date.parse("2026-11-17T01:00:00Z"));
    expect(eta.cyclesRemaining).toBe(12 * 60 + 2);
    expect(simulate(config, monday, 1n, 6_100n)).toMatchObject({ finishAt: eta.finishAt, cycles: eta.cyclesRemaining });
  });

  it("counts requeued ranges as one slot each, before fresh ones", () => {
    const config: BackfillConfigInput = { batchSize: 100, duration: 10, perSecondOnPeak: 0.5, perSecondOffPeak: 2, peak: { timezone: "UTC", days: "Mon-Sun", hours: [12, 13] } };
    const start = Date.parse("2026-11-16T11:30:00Z");
    const requeued = [
      { beginId: 90_001n, endId: 90_100n },
      { beginId: 50_001n, endId: 50_042n },
      { beginId: 7n, endId: 7n },
    ];
    const eta = estimate({ config, from: start, idsRemaining: 150_000, requeued });
    const expected = simulate(config, start, 1n, 150_000n, requeued.length);
    expect(eta).toMatchObject({ finishAt: expected.finishAt, cyclesRemaining: expected.cycles, batchesRemaining: 1503n, idsRemaining: 150_143n });
  });

  it.each<[string, BackfillConfigInput, bigint]>([
    // Lord Howe moves by 30 minutes; the window starts in the skipped half hour on 2026-10-04.
    [
      "2026-10-02T00:00:00Z",
      { batchSize: 10, duration: 97, perSecondOnPeak: 7.5, perSecondOffPeak: 0.4, peak: { timezone: "Australia/Lord_Howe", days: "Sat-Mon", hours: [2.25, 2.75] } },
      200_000n,
    ],
    // Spring forward in Los Angeles: a [2, 3) window does not exist on 2026-03-08; a wrapping night window does.
    [
      "2026-03-05T00:00:00Z",
      {
        batchSize: 25,
        duration: 45,
        perSecondOnPeak: 0,
        perSecondOffPeak: 1.5,
        peak: { timezone: LA, windows: [{ days: "Sun", hours: [2, 3] }, { days: "Fri-Sun", hours: [22, 6.5] }] },
      },
      400_000n,
    ],
    // Berlin falls back on 2026-10-25 at 03:00; window edges that are not whole milliseconds.
    [
      "2026-10-23T10:00:00Z",
      {
        batchSize: 3,
        duration: 7.3,
        perSecondOnPeak: 0.1,
        perSecondOffPeak: 3,
        spreadWithinSecond: true,
        peak: { timezone: "Europe/Berlin", days: "Sat,Sun", hours: [2.123456789, 17.1] },
      },
      300_000n,
    ],
    // Newfoundland (-3:30, then -2:30 from 2026-11-01), windows touching midnight from both sides.
    [
      "2026-10-30T00:00:00Z",
      {
        batchSize: 1,
        duration: 600,
        perSecondOnPeak: 0.02,
        perSecondOffPeak: 0.05,
        peak: { timezone: "America/St_Johns", windows: [{ days: "Sun", hours: [0, 1] }, { days: "Sat", hours: [23, 24] }] },
      },
      20_000n,
    ],
  ])("agrees with the simulation around a DST change in odd zones and windows (from %s)", (iso, config, initialId) => {
    const start = Date.parse(iso);
    const expected = simulate(config, start, 1n, initialId);
    expect(estimate({ config, from: start, idsRemaining: initialId })).toMatchObject({ finishAt: expected.finishAt, cyclesRemaining: expected.cycles });
  }, 30_000);

  it("agrees with the simulation for random windows, zones, durations and rates", () => {
    // A fixed-seed generator: the same cases on every run.
    let seed = 20_261_101;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
    const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)] as T;
    const zones = ["America/Los_Angeles", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago", "Asia/Kolkata", "UTC"];
    const days = ["2026-03-07", "2026-03-28", "2026-04-04", "2026-09-26", "2026-10-03", "2026-10-24", "2026-10-31"];
    const hours = (): [number, number] => {
      const h: [number, number] = [Math.round(random() * 96) / 4, Math.round(random() * 96) / 4];
      return h[0] === h[1] ? [h[0], (h[0] + 1) % 24] : h;
    };
    for (let n = 0; n < 40; n++) {
      const config: BackfillConfigInput = {
        batchSize: 1 + Math.floor(random() * 50),
        duration: pick([7.3, 45, 97, 137.5, 600, 5400]),
        perSecondOnPeak: pick([0, 0.1, 0.3, 2.5]),
        perSecondOffPeak: pick([0.05, 0.4, 1.5]),
        spreadWithinSecond: random() < 0.5,
        peak: {
          timezone: pick(zones),
          windows: Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({ days: [pick([1, 2, 3, 4, 5, 6, 7]), pick([1, 5, 6, 7])], hours: hours() })),
        },
      };
      const start = Date.parse(`${pick(days)}T00:00:00Z`) + Math.floor(random() * 86_400_000);
      const ids = BigInt(1 + Math.floor(random() * 100_000));
      const expected = simulate(config, start, 1n, ids);
      expect(estimate({ config, from: start, idsRemaining: ids }), `case ${n}: ${JSON.stringify(config)} from ${start}`).toMatchObject({
        finishAt: expected.finishAt,
        cyclesRemaining: expected.cycles,
      });
    }
  }, 30_000);

  it("returns a null finish when every rate is 0 forever", () => {
    const base = { batchSize: 10, duration: 60 };
    expect(estimate({ config: { ...base, perSecondOnPeak: 0, perSecondOffPeak: 0, peak: laWeekdays }, from, idsRemaining: 100 })).toMatchObject({
      finishAt: null,
      cyclesRemaining: null,
      batchesRemaining: 10n,
    });
    // No peak schedule: only the off-peak rate ever applies.
    expect(estimate({ config: { ...base, perSecondOnPeak: 5, perSecondOffPeak: 0 }, from, idsRemaining: 100 }).finishAt).toBeNull();
    // Weekly cycles that always start at Monday 00:00 UTC never see the Monday-noon window.
    const monday = Date.parse("2026-11-16T00:00:00Z");
    const weekly: BackfillConfigInput = { batchSize: 10, duration: 7 * 86_400, perSecondOnPeak: 0.1, perSecondOffPeak: 0, peak: { timezone: "UTC", days: "Mon", hours: [12, 13] } };
    expect(estimate({ config: weekly, from: monday, idsRemaining: 100 }).finishAt).toBeNull();
    expect(estimate({ config: weekly, from: monday + 12 * 3_600_000, idsRemaining: 100 }).finishAt).toBe(monday + 12 * 3_600_000 + 90_000);
  });

  it("jumps arithmetically over billions of cycles", () => {
    // 10^12 ids, 30 batches of 100 ids per minute: 333,333,334 cycles without a peak.
    const flat = estimate({ config: { batchSize: 100, duration: 60, perSecondOnPeak: 0.5, perSecondOffPeak: 0.5 }, from, idsRemaining: 10n ** 12n });
    expect(flat).toMatchObject({ batchesRemaining: 10n ** 10n, cyclesRemaining: 333_333_334, extrapolated: false });
    // The last cycle holds 10^10 - 333,333,333 × 30 = 10 batches; the 10th runs 18 s in.
    expect(flat.finishAt).toBe(from + 333_333_333 * 60_000 + 18_000);

    // With peaks: years of windows, walked window by window.
    const config = { batchSize: 1000, duration: 60, perSecondOnPeak: 2, perSecondOffPeak: 10, peak: laWeekdays };
    const years = estimate({ config, from, idsRemaining: 10n ** 12n });
    expect(years.extrapolated).toBe(false);
    const seconds = ((years.finishAt as number) - from) / 1000;
    expect(seconds).toBeGreaterThan(1e12 / (10 * 1000));
    expect(seconds).toBeLessThan(1e12 / (2 * 1000));

    // Beyond a century the rest is extrapolated from the walk.
    const slow = estimate({ config: { ...config, batchSize: 1, perSecondOnPeak: 1, perSecondOffPeak: 5 }, from, idsRemaining: 10n ** 12n });
    expect(slow.extrapolated).toBe(true);
    const slowSeconds = ((slow.finishAt as number) - from) / 1000;
    expect(slowSeconds).toBeGreaterThan(1e12 / 5);
    expect(slowSeconds).toBeLessThan(1e12 / 1);
    expect(slow.cyclesRemaining).toBeCloseTo(slowSeconds / 60, -3);
  });

  it("finishes at `from` when nothing remains, and adds the observed-pace finish", () => {
    const config = { batchSize: 10, duration: 60, perSecondOnPeak: 1, perSecondOffPeak: 1 };
    expect(estimate({ config, from, idsRemaining: 0 })).toEqual({
      finishAt: from,
      cyclesRemaining: 0,
      batchesRemaining: 0n,
      idsRemaining: 0n,
      extrapolated: false,
      observedFinishAt: null,
    });
    // 600 ids at 10 ids/s observed: 60 s, while the configured 1 batch (10 ids) per second plans them in one cycle.
    const eta = estimate({ config, from, idsRemaining: 600, observed: 10 });
    expect(eta.finishAt).toBe(from + 59_000);
    expect(eta.observedFinishAt).toBe(from + 60_000);
    expect(estimate({ config, from, idsRemaining: 600, observed: 0 }).observedFinishAt).toBeNull();
  });

  it("rejects bad input naming the field", () => {
    const config = { batchSize: 10, duration: 60, perSecondOnPeak: 1, perSecondOffPeak: 1 };
    expect(errorOf(() => estimate({ config: { ...config, batchSize: 0 }, from, idsRemaining: 1 }))).toMatchObject({ code: "INVALID_CONFIG", field: "batchSize" });
    expect(errorOf(() => estimate({ config, from: Number.NaN, idsRemaining: 1 }))).toMatchObject({ code: "INVALID_ARGUMENT", field: "from" });
    expect(errorOf(() => estimate({ config, from: new Date("nope"), idsRemaining: 1 }))).toMatchObject({ field: "from" });
    expect(errorOf(() => estimate({ config, from, idsRemaining: -1 }))).toMatchObject({ code: "INVALID_ARGUMENT", field: "idsRemaining" });
    expect(errorOf(() => estimate({ config, from, idsRemaining: 1.5 }))).toMatchObject({ field: "idsRemaining" });
    expect(errorOf(() => estimate({ config, from, idsRemaining: 1, observed: -2 }))).toMatchObject({ code: "INVALID_ARGUMENT", field: "observed" });
    expect(errorOf(() => estimate({ config, from, idsRemaining: 1, requeued: [{ beginId: 5n, endId: 4n }] }))).toMatchObject({ field: "requeued[0]" });
    expect(errorOf(() => estimate(null as never))).toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("nextWindowChange", () => {
  it("says the window in force and the next change with its rate", () => {
    const config = { batchSize: 1, duration: 60, perSecondOnPeak: 3, perSecondOffPeak: 7.5, peak: laWeekdays };
    // Sunday 2026-11-22 12:00 UTC is off peak; Monday 05:00 PST (13:00 UTC) starts the peak at 3/s.
    expect(rateWindow(config, Date.parse("2026-11-22T12:00:00Z"))).toEqual({
      onPeak: false,
      perSecond: 7.5,
      next: { at: Date.parse("2026-11-23T13:00:00Z"), onPeak: true, perSecond: 3 },
    });
    expect(rateWindow({ batchSize: 1, duration: 60, perSecondOnPeak: 1, perSecondOffPeak: 2 }, 0)).toEqual({ onPeak: false, perSecond: 2, next: null });
  });

  it("finds the next edge of a window, across the DST change", () => {
    const config = { batchSize: 1, duration: 60, perSecondOnPeak: 1, perSecondOffPeak: 2, peak: laWeekdays };
    // Friday 2026-10-30 13:00 PDT → off at 17:00 PDT.
    expect(nextWindowChange(config, Date.parse("2026-10-30T20:00:00Z"))).toEqual({ at: Date.parse("2026-10-31T00:00:00Z"), onPeak: false });
    // Saturday → on again Monday 05:00, now PST (13:00 UTC, not 12:00).
    expect(nextWindowChange(config, Date.parse("2026-10-31T12:00:00Z"))).toEqual({ at: Date.parse("2026-11-02T13:00:00Z"), onPeak: true });
    expect(nextWindowChange({ ...config, peak: null }, aMonday())).toBeNull();
    expect(nextWindowChange({ ...config, peak: { timezone: LA, days: "Mon-Sun", hours: [0, 24] } }, aMonday())).toBeNull();
  });

  it("matches isOnPeak at and just before every change it reports", () => {
    const schedules = [
      laWeekdays,
      { timezone: "Australia/Lord_Howe", windows: [{ days: "Sun", hours: [1.75, 2.25] }, { days: "Mon-Fri", hours: [20, 4] }] },
      { timezone: "Europe/London", days: "Sun", hours: [0.5, 1.5] },
      { timezone: "Asia/Kolkata", days: "Tue,Thu", hours: [9.5, 18.25] },
    ] as const;
    const starts = ["2026-03-27T00:00:00Z", "2026-04-03T00:00:00Z", "2026-10-01T00:00:00Z", "2026-10-23T00:00:00Z"].map(Date.parse);
    for (const peak of schedules) {
      const config = { batchSize: 1, duration: 60, perSecondOnPeak: 1, perSecondOffPeak: 2, peak };
      for (const start of starts) {
        let t = start;
        for (let step = 0; step < 6; step++) {
          const change = nextWindowChange(config, t);
          if (change === null) throw new Error("expected a change");
          const before = isOnPeak(peak, t);
          expect(change.onPeak, `${peak.timezone} after ${new Date(t).toISOString()}`).toBe(!before);
          expect(isOnPeak(peak, change.at)).toBe(change.onPeak);
          expect(isOnPeak(peak, change.at - 1)).toBe(before);
          // Nothing changes in between (sampled every 20 minutes).
          for (let s = t; s < change.at; s += 1_200_000) expect(isOnPeak(peak, s)).toBe(before);
          t = change.at;
        }
      }
    }
  }, 30_000);
});

describe("observedRate", () => {
  const now = Date.parse("2026-11-16T12:30:30Z");
  const minute = (m: number) => Date.parse("2026-11-16T12:00:00Z") + m * 60_000;

  it("divides the recent buckets' ids by the time they span", () => {
    const recent = [
      { minute: minute(0), ids: "99999", batches: 1 }, // older than the window
      { minute: minute(20), ids: "600", batches: 6 },
      { minute: minute(30), ids: "300", batches: 3 },
    ];
    // Window: buckets from 12:15 on; the first is 12:20, so 900 ids over 630 s.
    expect(observedRate({ recent }, now)).toBeCloseTo(900 / 630, 10);
    // A run started after its first bucket began is measured from its start.
    expect(observedRate({ recent }, now, { startedAt: minute(25) })).toBeCloseTo(900 / 330, 10);
    expect(observedRate({ recent }, now, { windowMinutes: 5 })).toBeCloseTo(300 / 30, 10);
    expect(observedRate({ recent: [] }, now)).toBeNull();
    expect(errorOf(() => observedRate({ recent }, now, { windowMinutes: 0 }))).toMatchObject({ field: "windowMinutes" });
  });
});

function aMonday(): number {
  return Date.parse("2026-11-16T00:00:00Z");
}
