import { describe, expect, it } from "vitest";
import { validateConfig } from "../src/config.js";
import { decide, initialControl, type ControlState } from "../src/control.js";
import { effectiveConfig } from "../src/effective.js";
import type { HealthReading } from "../src/ports.js";

/** A seeded PRNG (mulberry32): the same seed gives the same competing load. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A database with a knee: it absorbs `capacity − competing load` rows a second; above that its replica
 * falls behind (lag grows with the excess, drains with the headroom) and each row costs more (queueing).
 */
class DatabaseModel {
  lag = 0;
  competing = 0;
  constructor(
    private readonly random: () => number,
    readonly capacity = 50_000,
    readonly baseLoad = 10_000,
  ) {}

  /** Rows per second the backfill can write without the replica falling behind, this cycle. */
  get knee(): number {
    return this.capacity - this.competing;
  }

  /** One cycle of `seconds` at `rowsPerSecond`: the handler's cost per row (ms). */
  run(rowsPerSecond: number, seconds: number): number {
    this.competing = this.baseLoad + (this.random() - 0.5) * 3_000;
    const utilisation = rowsPerSecond / this.knee;
    this.lag = Math.max(0, this.lag + ((rowsPerSecond - this.knee) / this.knee) * seconds);
    return 0.02 * (utilisation < 0.9 ? 1 : 1 + 10 * (utilisation - 0.9));
  }

  health(): HealthReading {
    if (this.lag > 10) return { level: "stop", reason: `replica lag ${this.lag.toFixed(1)} s > 10 s`, value: this.lag };
    if (this.lag > 1.5) return { level: "slow", reason: `replica lag ${this.lag.toFixed(1)} s > 1.5 s`, value: this.lag };
    return { level: "ok", reason: `replica lag ${this.lag.toFixed(1)} s`, value: this.lag };
  }
}

const DURATION = 10;
const config = validateConfig({
  batchSize: 2_000,
  duration: DURATION,
  perSecondOnPeak: 50,
  perSecondOffPeak: 50,
  autotune: { batchSize: { targetMs: 100, min: 50, max: 4_000 }, rate: {} },
});

interface Step {
  cycle: number;
  perSecond: number;
  batchSize: number;
  rows: number;
  knee: number;
  lag: number;
  /** Handler time of one batch this cycle (ms). */
  batchMs: number;
  state: ControlState;
}

