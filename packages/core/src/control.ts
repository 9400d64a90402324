/**
 * The closed loop (issue #9), as pure functions: what the runtime decides once per cycle from what it
 * observed, and why. Two loops on two time scales:
 *
 * - **Batch size** (a setpoint servo, as pt-osc's chunk-time and GitLab's optimizer): the handler's cost
 *   per id, smoothed with an exponential average, gives the batch size that takes `targetMs`; nothing moves
 *   inside a dead band around the target, growth is capped at ×1.2 a cycle, a cycle with failures halves it,
 *   and it stays within `[min, max]`.
 * - **Rate** (AIMD with a memory of the lowest bad rate, as Vitess's throttler): the configured rates are
 *   ceilings; a congestion signal (a health indicator saying slow, a slow tick, batches starting late or a
 *   queue backlog beyond what the plan put there while workers finish less than the plan) multiplies the
 *   share of the ceiling by 0.85 (or, for workers that fall short, sets it just under what they finished)
 *   and remembers that rate as bad for a while; workers that keep up with the rate while carrying a
 *   backlog (held back by the start bucket, not by them) count as clear; a clear cycle adds 5 % of the ceiling back, but never past the lowest bad rate
 *   remembered. AIMD converges from any start and shares capacity fairly between backfills that see the same
 *   signal (Chiu and Jain); the memory keeps the sawtooth just under the knee instead of around it.
 *
 * Every change comes with its inputs and a reason, recorded like an operator's config change.
 */
import type { AutotunePolicy } from "./config.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import type { HealthReading } from "./ports.js";

/** The loop's state, stored with the run. */
export interface ControlState {
  /** The batch size in force (null: the config's). */
  readonly batchSize: number | null;
  /** The share of the ceiling in force, 0 < factor ≤ 1. */
  readonly factor: number;
  /** Smoothed handler ms per id, or null before the first sample. */
  readonly msPerId: number | null;
  /** The lowest share found bad, and when (epoch ms): approached from below while recent, probed above gently after. */
  readonly lowestBad: { readonly factor: number; readonly at: number } | null;
  /** No increase before this cycle (a cooldown after a decrease). */
  readonly holdUntilCycle: number;
  /** Whether the last decision saw congestion: only its onset marks a rate as bad (not the cycles that drain it). */
  readonly congested?: boolean;
  /** What the loop did last, for `status` ("throttled: replica lag 2.3 s > 1.5 s"). */
  readonly reason: string | null;
  /** Values an operator pinned: the loop does not move them. */
  readonly pins: { readonly batchSize: number | null; readonly perSecond: number | null };
  /** The metrics seen at the last decision, to take the next one on what happened since. */
  readonly seen: SampleMark | null;
  /** Deadline mode: the share of the ceilings that finishes by `finishBy`, or null without a deadline. */
  readonly deadlineShare: number | null;
  /** Deadline mode: whether the ceilings can still make it, and what would. */
  readonly deadline: { readonly feasible: boolean; readonly finishAt: number | null; readonly needShare: number | null } | null;
  /** The most batches per second the shared budget leaves this backfill, or null without a budget. */
  readonly budgetCap: number | null;
  /** How long the last tick took (ms), for the next decision. */
  readonly lastTickMs: number | null;
  /** When the last decision was taken (epoch ms), to turn the next sample into rates. Absent before it. */
  readonly decidedAt?: number;
}

/** Cumulative counters read from the run's metrics (the current and previous minute buckets). */
export interface SampleMark {
  readonly minute: number;
  readonly batches: number;
  readonly ids: number;
  readonly handlerMs: number;
  readonly lateMs: number;
  readonly failures: number;
}

/** What happened since the last decision. */
export interface Sample {
  readonly batches: number;
  readonly ids: number;
  /** Sum of handler times (ms). */
  readonly handlerMs: number;
  /** Sum of start − planned (ms). */
  readonly lateMs: number;
  readonly failures: number;
}

/** Everything one decision looks at. */
export interface ControlInputs {
  readonly now: number;
  readonly cycle: number;
  /** The config's batch size (the start, and the value when batch-size tuning is off). */
  readonly configBatchSize: number;
  /** The batches per second the last cycle planned (0 when none). */
  readonly plannedPerSecond: number;
  readonly sample: Sample;
  /** Jobs waiting (due, not started) in the queue, or null when not known. */
  readonly waiting: number | null;
  /** How long the previous tick took (ms), or null. */
  readonly tickMs: number | null;
  /** The worst health reading, or null without indicators. */
  readonly health: HealthReading | null;
  /** Time the sample covers (ms since the last decision), or null when not known (the first decision). */
  readonly sinceMs?: number | null;
}

