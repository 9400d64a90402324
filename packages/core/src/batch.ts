import { systemClock } from "./clock.js";
import type { Core } from "./context.js";
import type { BackfillDoc, HoldState } from "./doc.js";
import { SuperSpreaderError } from "./errors.js";
import { releaseBudget } from "./loop.js";
import { formatRange } from "./ids.js";
import type { BatchJobData, BatchTiming, FailureCounts, JobContext, JobOutcome, RangeEntry, RangeRun } from "./ports.js";

/** A batch starting at most this long after its planned run time is on time: it takes no start slot (see runBatch). */
export const ON_TIME_MS = 1_000;
/** When a run is held, ranges that failed for good this long before are queued again (the error-rate window). */
const HOLD_LOOKBACK_MS = 120_000;
/** Causes followed when an error is recorded. */
const MAX_CAUSES = 5;

/**
 * A handler's result as the JSON the store keeps, or null when nothing is collected (output off, or the
 * handler returned undefined). Bigints become decimal strings, as ids do everywhere. Throws, failing the
 * attempt, for a result with no JSON form or one above `output.maxEntryBytes`.
 */
export function collectedOutput(doc: BackfillDoc, range: RangeEntry, result: unknown): string | null {
  const policy = doc.config.output;
  if (policy === null || result === undefined) return null;
  const what = `backfill "${doc.name}": the handler's result for ${formatRange(range)}`;
  let json: string | undefined;
  try {
    json = JSON.stringify(result, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  } catch (error) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${what} has no JSON form (${(error as Error).message}): return plain data (numbers, strings, arrays, objects)`, {
      field: "result",
      cause: error,
    });
  }
  if (json === undefined) throw new SuperSpreaderError("INVALID_ARGUMENT", `${what} is a ${typeof result}, which has no JSON form: return plain data`, { field: "result" });
  const bytes = new TextEncoder().encode(json).length;
  if (bytes > policy.maxEntryBytes) {
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${what} is ${bytes} bytes of JSON, more than output.maxEntryBytes (${policy.maxEntryBytes}): return less (counts, a few ids) or raise output.maxEntryBytes`,
      { field: "output.maxEntryBytes" },
    );
  }
  return json;
}

/** An error's message with its cause chain, one `caused by:` line per cause (what a recorded failure keeps). */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth <= MAX_CAUSES && current !== undefined && current !== null; depth++) {
    const e = current as { message?: unknown; name?: unknown; code?: unknown; cause?: unknown };
    const message = typeof e.message === "string" ? e.message : String(current);
    const code = typeof e.code === "string" && !message.includes(e.code) ? ` (${e.code})` : "";
    parts.push(depth === 0 ? `${message}${code}` : `caused by: ${typeof e.name === "string" ? `${e.name}: ` : ""}${message}${code}`);
    current = typeof current === "object" ? e.cause : undefined;
  }
  return parts.join("\n");
}

/** The error's `code` when it has one, else its `name`. */
export function errorName(error: unknown): string {
  const e = error as { name?: unknown; code?: unknown } | null;
  return typeof e?.code === "string" ? e.code : typeof e?.name === "string" ? e.name : "Error";
}

/** Why a burst of failures holds the run, or null when it does not. */
export function holdReason(doc: BackfillDoc, counts: FailureCounts): string | null {
  const policy = doc.config.hold;
  if (policy === null) return null;
  if (counts.consecutive >= policy.consecutiveFailures) return `${counts.consecutive} failed attempts in a row`;
  const attempts = counts.recentFailures + counts.recentDone;
  if (attempts >= policy.minAttempts && counts.recentFailures / attempts >= policy.errorRate) {
    return `${counts.recentFailures} of ${attempts} attempts failed in the last two minutes (${Math.round((100 * counts.recentFailures) / attempts)}% ≥ ${Math.round(policy.errorRate * 100)}%)`;
  }
  return null;
}

