import { validateStoredConfig, type BackfillConfig, type BackfillConfigInput } from "./config.js";
import { SuperSpreaderError } from "./errors.js";
import type { Core, Definition } from "./context.js";
import { decide, initialControl, round, type ControlDecision, type ControlState, type Sample, type SampleMark } from "./control.js";
import type { BackfillDoc, StoredPace } from "./doc.js";
import { describeError } from "./batch.js";
import { walk } from "./estimate.js";
import { idsUnplanned } from "./cycle.js";
import type { HealthReading, RunMetrics } from "./ports.js";
import { effectiveConfig, effectiveRate, under } from "./effective.js";

/*
 * The closed loop's glue (issue #9): what a tick reads before it plans (samples of the batches since the
 * last decision, the queue's backlog, the health of the database, the deadline, the shared budget), the
 * pure decision (control.ts), and the rate and batch size the planner then uses.
 */

/* ---------------------------------------------------------------- samples */

const ZERO: Sample = { batches: 0, ids: 0, handlerMs: 0, lateMs: 0, failures: 0 };

/** What the run's minute buckets recorded since `mark`, and the mark to take the next sample from. */
export function sampleSince(recent: RunMetrics["recent"], mark: SampleMark | null): { sample: Sample; mark: SampleMark | null } {
  if (recent.length === 0) return { sample: ZERO, mark };
  const sample = { ...ZERO };
  for (const b of recent) {
    if (mark !== null && b.minute < mark.minute) continue;
    const same = mark !== null && b.minute === mark.minute;
    sample.batches += Math.max(0, b.batches - (same ? mark.batches : 0));
    sample.ids += Math.max(0, Number(b.ids) - (same ? mark.ids : 0));
    sample.handlerMs += Math.max(0, b.handlerMs - (same ? mark.handlerMs : 0));
    sample.lateMs += Math.max(0, b.lateMs - (same ? mark.lateMs : 0));
    sample.failures += Math.max(0, b.failures - (same ? mark.failures : 0));
  }
  const last = recent[recent.length - 1] as RunMetrics["recent"][number];
  return { sample, mark: { minute: last.minute, batches: last.batches, ids: Number(last.ids), handlerMs: last.handlerMs, lateMs: last.lateMs, failures: last.failures } };
}

/* ----------------------------------------------------------------- health */

interface Cached {
  reading: HealthReading | null;
  /** When the last poll (successful or not) finished. */
  at: number;
  /** When the last successful poll finished. */
  okAt: number;
  polling: Promise<void> | null;
}

/**
 * Polls a backfill's health indicators in this process, at most once per `interval`, a poll at a time,
 * each given `timeout`; the worst reading wins. A signal unreadable for `failClosedAfter` reads as `stop`.
 * Batches and ticks ask it before they start and go by the last reading while the next poll runs, unless
 * that reading is older than two intervals plus the timeout (or there is none yet): a threshold crossed
 * stops new batches within that, and a slow indicator never holds batches up.
 */
