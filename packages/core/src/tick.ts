import { SCAN_LIMIT, MAX_CAS_ROUNDS, type Core } from "./context.js";
import { hold } from "./batch.js";
import { batchJobId, cycleCapacity, cycleJobs, cycleStart, fromStored, holdAfter, planCycle, unplannedRanges } from "./cycle.js";
import { extendRun } from "./extend.js";
import { releaseBudget, steer, steered, type Steering } from "./loop.js";
import type { BackfillDoc, CyclePlan } from "./doc.js";
import { SuperSpreaderError } from "./errors.js";
import { findGaps, mergeRanges } from "./ids.js";
import type { IdRange, JobOutcome, JobState, OutstandingEntry, RangeEntry, TickJobData } from "./ports.js";
import { descendingRanges } from "./spread.js";

/** Outstanding entries looked at per reconciliation pass (more are looked at by the next ticks). */
const RECONCILE_LIMIT = 1_000;
const LIVE: ReadonlySet<JobState> = new Set(["waiting", "delayed", "active"]);

/*
 * A tick is glue: read the run, compare-and-set a plan computed by the pure planner
 * (cycle.ts), enqueue the plan's jobs, compare-and-set the cursor forward. Each step may
 * be repeated after a crash with the same outcome.
 */

/**
 * Starts a run's bucket lets through at once: one second of the rate in whole-second mode (a second's
 * batches are planned at the same instant), one in spread mode (they are planned 1/rate apart).
 */
export function startBurst(perSecond: number, spreadWithinSecond: boolean): number {
  return spreadWithinSecond ? 1 : Math.max(1, Math.ceil(perSecond));
}

/**
 * Enqueues a stored plan's jobs and advances the cursor. Safe to repeat: job ids are deterministic.
 * `tickStartedAt`, from the tick that planned it, gives the closed loop the tick's duration.
 */
export async function finalize(core: Core, version: number, doc: BackfillDoc, plan: CyclePlan, tickStartedAt?: number): Promise<void> {
  const queue = core.needQueue("running a tick");
  const jobs = cycleJobs(doc, plan, { tickAttempts: core.tickAttempts, reconcileAfterMs: core.reconcileAfterMs });
  // A new grid means a new rate in force: the bucket batches take their start tokens from follows it
  // (before any batch of the grid can start). Repeating it after a crash sets the same values.
  if (plan.kind === "work" && plan.pace !== null && plan.pace.tick === 1) {
    const perSecond = Number(plan.perSecond);
    await core.store.setStartRate(doc.name, doc.runId, perSecond, startBurst(perSecond, plan.spreadWithinSecond), core.clock.now());
  }
  // Recorded before they are enqueued: a range enqueued is always outstanding until recorded.
  if (doc.tracking && jobs.outstanding.length > 0) await core.store.addOutstanding(doc.name, doc.runId, jobs.outstanding);
  // The tick goes last: when it exists, every batch before it in this call was stored.
  await queue.enqueue([...jobs.batches, jobs.tick]);
  // Removed after enqueueing and before the cursor moves: a crash in between repeats the
  // enqueue (deduplicated), never drops a deferred range.
  if (plan.requeue.length > 0) await core.store.removeDeferred(doc.name, doc.runId, plan.requeue.map(fromStored));
  const written = await core.write(doc.name, version, {
    ...doc,
    cursor: plan.nextCursor,
    // The cycle started the first span extend queued: it is the current span now. Extensions only
    // append, so the first span is the one the plan took even if one was added since it was stored.
    ...(plan.spanTaken === true ? { floor: plan.floor ?? doc.floor, spans: doc.spans.slice(1) } : {}),
    cycle: plan.cycle + 1,
    pending: null,
    nextTickAt: plan.nextTickAt,
    pace: plan.pace,
    hold: doc.status === "held" ? holdAfter(doc, plan) : doc.hold,
    control: doc.control !== null && tickStartedAt !== undefined ? { ...doc.control, lastTickMs: Math.max(0, Math.round(core.clock.now() - tickStartedAt)) } : doc.control,
  });
  if (written !== null) {
    core.events.emit("cyclePlanned", {
      ...core.base(doc),
      cycle: plan.cycle,
      kind: plan.kind,
      batches: jobs.batches.length,
      requeued: plan.requeue.length,
      perSecond: Number(plan.perSecond),
      onPeak: plan.onPeak,
      late: plan.late,
      beginAt: plan.beginAt,
      nextTickAt: plan.nextTickAt,
    });
  }
}