async function defer(core: Core, doc: BackfillDoc, entry: RangeEntry, reason: "paused" | "held" | "late" | "failed while held"): Promise<JobOutcome> {
  await core.store.addDeferred(doc.name, doc.runId, entry);
  core.events.emit("batchDeferred", { ...core.base(doc), ...entry, reason });
  return "deferred";
}

/**
 * Holds a running run, after a burst of failures (`cause: "failures"`, probes after `hold.probeAfter`) or
 * because a health indicator says stop (`cause: "health"`, looked at again after `health.stopHold`);
 * true when this call (or another) left it held.
 */
export async function hold(core: Core, doc: BackfillDoc, reason: string, error: unknown, cause: "failures" | "health" = "failures"): Promise<boolean> {
  const now = core.clock.now();
  const state: HoldState = {
    since: now,
    reason,
    lastError: error === null ? null : describeError(error),
    probes: 0,
    nextProbeAt: now + (cause === "health" ? doc.config.health.stopHold : (doc.config.hold?.probeAfter ?? 5)) * 1000,
    cause,
  };
  const { after, changed } = await core.mutate(doc.name, (d) =>
    d.runId === doc.runId && d.status === "running" ? { ...d, status: "held", hold: state, pace: null, revision: d.revision + 1 } : null,
  );
  if (changed) {
    await releaseBudget(core, doc);
    // Ranges that spent their attempts in the burst before the hold (quick retries, or maxAttempts 1)
    // failed because of the outage, not of their rows: they go back with the rest.
    if (cause === "failures") await core.store.requeueFailed(doc.name, doc.runId, now - HOLD_LOOKBACK_MS).catch(() => 0);
    await core.recordChange(doc.name, { status: { from: "running", to: "held" } }, { actor: cause === "health" ? "health" : "superspreader", reason });
    core.events.emit("held", { ...core.base(after), reason, lastError: state.lastError, nextProbeAt: state.nextProbeAt ?? now, cause });
  }
  return after.runId === doc.runId && after.status === "held";
}

/** A successful probe: the run resumes at once (new epoch, a tick now, a new grid). */
async function release(core: Core, doc: BackfillDoc): Promise<void> {
  const since = doc.hold?.since ?? core.clock.now();
  const { after, kicked } = await core.kick(doc.name, (d) =>
    d.status === "held" && d.runId === doc.runId
      ? { status: "running", hold: null, pace: null, nextTickAt: Math.min(d.nextTickAt, core.clock.now()), revision: d.revision + 1 }
      : null,
  );
  if (kicked) {
    await core.recordChange(doc.name, { status: { from: "held", to: "running" } }, { actor: "superspreader", reason: "a probe batch succeeded" });
    core.events.emit("resumed", { ...core.base(after), heldForMs: core.clock.now() - since, by: "probe" });
  }
}

/**
 * Processes a batch job: reserves its start slot of the run's rate with the read, waits for it if the
 * batch came early, runs the handler for its range and records the outcome.
 */