/** One change the loop made. */
export interface ControlDecision {
  readonly field: "batchSize" | "rate";
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

/** The state a run starts with. */
export function initialControl(): ControlState {
  return {
    batchSize: null,
    factor: 1,
    msPerId: null,
    lowestBad: null,
    holdUntilCycle: 0,
    reason: null,
    pins: { batchSize: null, perSecond: null },
    seen: null,
    deadlineShare: null,
    deadline: null,
    budgetCap: null,
    lastTickMs: null,
  };
}

/** Exponential average weight of the newest sample (GitLab uses 0.4). */
const ALPHA = 0.4;
/** The dead band around the target batch time: no change while the smoothed time is within it. */
const BAND: readonly [number, number] = [0.85, 1.1];
const GROWTH_CAP = 1.2;
const DECREASE = 0.85;
const INCREASE = 0.05;
/** Above a rate found bad longer ago than the memory, increases are this share of the rate (gentle probing). */
const PROBE = 0.02;
/** A rate found bad is remembered this long (ms), then forgotten (conditions change). */
const BAD_MEMORY_MS = 180_000;
/** Cycles without an increase after a decrease: the time for its effect to show. */
const COOLDOWN_CYCLES = 2;
/** Samples below this many batches say too little to move the batch size. */
const MIN_BATCHES = 3;

/** The difference of two cumulative marks. */
export function sampleBetween(before: SampleMark | null, now: SampleMark): Sample {
  if (before === null || now.batches < before.batches || now.failures < before.failures) {
    return { batches: now.batches, ids: now.ids, handlerMs: now.handlerMs, lateMs: now.lateMs, failures: now.failures };
  }
  return {
    batches: now.batches - before.batches,
    ids: now.ids - before.ids,
    handlerMs: now.handlerMs - before.handlerMs,
    lateMs: now.lateMs - before.lateMs,
    failures: now.failures - before.failures,
  };
}

/**
 * Workers that finish at least this share of the planned batches keep up with the rate: a backlog they
 * carry (late starts, due jobs waiting) is held back by the start bucket, which releases late batches at
 * the planned rate, not by them. Lowering the rate would not drain it (and would spiral down to the
 * floor); the rate counts as clear, so it rises until the workers fall short.
 */
const KEEP_UP = 0.9;
/** Lowered for workers that fall short, the rate goes to this share of what they finished. */
const BELOW_CAPACITY = 0.95;

/**
 * Why the rate should come down, or null when nothing says so. `shortfall` (for workers that fall
 * short of the plan) is the share of the planned batches they finished; `backlog` says workers keep up
 * with the rate but carry a backlog (hold, do not lower).
 */
function congestion(policy: NonNullable<AutotunePolicy["rate"]>, inputs: ControlInputs): { why: string; shortfall?: number; backlog?: true } | null {
  const { sample, health } = inputs;
  if (health !== null && health.level !== "ok") return { why: `${health.level === "stop" ? "stop" : "slow"}: ${health.reason}` };
  if (inputs.tickMs !== null && inputs.tickMs > policy.tickMs) return { why: `the tick took ${inputs.tickMs} ms (> ${policy.tickMs} ms)` };
  let lag: string | null = null;
  if (sample.batches > 0) {
    const late = sample.lateMs / sample.batches;
    if (late > policy.latenessMs) lag = `batches start ${(late / 1000).toFixed(1)} s late on average (> ${(policy.latenessMs / 1000).toFixed(1)} s)`;
  }
  // More due jobs waiting than two seconds of the rate: the workers are behind the plan.
  if (lag === null && inputs.waiting !== null && inputs.plannedPerSecond > 0 && inputs.waiting > Math.max(10, inputs.plannedPerSecond * 2)) {
    lag = `${inputs.waiting} jobs are due and waiting (> 2 s of the rate)`;
  }
  if (lag === null) return null;
  // Lateness and a waiting queue say the workers are behind, not by how much: what they finished does.
  const since = inputs.sinceMs ?? null;
  if (since === null || since <= 0 || inputs.plannedPerSecond <= 0) return { why: `${lag}: workers cannot keep up` };
  const finishedPerSecond = sample.batches / (since / 1000);
  const share = finishedPerSecond / inputs.plannedPerSecond;
  if (share >= KEEP_UP) return { why: `${lag}, but workers keep up with the rate (${finishedPerSecond.toFixed(1)}/s finished)`, backlog: true };
  return { why: `${lag}: workers finish ${finishedPerSecond.toFixed(1)} batches/s of the ${inputs.plannedPerSecond} planned`, shortfall: share };
}

/**
 * One decision of the loop: the new state and the changes it made, each with its reason.
 *
 * @example
 * ```ts
 * const { state, decisions } = decide(policy, run.control, inputs);
 * for (const d of decisions) console.log(`${d.field} ${d.from} → ${d.to}: ${d.reason}`);
 * ```
 */
export function decide(policy: AutotunePolicy, state: ControlState, inputs: ControlInputs): { state: ControlState; decisions: ControlDecision[] } {
  if (!Number.isFinite(inputs.now)) throw new SuperSpreaderError("INVALID_ARGUMENT", `now must be epoch ms, got ${describeValue(inputs.now)}`, { field: "now" });
  const decisions: ControlDecision[] = [];
  let next: ControlState = state;
  const { sample } = inputs;

  // Batch size: the size that takes targetMs at the smoothed cost per id.
  const sizing = policy.batchSize;
  if (sizing !== null && state.pins.batchSize === null && sample.batches >= MIN_BATCHES && sample.ids > 0) {
    const cost = sample.handlerMs / sample.ids;
    const msPerId = state.msPerId === null ? cost : ALPHA * cost + (1 - ALPHA) * state.msPerId;
    const current = state.batchSize ?? inputs.configBatchSize;
    const expectedMs = msPerId * current;
    let size = current;
    let reason = "";
    if (sample.failures > 0) {
      size = Math.max(sizing.min, Math.floor(current / 2));
      reason = `${sample.failures} failed attempts since the last cycle`;
    } else if (expectedMs > BAND[1] * sizing.targetMs || expectedMs < BAND[0] * sizing.targetMs) {
      const ideal = sizing.targetMs / Math.max(msPerId, 1e-9);
      size = Math.round(Math.min(ideal, current * GROWTH_CAP));
      size = Math.min(sizing.max, Math.max(sizing.min, size, 1));
      reason = `batches take ${expectedMs.toFixed(0)} ms at ${(msPerId * 1000).toFixed(1)} µs per id, target ${sizing.targetMs} ms`;
    }
    next = { ...next, msPerId };
    if (size !== current) {
      decisions.push({ field: "batchSize", from: current, to: size, reason });
      next = { ...next, batchSize: size };
    }
  }

  // Rate: multiplicative decrease on congestion, additive increase when clear.
  const rating = policy.rate;
  if (rating !== null && state.pins.perSecond === null) {
    const lowestBad = state.lowestBad !== null && inputs.now - state.lowestBad.at < BAD_MEMORY_MS ? state.lowestBad : null;
    const signal = congestion(rating, inputs);
    const why = signal?.why ?? null;
    let factor = state.factor;
    if (why !== null && signal?.backlog !== true && inputs.cycle < state.holdUntilCycle && inputs.health?.level !== "stop") {
      // One decrease per cooldown (as TCP's one per round trip): the last one has not shown its effect
      // yet (a replica's lag drains only after the rate is under the knee). Hold the rate meanwhile.
      next = { ...next, congested: true, reason: `throttled: ${why}` };
    } else if (why !== null && signal?.backlog !== true) {
      // Workers that fall short go to just under what they finished, in one step: lowering by 0.85 a
      // cycle would take many cycles to reach their capacity, each adding to the backlog.
      const cut = signal?.shortfall === undefined ? DECREASE : Math.min(DECREASE, BELOW_CAPACITY * signal.shortfall);
      factor = Math.max(rating.minShare, state.factor * cut);
      // The rate at which congestion began is the one found bad; the decreases while it lasts only drain it.
      const bad = state.congested === true && state.lowestBad !== null ? state.lowestBad : { factor: Math.min(state.factor, lowestBad?.factor ?? 1), at: inputs.now };
      next = { ...next, lowestBad: { factor: bad.factor, at: inputs.now }, congested: true, holdUntilCycle: inputs.cycle + COOLDOWN_CYCLES, reason: `throttled: ${why}` };
      if (factor !== state.factor) decisions.push({ field: "rate", from: state.factor, to: factor, reason: `throttled: ${why}` });
    } else {
      next = { ...next, congested: false };
      if (inputs.cycle >= state.holdUntilCycle && state.factor < 1 && (sample.batches > 0 || inputs.plannedPerSecond === 0)) {
        let reason: string;
        if (state.lowestBad === null) {
          factor = Math.min(1, state.factor + INCREASE);
          reason = "clear: rate back up toward the ceiling";
        } else if (lowestBad !== null) {
          // Never past the lowest rate found bad recently: approach it, halving the distance.
          factor = Math.min(1, state.factor + INCREASE, Math.max(state.factor, state.factor + (lowestBad.factor - state.factor) / 2));
          reason = `clear: rate up, below the ${Math.round(lowestBad.factor * 100)}% found too fast recently`;
        } else {
          // A rate found bad a while ago: conditions may have changed, so probe above it, gently (2 % a cycle).
          factor = Math.min(1, state.factor + Math.min(INCREASE, state.factor * PROBE));
          reason = `clear: probing above the ${Math.round(state.lowestBad.factor * 100)}% found too fast ${Math.round((inputs.now - state.lowestBad.at) / 60_000)} min ago`;
        }
        if (signal?.backlog === true) reason = `${reason} (${signal.why})`;
        if (factor > state.factor + 1e-9) {
          decisions.push({ field: "rate", from: state.factor, to: factor, reason });
          next = { ...next, reason: factor >= 1 ? null : reason };
        }
        // A remembered rate left far behind says nothing any more.
        if (state.lowestBad !== null && (factor >= 1 || factor > state.lowestBad.factor * 1.5)) next = { ...next, lowestBad: null };
      }
    }
    next = { ...next, factor: round(factor) };
  }
  return { state: next, decisions };
}

/** Shares are kept to 4 decimals, so rates stay short exact decimals. */
export function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