/** Runs the loop against the model, one decision per cycle, as a tick would. */
function simulate(seed: number, cycles: number, events: { lagJumpAt?: number } = {}): Step[] {
  const model = new DatabaseModel(prng(seed));
  let state = initialControl();
  const steps: Step[] = [];
  for (let cycle = 0; cycle < cycles; cycle++) {
    const effective = effectiveConfig({ config, control: state });
    const perSecond = effective.perSecondOnPeak;
    const batchSize = effective.batchSize;
    const rows = perSecond * batchSize;
    const msPerRow = model.run(rows, DURATION);
    if (cycle === events.lagJumpAt) model.lag += 6;
    steps.push({ cycle, perSecond, batchSize, rows, knee: model.knee, lag: model.lag, batchMs: batchSize * msPerRow, state });
    const batches = Math.round(perSecond * DURATION);
    const ids = batches * batchSize;
    ({ state } = decide(config.autotune!, state, {
      now: cycle * DURATION * 1000,
      cycle,
      configBatchSize: config.batchSize,
      plannedPerSecond: perSecond,
      sample: { batches, ids, handlerMs: ids * msPerRow, lateMs: 0, failures: 0 },
      waiting: 0,
      tickMs: 20,
      health: model.health(),
    }));
  }
  return steps;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("the closed loop against a database model with a knee and a competing load", () => {
  it.each([1, 2, 3, 42, 2026])("converges within ±10 percent of the knee and stays within its bounds (seed %i)", (seed) => {
    const steps = simulate(seed, 240);
    const settled = steps.slice(60);
    const ratio = settled.map((s) => s.rows / s.knee);
    const meanRatio = mean(ratio);
    expect(meanRatio).toBeGreaterThan(0.9);
    expect(meanRatio).toBeLessThan(1.1);
    // No oscillation beyond the loop's bounds: one decrease (×0.85) below and the memory of the bad rate above.
    expect(Math.min(...ratio)).toBeGreaterThan(0.7);
    expect(Math.max(...ratio)).toBeLessThan(1.2);
    // The batch size keeps batches near the 100 ms target (the median batch, as rows get dearer near the knee).
    const times = settled.map((s) => s.batchMs).sort((a, b) => a - b);
    expect(times[Math.floor(times.length / 2)]).toBeGreaterThan(80);
    expect(times[Math.floor(times.length / 2)]).toBeLessThan(120);
    expect(settled.every((s) => s.batchSize >= 50 && s.batchSize <= 4_000)).toBe(true);
    // Once settled, the replica never lags as far as a stop (10 s).
    expect(Math.max(...settled.map((s) => s.lag))).toBeLessThan(10);
  });

  it("converges in a bounded number of cycles", () => {
    for (const seed of [1, 2, 3]) {
      const steps = simulate(seed, 240);
      const first = steps.findIndex((s) => Math.abs(s.rows / s.knee - 1) <= 0.1);
      expect(first).toBeGreaterThanOrEqual(0);
      expect(first).toBeLessThan(40);
    }
  });

  it("backs off at the first decision after the replica's lag jumps", () => {
    const jumpAt = 150;
    const steps = simulate(7, 160, { lagJumpAt: jumpAt });
    const before = steps[jumpAt]!;
    const after = steps[jumpAt + 1]!;
    expect(after.perSecond).toBeLessThan(before.perSecond);
    expect(after.state.reason).toMatch(/^throttled: slow: replica lag \d+\.\d s > 1\.5 s$/);
  });
});

/**
 * Workers slower than the ceiling (no database signal at all): they finish `capacity` batches a second.
 * Late batches reserve start slots at the planned rate, so the due backlog drains only at the gap
 * between the workers' capacity and the plan, and a backlog the plan keeps up with never drains. Each
 * started batch is late by the backlog ahead of it over the rate it is released at.
 */
function simulateWorkers(capacity: number, cycles: number, ceiling = 50): Array<{ perSecond: number; backlog: number; state: ControlState }> {
  const workerConfig = validateConfig({ batchSize: 1_000, duration: DURATION, perSecondOnPeak: ceiling, perSecondOffPeak: ceiling, autotune: { batchSize: false, rate: {} } });
  let state = initialControl();
  let backlog = 0;
  const steps: Array<{ perSecond: number; backlog: number; state: ControlState }> = [];
  for (let cycle = 0; cycle < cycles; cycle++) {
    const perSecond = effectiveConfig({ config: workerConfig, control: state }).perSecondOnPeak;
    const planned = perSecond * DURATION;
    const released = Math.min(capacity, perSecond) * DURATION;
    const started = Math.min(backlog + planned, released);
    const lateS = backlog / Math.max(Math.min(capacity, perSecond), 1e-9);
    backlog = backlog + planned - started;
    steps.push({ perSecond, backlog, state });
    ({ state } = decide(workerConfig.autotune!, state, {
      now: cycle * DURATION * 1000,
      cycle,
      configBatchSize: 1_000,
      plannedPerSecond: perSecond,
      sample: { batches: started, ids: started * 1_000, handlerMs: started * 50, lateMs: started * lateS * 1000, failures: 0 },
      waiting: Math.round(backlog),
      tickMs: 20,
      health: null,
      sinceMs: cycle === 0 ? null : DURATION * 1000,
    }));
  }
  return steps;
}

describe("the closed loop against workers slower than the ceiling", () => {
  it.each([15, 30, 42])("settles around what %i batches/s of workers finish, instead of spiralling down to the floor", (capacity) => {
    const steps = simulateWorkers(capacity, 120);
    const settled = steps.slice(20).map((s) => s.perSecond);
    // A sawtooth just around the workers' capacity: up 5 % of the ceiling a clear cycle while they keep
    // up (the start bucket, not they, holds their backlog back), straight down under it when they fall short.
    expect(mean(settled)).toBeGreaterThan(0.9 * capacity);
    expect(mean(settled)).toBeLessThan(1.12 * capacity);
    expect(Math.min(...settled)).toBeGreaterThan(0.8 * capacity);
    expect(Math.max(...settled)).toBeLessThanOrEqual(1.15 * capacity);
    // Within a few decisions: the first cut goes straight to just under what the workers finished.
    expect(steps[3]!.perSecond).toBeLessThanOrEqual(capacity);
  });
});