export async function runBatch(core: Core, data: BatchJobData, context: JobContext): Promise<JobOutcome> {
  const { clock } = core;
  const entry: RangeEntry = { beginId: BigInt(data.beginId), endId: BigInt(data.endId), cycle: data.cycle };
  const probe = data.probe === true;
  // The rate is enforced when batches start, not only when they are planned: a batch that comes late
  // reserves a slot of its run's bucket with the read, so batches that come late in a heap (an outage, all
  // workers gone) never start faster than the rate in force, each at its own slot. A batch on time (at most
  // a second after its slot, which the plan spaced at the rate) goes by the document this process read in
  // the last DOC_CACHE_MS and takes no round trip to start; its start is counted in the bucket, at its slot, when it
  // is recorded done. Workers slower than the rate never wait.
  const now = clock.now();
  const onTime = !probe && data.scheduledAt !== undefined && now >= data.scheduledAt && now - data.scheduledAt <= ON_TIME_MS;
  const cached = onTime ? core.cachedRead(data.backfill) : null;
  const reserved = cached === null || cached.doc.runId !== data.runId;
  const { current, waitMs } = reserved ? await core.readForStart(data.backfill, data.runId, now) : { current: cached, waitMs: 0 };
  const state = (doc: BackfillDoc | undefined): JobOutcome | null => {
    if (!doc || doc.runId !== data.runId) return "skipped";
    if (doc.status === "paused") return null;
    if (doc.status === "held" && !probe) return null;
    if (doc.status !== "running" && doc.status !== "held") return "skipped";
    return "done";
  };
  let doc = current?.doc;
  if (state(doc) === "skipped") return "skipped";
  if (doc && state(doc) === null) return defer(core, doc, entry, doc.status === "paused" ? "paused" : "held");
  if (!doc) return "skipped";
  if (waitMs > 0 && !probe) {
    // No rate in force now (a zero-rate window): planned again once there is one.
    if (!Number.isFinite(waitMs)) return defer(core, doc, entry, "late");
    const sleep = clock.sleep ?? systemClock.sleep;
    await sleep?.(waitMs, context.signal);
    if (context.signal.aborted) throw context.signal.reason ?? new Error("the worker is shutting down");
    // The run may have been paused or held while this batch waited.
    const again = await core.read(data.backfill);
    doc = again?.doc;
    if (state(doc) === "skipped" || !doc) return "skipped";
    if (state(doc) === null) return defer(core, doc, entry, doc.status === "paused" ? "paused" : "held");
  }
  // A health indicator saying stop holds the run before this batch starts: the reading is at most two
  // poll intervals plus the timeout old (see HealthMonitor), so no batch starts later than that after it.
  if (!probe) {
    const reading = await core.health.read(doc.name, core.registry.get(doc.name), doc.config);
    if (reading?.level === "stop") {
      await hold(core, doc, `health: ${reading.reason}`, null, "health");
      return defer(core, doc, entry, "held");
    }
  }
  return runStarted(core, doc, data, entry, context, reserved);
}