export class HealthMonitor {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly now: () => number) {}

  async read(name: string, definition: Definition | undefined, config: BackfillConfig): Promise<HealthReading | null> {
    const indicators = definition?.health ?? [];
    if (indicators.length === 0) return null;
    const policy = config.health;
    const now = this.now();
    let entry = this.cache.get(name);
    if (!entry) {
      entry = { reading: null, at: 0, okAt: now, polling: null };
      this.cache.set(name, entry);
    }
    const age = now - entry.at;
    if (age >= policy.interval * 1000) {
      entry.polling ??= this.poll(name, entry, indicators, policy.timeout * 1000).finally(() => {
        (entry as Cached).polling = null;
      });
      // Stale while the poll runs: a reading at most one more interval (plus the poll's timeout) old is
      // served as it is, so batches never queue behind a slow indicator (one that samples for most of an
      // interval held every batch for it). Older than that, or before the first reading, they wait for it.
      if (entry.reading === null || age >= (2 * policy.interval + policy.timeout) * 1000) await entry.polling;
    }
    if (this.now() - entry.okAt > policy.failClosedAfter * 1000) {
      return { level: "stop", reason: `the health signal could not be read for ${Math.round((this.now() - entry.okAt) / 1000)} s (${entry.reading?.reason ?? "no reading yet"})`, value: null };
    }
    return entry.reading;
  }

  private async poll(name: string, entry: Cached, indicators: NonNullable<Definition["health"]>, timeoutMs: number): Promise<void> {
    const readings = await Promise.all(
      indicators.map(async (indicator): Promise<HealthReading | Error> => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(new Error(`the health check took longer than ${timeoutMs} ms`)), timeoutMs);
        try {
          return await Promise.race([
            indicator({ backfill: name, signal: controller.signal }),
            new Promise<never>((_, reject) => controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true })),
          ]);
        } catch (error) {
          return error instanceof Error ? error : new Error(String(error));
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const now = this.now();
    entry.at = now;
    const failed = readings.filter((r): r is Error => r instanceof Error);
    const good = readings.filter((r): r is HealthReading => !(r instanceof Error));
    if (failed.length === 0) entry.okAt = now;
    const order = { ok: 0, slow: 1, stop: 2 } as const;
    const worst = good.sort((a, b) => order[b.level] - order[a.level])[0] ?? null;
    entry.reading =
      failed.length > 0
        ? { level: worst?.level === "stop" ? "stop" : (worst?.level ?? "ok"), reason: `${worst && worst.level !== "ok" ? `${worst.reason}; ` : ""}unreadable: ${describeError(failed[0]).split("\n")[0]}`, value: worst?.value ?? null }
        : worst;
  }
}

/* ----------------------------------------------------------------- deadline */

/** `share` of the ceilings at `batchSize` (as effectiveConfig puts them, 4 significant digits), for estimates; `share` may exceed 1. */
function scaled(config: BackfillConfig, share: number, batchSize: number): BackfillConfig {
  const sizing = Math.min(1, config.batchSize / batchSize);
  const scale = (r: number) => under(r * sizing * share, share > 1 ? Number.POSITIVE_INFINITY : r);
  return { ...config, batchSize, perSecondOnPeak: scale(config.perSecondOnPeak), perSecondOffPeak: scale(config.perSecondOffPeak) };
}

/** How long before `finishBy` deadline mode aims the last batch (at most one cycle). */
export const DEADLINE_MARGIN_MS = 60_000;

/**
 * Deadline mode: the smallest share of the ceilings that finishes the remaining work by `finishBy`
 * (searched through the calendar with the estimate's walk, from the grid in force), and whether the
 * ceilings can at all; when they cannot, the share above 1 that would. `hint`, the share found last
 * cycle, narrows the search to around it.
 */