/** What one reconciliation pass found. */
export interface ReconcileResult {
  /** Entries looked up in the queue. */
  readonly checked: number;
  /** Of those, still in the queue (looked at again later). */
  readonly alive: number;
  /** Reclaimed: enqueued, never recorded, no longer in the queue; now deferred. */
  readonly lost: Array<RangeEntry & { readonly state: JobState }>;
}

/**
 * Looks for ranges the queue lost: outstanding entries of finalised cycles (`cycle <
 * doc.cycle`, so their enqueue has completed) due for a look (`checkAt <= before`), whose
 * jobs the queue no longer holds or gave up on without the runtime seeing it (stalls).
 * Those are moved to the deferred entries, atomically with the check that they are still
 * outstanding, so the next cycles enqueue them again in their first slots, at the rate.
 */
export async function reconcile(core: Core, doc: BackfillDoc, before: number, limit = RECONCILE_LIMIT): Promise<ReconcileResult> {
  const due = await core.store.listOutstanding(doc.name, doc.runId, before, limit);
  const eligible = due.filter((e) => e.cycle < doc.cycle);
  if (eligible.length === 0) return { checked: 0, alive: 0, lost: [] };
  const queue = core.needQueue("reconciling lost ranges");
  const states: JobState[] = [];
  for (let i = 0; i < eligible.length; i += RECONCILE_LIMIT) {
    states.push(...(await queue.lookup(eligible.slice(i, i + RECONCILE_LIMIT).map((e) => batchJobId(doc.name, doc.runId, e.cycle, e)))));
  }
  const alive: OutstandingEntry[] = [];
  const lost: Array<OutstandingEntry & { state: JobState }> = [];
  eligible.forEach((entry, i) => {
    const state = states[i] ?? "missing";
    if (LIVE.has(state)) alive.push(entry);
    else lost.push({ ...entry, state });
  });
  if (alive.length > 0) await core.store.touchOutstanding(doc.name, doc.runId, alive, core.clock.now() + core.reconcileAfterMs);
  const moved = lost.length > 0 ? await core.store.reclaimOutstanding(doc.name, doc.runId, lost) : [];
  const key = (e: RangeEntry) => `${e.beginId}:${e.endId}:${e.cycle}`;
  const movedKeys = new Set(moved.map(key));
  const result = {
    checked: eligible.length,
    alive: alive.length,
    lost: lost.filter((e) => movedKeys.has(key(e))).map(({ beginId, endId, cycle, state }) => ({ beginId, endId, cycle, state })),
  };
  if (result.lost.length > 0) {
    core.events.emit("rangesLost", { ...core.base(doc), ranges: result.lost, source: "queue" });
  }
  return result;
}

/** Splits ranges into pieces of at most `batchSize` ids, highest first. */
export function toBatches(ranges: readonly IdRange[], batchSize: number): IdRange[] {
  const out: IdRange[] = [];
  for (const r of [...ranges].sort((a, b) => (a.endId > b.endId ? -1 : a.endId < b.endId ? 1 : 0))) {
    for (const piece of descendingRanges(r.endId, r.beginId, batchSize, Number.MAX_SAFE_INTEGER)) out.push(piece);
  }
  return out;
}

/**
 * Ranges of the run's planned part (above the cursor) that nothing accounts for: not done,
 * deferred, failed nor outstanding. The sets are read in the order that makes a range
 * moving between them during the reads show up in one of them (outstanding ranges only turn
 * into done, deferred or failed ones; failed ones into deferred ones; done ones stay done).
 * Runs of older versions record no outstanding entries: for them every unrecorded range
 * counts (call it only when nothing is in flight).
 */