async function runStarted(core: Core, doc: BackfillDoc, data: BatchJobData, entry: RangeEntry, context: JobContext, reserved: boolean): Promise<JobOutcome> {
  const { store, clock, events } = core;
  const where = { ...core.base(doc), ...entry };
  const probe = data.probe === true;
  const definition = core.registry.get(doc.name);
  if (!definition) {
    // Thrown, not skipped: a worker deployed without this backfill must not eat its jobs.
    throw new SuperSpreaderError(
      "UNKNOWN_BACKFILL",
      `backfill "${doc.name}" is not defined in this worker: call spreader.define("${doc.name}", …) before starting the worker`,
    );
  }
  const started = clock.now();
  events.emit("batchStarted", {
    ...where,
    attempt: context.attempt,
    ...(data.scheduledAt === undefined ? {} : { scheduledAt: data.scheduledAt }),
    ...(probe ? { probe } : {}),
  });
  const batch = {
    backfill: doc.name,
    runId: doc.runId,
    cycle: data.cycle,
    beginId: entry.beginId,
    endId: entry.endId,
    attempt: context.attempt,
    maxAttempts: context.maxAttempts,
    signal: context.signal,
  };
  // What the closed loop measures: the handler's time, and how late the batch started.
  const timingAt = (finished: number): BatchTiming => ({
    handlerMs: Math.max(0, Math.round(finished - started)),
    lateMs: data.scheduledAt === undefined ? 0 : Math.max(0, Math.round(started - data.scheduledAt)),
    // Counted at its planned slot: the plan spaced slots at the rate, and a start up to ON_TIME_MS
    // late must not push the bucket ahead of it (later reservations would wait for nothing).
    ...(reserved ? {} : { slotAt: data.scheduledAt ?? started }),
  });
  // A transactional backfill's handler writes through a transaction in which the store also records
  // the range: both commit, or neither (a failure of either is the attempt's failure, nothing recorded).
  const transactions = definition.transactional === true ? store.capabilities?.transactions : undefined;
  if (definition.transactional === true && transactions === undefined) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `backfill "${doc.name}" is transactional, but the state store offers no transactions`, { field: "transactional" });
  }
  let committed: RangeRun | null = null;
  // The handler's result, checked in the attempt (a result that cannot be kept fails it, and rolls back a transaction).
  let output: string | null = null;
  try {
    if (transactions !== undefined) {
      committed = await transactions.runRange(
        doc.name,
        doc.runId,
        entry,
        async (tx) => {
          output = collectedOutput(doc, entry, await definition.handle({ ...batch, tx }));
          return timingAt(clock.now());
        },
        () => clock.now(),
      );
    } else {
      output = collectedOutput(doc, entry, await definition.handle(batch));
    }
  } catch (error) {
    const finished = clock.now();
    const failed = { ...where, at: finished, attempt: context.attempt, maxAttempts: context.maxAttempts, durationMs: finished - started, error };
    // An attempt cut short by shutdown is handed back by the runner without spending it.
    if (context.signal.aborted) {
      events.emit("batchFailed", { ...failed, final: false });
      throw error;
    }
    if (await heldAfterFailure(core, doc, error, probe)) {
      events.emit("batchFailed", { ...failed, final: false });
      if (probe) await noteProbeFailure(core, doc, error);
      return defer(core, doc, entry, "failed while held");
    }
    const final = context.attempt >= context.maxAttempts;
    if (final) {
      await store.addFailed(doc.name, doc.runId, {
        ...entry,
        error: describeError(error),
        errorName: errorName(error),
        attempts: context.attempt,
        at: finished,
      });
    }
    events.emit("batchFailed", { ...failed, final });
    throw error;
  }
  const finished = clock.now();
  let firstCompletion: boolean;
  try {
    // Kept before the range is recorded done: a crash in between runs the batch again, and its result is
    // found kept (keyed by range). A transactional batch's result is kept after its commit: a crash in
    // between loses that one result (the range is done, so it does not run again).
    const kept = doc.config.output;
    if (output !== null && kept !== null && (committed === null || committed.committed)) {
      await store.addOutput(doc.name, doc.runId, { beginId: entry.beginId, endId: entry.endId, at: finished, result: output }, kept.maxBytes);
    }
    firstCompletion = committed !== null ? committed.committed : await store.markDone(doc.name, doc.runId, entry, finished, timingAt(finished));
  } catch (error) {
    // The work is done but not recorded: the queue runs the batch again (idempotent handlers).
    // If every attempt fails so, the range stays outstanding and reconciliation enqueues it again.
    events.emit("batchFailed", { ...where, at: clock.now(), attempt: context.attempt, maxAttempts: context.maxAttempts, durationMs: finished - started, error, final: false });
    throw error;
  }
  events.emit("batchFinished", { ...where, at: finished, attempt: context.attempt, durationMs: finished - started, firstCompletion });
  if (probe) await release(core, doc);
  return "done";
}

/**
 * Counts a failed attempt and decides whether the run is (now) held: a burst of failures
 * holds a running run, and a run already held by another worker defers this batch too. A
 * store that cannot even count the failure (it is down as well) leaves the attempt failed.
 */
async function heldAfterFailure(core: Core, doc: BackfillDoc, error: unknown, probe: boolean): Promise<boolean> {
  if (probe) return true;
  if (doc.config.hold === null) return false;
  let counts: FailureCounts;
  try {
    counts = await core.store.recordFailure(doc.name, doc.runId, core.clock.now());
  } catch {
    return false;
  }
  const reason = holdReason(doc, counts);
  if (reason !== null) return hold(core, doc, reason, error);
  const now = await core.read(doc.name).catch(() => null);
  return now !== null && now.doc.runId === doc.runId && now.doc.status === "held";
}

async function noteProbeFailure(core: Core, doc: BackfillDoc, error: unknown): Promise<void> {
  const lastError = describeError(error);
  await core
    .mutate(doc.name, (d) => (d.runId === doc.runId && d.status === "held" && d.hold ? { ...d, hold: { ...d.hold, lastError } } : null))
    .catch(() => {});
  core.events.emit("probeFailed", { ...core.base(doc), error });
}