export function deadlineShare(
  config: BackfillConfig,
  from: number,
  batchesLeft: { idsRemaining: bigint; requeued: readonly { beginId: bigint; endId: bigint }[] },
  batchSize: number = config.batchSize,
  pace: StoredPace | null = null,
  hint: number | null = null,
): { share: number; feasible: boolean; finishAt: number | null; needShare: number | null } {
  // The last batch is aimed a minute (or a cycle, when shorter) before the deadline: time for it to run,
  // and for starts the rate bucket spaces a little later than the grid's whole-second slots.
  const finishBy = (config.finishBy as number) - Math.min(DEADLINE_MARGIN_MS, Math.round(config.duration * 1000));
  const size = BigInt(batchSize);
  const batches = (batchesLeft.idsRemaining + size - 1n) / size + BigInt(batchesLeft.requeued.length);
  const finishAt = (share: number): number | null => {
    try {
      return walk(scaled(config, share, batchSize), from, batches, pace).finishAt;
    } catch {
      return null; // a share whose cycles exceed the per-cycle cap
    }
  };
  const meets = (share: number) => {
    const at = finishAt(share);
    return at !== null && at <= finishBy;
  };
  /** The smallest share in (lo, hi] that meets the deadline, given that hi does and lo does not. */
  const bisect = (lo: number, hi: number): number => {
    while (hi - lo > hi * 1e-6) {
      const mid = (lo + hi) / 2;
      if (meets(mid)) hi = mid;
      else lo = mid;
    }
    return hi;
  };
  const atCeiling = finishAt(1);
  if (atCeiling === null || atCeiling > finishBy) {
    // What would make it: the share above 1, searched up to 1,000 × the ceilings.
    let hi = 2;
    while (hi <= 1_000 && !meets(hi)) hi *= 2;
    if (hi > 1_000) return { share: 1, feasible: false, finishAt: atCeiling, needShare: null };
    return { share: 1, feasible: false, finishAt: atCeiling, needShare: Math.ceil(bisect(hi / 2, hi) * 1000) / 1000 };
  }
  // Last cycle's share is usually within a few per cent of this one's.
  let lo = 0;
  let hi = 1;
  if (hint !== null && hint > 0 && hint < 1) {
    const up = Math.min(1, hint * 1.02);
    const down = hint / 1.02;
    if (meets(up) && !meets(down)) [lo, hi] = [down, up];
  }
  const share = Math.min(1, bisect(lo, hi));
  return { share, feasible: true, finishAt: finishAt(share), needShare: null };
}

/* ------------------------------------------------------------------- steer */

/** What one tick decided, to record after its plan is stored. */
export interface Steering {
  readonly doc: BackfillDoc;
  readonly decisions: ControlDecision[];
}

/** Whether anything steers the run: the loop, a deadline, a budget or a pin. */
export function steered(doc: Pick<BackfillDoc, "config" | "control">): boolean {
  const { config } = doc;
  return config.autotune !== null || config.finishBy !== null || config.budget !== null || doc.control !== null;
}