export async function orphans(core: Core, doc: BackfillDoc): Promise<{ outstanding: number; ranges: IdRange[] }> {
  const { store } = core;
  const outstanding = doc.tracking ? await store.listOutstanding(doc.name, doc.runId, Number.MAX_SAFE_INTEGER, SCAN_LIMIT) : [];
  const failed = await store.listFailed(doc.name, doc.runId, SCAN_LIMIT);
  const deferred = await store.listDeferred(doc.name, doc.runId, SCAN_LIMIT);
  const done = await store.listDone(doc.name, doc.runId);
  const minId = BigInt(doc.minId);
  const initialId = BigInt(doc.initialId);
  // The planned part: the id space but what is not planned yet (the pending plan's fresh ranges are
  // still in it: below the stored cursor, or in the span the plan takes, still queued in the document).
  if (minId > initialId) return { outstanding: outstanding.length, ranges: [] };
  const covered = mergeRanges([...done, ...failed, ...deferred, ...outstanding, ...(doc.pending?.requeue.map(fromStored) ?? []), ...unplannedRanges(doc)]);
  return { outstanding: outstanding.length, ranges: findGaps(minId, initialId, covered) };
}

/**
 * An exhausted run (cursor below minId, nothing deferred): completed when the ledger covers
 * the id space, failed when failed ranges cover the rest, else still waiting for ranges in
 * flight — or, with nothing in flight, for ranges nothing accounts for, which go back to the
 * deferred entries (a run never sits `running` with nothing left to do).
 */
async function settle(core: Core, version: number, doc: BackfillDoc): Promise<"finished" | "conflict" | "wait" | "requeued"> {
  const { store } = core;
  const minId = BigInt(doc.minId);
  const maxId = BigInt(doc.initialId);
  const done = await store.listDone(doc.name, doc.runId);
  let final: "completed" | "failed" | null = findGaps(minId, maxId, done).length === 0 ? "completed" : null;
  if (final === null) {
    const found = await orphans(core, doc);
    if (found.outstanding > 0) return "wait";
    if (found.ranges.length > 0) {
      if (!doc.tracking) return "wait";
      const pieces = toBatches(found.ranges, doc.config.batchSize);
      for (const piece of pieces) await store.addDeferred(doc.name, doc.runId, { ...piece, cycle: doc.cycle });
      core.events.emit("rangesLost", { ...core.base(doc), ranges: pieces.map((p) => ({ ...p, cycle: doc.cycle, state: "missing" as const })), source: "ledger" });
      return "requeued";
    }
    const failed = await store.listFailed(doc.name, doc.runId, SCAN_LIMIT);
    final = failed.length > 0 ? "failed" : "completed";
  }
  const now = core.clock.now();
  // A completed run finished when its last range was recorded, not when this tick noticed it.
  const lastDoneAt = final === "completed" ? (await store.metrics(doc.name, doc.runId)).lastDoneAt : null;
  const finishedAt = lastDoneAt !== null && lastDoneAt <= now ? lastDoneAt : now;
  const written = await core.write(doc.name, version, { ...doc, status: final, finishedAt, revision: doc.revision + 1 });
  if (written === null) return "conflict";
  await releaseBudget(core, doc);
  core.events.emit("completed", { ...core.base(doc), status: final });
  return "finished";
}

/**
 * The loop's changes, in the audit trail (actor `"autotune"`) and as `tuned` events, once their plan is
 * stored. A crash between the two loses the record, never the change (it is in the stored control state).
 */
async function recordDecisions(core: Core, doc: BackfillDoc, plan: CyclePlan, decisions: Steering["decisions"]): Promise<void> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const d of decisions) {
    const key = d.field === "rate" ? "perSecond" : "batchSize";
    changes[key] = { from: changes[key]?.from ?? d.from, to: d.to };
  }
  const reason = decisions.map((d) => d.reason).join("; ");
  await core.recordChange(doc.name, changes, { actor: "autotune", reason }).catch(() => {});
  for (const d of decisions) {
    core.events.emit("tuned", { ...core.base(doc), field: d.field, from: d.from, to: d.to, reason: d.reason, perSecond: Number(plan.perSecond), batchSize: plan.batchSize });
  }
}

/**
 * A run held by its health indicators, once the hold's time is up: released when they no longer say
 * stop, else held another `health.stopHold`. True when the stored run changed (read it again).
 */