/** Ids not planned yet (below the cursor, and spans `extend` queued) and the deferred ranges, for deadline estimates. */
async function remaining(core: Core, doc: BackfillDoc): Promise<{ idsRemaining: bigint; requeued: readonly { beginId: bigint; endId: bigint }[] }> {
  const requeued = await core.store.listDeferred(doc.name, doc.runId, 100_000);
  return { idsRemaining: idsUnplanned(doc), requeued };
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(".000Z", "Z");

/**
 * One decision of the closed loop, before a cycle starting at `beginAt` is planned: the run's new
 * control state (stored with the plan, in the same compare-and-set, so the cycle's rate and batch size
 * are part of its stored plan and a crash repeats the same cycle) and what changed, with reasons.
 */
export async function steer(core: Core, doc: BackfillDoc, now: number, monitor: HealthMonitor, beginAt: number): Promise<Steering> {
  if (!steered(doc)) return { doc, decisions: [] };
  const config = doc.config;
  let state: ControlState = doc.control ?? initialControl();
  const decisions: ControlDecision[] = [];

  if (config.autotune !== null) {
    const metrics = await core.store.metrics(doc.name, doc.runId);
    const { sample, mark } = sampleSince(metrics.recent, state.seen);
    const waiting = config.autotune.rate && core.queue ? (await core.queue.counts()).waiting : null;
    const health = await monitor.read(doc.name, core.registry.get(doc.name), config);
    const decided = decide(config.autotune, state, {
      now,
      cycle: doc.cycle,
      configBatchSize: config.batchSize,
      plannedPerSecond: doc.pace === null ? 0 : Number(doc.pace.perSecond),
      sample,
      waiting,
      tickMs: state.lastTickMs,
      health,
      sinceMs: state.decidedAt === undefined ? null : now - state.decidedAt,
    });
    const rateBefore = effectiveRate({ config, control: state }, beginAt).perSecond;
    const rateAfter = effectiveRate({ config, control: decided.state }, beginAt).perSecond;
    // The loop decides shares of the ceiling; operators read rates.
    for (const d of decided.decisions) decisions.push(d.field === "rate" ? { ...d, from: rateBefore, to: rateAfter } : d);
    state = { ...decided.state, seen: mark, decidedAt: now };
  }

  if (config.finishBy !== null) {
    const finishBy = config.finishBy;
    const result = deadlineShare(config, beginAt, await remaining(core, doc), effectiveConfig({ config, control: state }).batchSize, doc.pace, state.deadlineShare);
    const before = state.deadlineShare;
    const next = { ...state, deadlineShare: result.share, deadline: { feasible: result.feasible, finishAt: result.finishAt, needShare: result.needShare } };
    // Re-derived every cycle; recorded when it moves by 1 % or more, so the trail keeps the operators' changes.
    if (before === null || Math.abs(result.share - before) >= 0.01 * before || state.deadline?.feasible !== result.feasible) {
      decisions.push({
        field: "rate",
        from: effectiveRate({ config, control: state }, beginAt).perSecond,
        to: effectiveRate({ config, control: next }, beginAt).perSecond,
        reason: result.feasible
          ? `deadline ${iso(finishBy)}: ${Math.round(result.share * 1000) / 10}% of the configured rates finishes by then`
          : `deadline ${iso(finishBy)} cannot be met at the configured rates (they finish ${result.finishAt === null ? "never" : iso(result.finishAt)})${result.needShare === null ? "" : `: ${result.needShare}× them would`}`,
      });
    }
    state = next;
  }

  if (config.budget !== null) {
    const budget = config.budget;
    const want = effectiveRate({ config, control: { ...state, budgetCap: null } }, beginAt).perSecond;
    const { cap, members } = await core.store.claimBudget(budget.key, doc.name, { perSecond: budget.perSecond, weight: budget.weight, want, ttlMs: budgetTtlMs(config) }, now);
    const next = { ...state, budgetCap: cap };
    const from = effectiveRate({ config, control: state }, beginAt).perSecond;
    const to = effectiveRate({ config, control: next }, beginAt).perSecond;
    if (from !== to) {
      decisions.push({
        field: "rate",
        from,
        to,
        reason: `budget "${budget.key}": ${members.length} backfill${members.length === 1 ? "" : "s"} share ${budget.perSecond}/s (${members.map((m) => `${m.member} ${m.cap}/s`).join(", ")})`,
      });
    }
    state = next;
  }
  return { doc: { ...doc, control: state }, decisions };
}

/** How long a budget member that stopped claiming keeps its share: three cycles, at least a minute. */
export function budgetTtlMs(config: BackfillConfig): number {
  return Math.max(60_000, Math.ceil(3 * config.duration * 1000));
}

/**
 * Refuses a deadline the configured rates cannot meet, before anything is written: INVALID_CONFIG on
 * `finishBy`, saying when the run would finish and what rates would make it.
 */
export function checkDeadline(config: BackfillConfig, from: number, left: { idsRemaining: bigint; requeued: readonly { beginId: bigint; endId: bigint }[] }): void {
  if (config.finishBy === null) return;
  const result = deadlineShare(config, from, left);
  if (result.feasible) return;
  const finish = result.finishAt === null ? "never (no rate in force in any window)" : iso(result.finishAt);
  const need =
    result.needShare === null
      ? "no rate up to 1,000× the configured ones does; choose a later deadline"
      : `perSecondOnPeak ${Math.ceil(config.perSecondOnPeak * result.needShare * 1000) / 1000} and perSecondOffPeak ${Math.ceil(config.perSecondOffPeak * result.needShare * 1000) / 1000} (${result.needShare}× the configured rates) would, or a later deadline`;
  throw new SuperSpreaderError(
    "INVALID_CONFIG",
    `finishBy ${iso(config.finishBy)} cannot be met: at perSecondOnPeak ${config.perSecondOnPeak} and perSecondOffPeak ${config.perSecondOffPeak} the run finishes ${finish}; ${need}`,
    { field: "finishBy" },
  );
}

/** Options of {@link planDeadline}. */
export interface PlanDeadlineOptions {
  /** The backfill's config; its `finishBy` is the deadline unless `finishBy` is given. */
  readonly config: BackfillConfig | BackfillConfigInput;
  /** A deadline to try instead of the config's (ISO instant or epoch ms). */
  readonly finishBy?: string | number;
  /** When the next cycle starts (epoch ms). */
  readonly from: number;
  /** Fresh ids not planned yet (`cursor - minId + 1`). */
  readonly idsRemaining: bigint;
  /** Deferred ranges still to enqueue again. */
  readonly requeued?: readonly { beginId: bigint; endId: bigint }[];
  /** The run's stored grid (`status` does not expose it; omit for a preview). */
  readonly grid?: StoredPace | null;
}

/** What {@link planDeadline} found. */
export interface DeadlinePlan {
  readonly finishBy: number;
  /** Whether the configured rates finish by then. */
  readonly feasible: boolean;
  /** The share of the configured rates deadline mode would run at (1 when infeasible). */
  readonly share: number;
  /** When the run finishes at that share (the configured rates when infeasible), or null for never. */
  readonly finishAt: number | null;
  /** When infeasible: the rates that would make it, or null when no rate up to 1,000× does. */
  readonly needs: { readonly perSecondOnPeak: number; readonly perSecondOffPeak: number } | null;
}

/**
 * Deadline mode's arithmetic, for tools: whether a run with `idsRemaining` left finishes by a deadline
 * at its configured rates, the share of them deadline mode would use, and otherwise what rates would
 * make it. The runtime does the same every cycle for a backfill with `finishBy`.
 *
 * @example
 * ```ts
 * const s = await spreader.status("reencrypt");
 * planDeadline({ config: s.config, finishBy: "2026-12-24T00:00:00Z", from: Date.now(), idsRemaining: s.cursor - s.minId + 1n });
 * // { feasible: false, needs: { perSecondOnPeak: 6.9, perSecondOffPeak: 17.25 }, … }
 * ```
 */
export function planDeadline(options: PlanDeadlineOptions): DeadlinePlan {
  const config = validateStoredConfig({ ...options.config, ...(options.finishBy === undefined ? {} : { finishBy: options.finishBy }) });
  if (config.finishBy === null) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", "finishBy is needed: the config has none and none was given", { field: "finishBy" });
  }
  if (typeof options.idsRemaining !== "bigint" || options.idsRemaining < 0n) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `idsRemaining must be a bigint ≥ 0, got ${String(options.idsRemaining)}`, { field: "idsRemaining" });
  }
  if (typeof options.from !== "number" || !Number.isFinite(options.from)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `from must be epoch ms, got ${String(options.from)}`, { field: "from" });
  }
  const result = deadlineShare(config, options.from, { idsRemaining: options.idsRemaining, requeued: options.requeued ?? [] }, config.batchSize, options.grid ?? null);
  const need = result.needShare;
  return {
    finishBy: config.finishBy,
    feasible: result.feasible,
    share: result.share,
    finishAt: result.finishAt,
    needs: need === null ? null : { perSecondOnPeak: Math.ceil(config.perSecondOnPeak * need * 1000) / 1000, perSecondOffPeak: Math.ceil(config.perSecondOffPeak * need * 1000) / 1000 },
  };
}

/**
 * Gives a run's share of its budget back (a claim wanting 0), when it stops planning batches: paused,
 * held, cancelled or finished. Best effort: a claim that is not renewed lapses after its ttl anyway.
 */
export async function releaseBudget(core: Core, doc: Pick<BackfillDoc, "name" | "config">): Promise<void> {
  const budget = doc.config.budget;
  if (budget === null) return;
  await core.store
    .claimBudget(budget.key, doc.name, { perSecond: budget.perSecond, weight: budget.weight, want: 0, ttlMs: budgetTtlMs(doc.config) }, core.clock.now())
    .catch(() => {});
}