async function reviewHealthHold(core: Core, version: number, doc: BackfillDoc, now: number): Promise<boolean> {
  const held = doc.hold;
  if (held === null || held.nextProbeAt === null || cycleStart(doc, now).beginAt < held.nextProbeAt) return false;
  const reading = await core.health.read(doc.name, core.registry.get(doc.name), doc.config);
  if (reading?.level === "stop") {
    await core.write(doc.name, version, { ...doc, hold: { ...held, reason: `health: ${reading.reason}`, nextProbeAt: now + doc.config.health.stopHold * 1000 } });
    return true;
  }
  const written = await core.write(doc.name, version, { ...doc, status: "running", hold: null, pace: null, nextTickAt: Math.min(doc.nextTickAt, now), revision: doc.revision + 1 });
  if (written === null) return true;
  await core.recordChange(doc.name, { status: { from: "held", to: "running" } }, { actor: "health", reason: reading === null ? "no health indicators" : `health: ${reading.level}: ${reading.reason}` });
  core.events.emit("resumed", { ...core.base(doc), by: "health", heldForMs: now - held.since });
  return true;
}

/** Processes a tick job: plan, enqueue and advance one cycle of a running or held backfill. */
export async function runTick(core: Core, data: TickJobData): Promise<JobOutcome> {
  const { store, clock } = core;
  const tickStartedAt = clock.now();
  let reconciled = false;
  let autoExtended = false;
  for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
    const current = await core.read(data.backfill);
    if (!current) return "stale";
    const { version, doc } = current;
    if (doc.runId !== data.runId || doc.epoch !== data.epoch || (doc.status !== "running" && doc.status !== "held")) return "stale";
    if (doc.pending) {
      await finalize(core, version, doc, doc.pending);
      continue;
    }
    if (doc.cycle !== data.cycle) return "stale";
    const now = clock.now();
    if (doc.tracking && !reconciled) {
      reconciled = true;
      await reconcile(core, doc, now);
    }
    if (doc.status === "held" && doc.hold?.cause === "health") {
      if (await reviewHealthHold(core, version, doc, now)) continue;
    }
    // The closed loop decides the cycle's rate and batch size before it is planned (stored with the plan).
    let steering: Steering = { doc, decisions: [] };
    if (doc.status === "running") {
      const reading = await core.health.read(doc.name, core.registry.get(doc.name), doc.config);
      if (reading?.level === "stop") {
        await hold(core, doc, `health: ${reading.reason}`, null, "health");
        continue;
      }
      if (steered(doc)) steering = await steer(core, doc, now, core.health, cycleStart(doc, now).beginAt);
    }
    const run = steering.doc;
    const capacity = cycleCapacity(run, now);
    const requeue = await store.listDeferred(doc.name, doc.runId, Math.max(1, capacity));
    const exhausted = unplannedRanges(doc).length === 0 && requeue.length === 0;
    if (exhausted && doc.status === "running" && doc.config.autoExtend && !autoExtended) {
      // Catch-up before completing: rows inserted above the id space since it was read.
      autoExtended = true;
      const extension = await extendRun(core, doc.name, { actor: "autoExtend" });
      if (extension.extended) continue;
    }
    if (exhausted && doc.status === "held") {
      // Nothing left to probe with: the hold has nothing to protect. Release it and settle the run.
      const { outstanding } = await orphans(core, doc);
      if (outstanding === 0) {
        await core.write(doc.name, version, { ...doc, status: "running", hold: null, revision: doc.revision + 1 });
        continue;
      }
    }
    if (exhausted && doc.status === "running") {
      const outcome = await settle(core, version, doc);
      if (outcome === "finished") return "finished";
      if (outcome === "conflict" || outcome === "requeued") continue;
    }
    const plan = planCycle(run, requeue, now, { tickAttempts: core.tickAttempts });
    const next: BackfillDoc = { ...run, pending: plan };
    const written = await core.write(doc.name, version, next);
    if (written === null) continue;
    if (steering.decisions.length > 0) await recordDecisions(core, next, plan, steering.decisions);
    await finalize(core, written, next, plan, tickStartedAt);
    return "planned";
  }
  throw new SuperSpreaderError("CONFLICT", `backfill "${data.backfill}": tick ${data.cycle} lost ${MAX_CAS_ROUNDS} compare-and-set rounds`);
}
