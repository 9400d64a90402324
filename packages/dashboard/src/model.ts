import {
  estimate,
  mergeRanges,
  nextWindowChange,
  observedRate,
  rateAt,
  rateWindow,
  rangeSize,
  validateConfig,
  type AuditReport,
  type BackfillConfig,
  type BackfillConfigInput,
  type ConfigChange,
  type FailedRange,
  type IdRange,
  type NextCycle,
  type RunEta,
} from "@superspreader/core";
import { extrasOf, type AnyStatus, type DashboardSpreader } from "./compat.js";
import type {
  WireChange,
  WireChart,
  WireConfig,
  WireControl,
  WireErrorGroup,
  WireEta,
  WirePlan,
  WireRange,
  WireRangeSet,
  WireRanges,
  WireRow,
  WireWindow,
} from "./wire.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Ranges of one kind sent to the page; the counts cover all of them. */
const SAMPLE = 20;
/** Batches of a plan sent to the page. */
const PLAN_SAMPLE = 200;
/** Longest JSON text of one audit value; configs are small, a longer value is cut. */
const MAX_VALUE_TEXT = 2000;

/** States in which the run goes on (or will, once resumed): they have an ETA. */
export const OPEN_STATES: ReadonlySet<string> = new Set(["running", "paused", "held"]);
/** States in which a run has ended; any other (including states newer cores add, such as `starting`) goes on. */
export const ENDED_STATES: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

/* ------------------------------------------------------------ versions */

/** FNV-1a, 32 bits, as 8 hex digits: a short fingerprint, not a security measure. */
function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/**
 * The version an operator's change must name in `If-Match`. With core's `revision` it is that
 * number; without it, a fingerprint of what `revision` counts (run, status, config), so a change
 * made meanwhile by anyone still turns a tab stale, while progress does not.
 */
export function etagOf(status: AnyStatus): string {
  if (typeof status.revision === "number") return `${status.runId}.r${status.revision}`;
  return `${status.runId}.h${fingerprint(JSON.stringify([status.status, status.config]))}`;
}

/* ------------------------------------------------------------- numbers */

/** done / total in percent with 6 exact decimals, from bigints (no float on the way). */
export function percentOf(done: bigint, total: bigint): string {
  if (total <= 0n) return "100.000000";
  const scaled = (done * 100_000_000n) / total;
  const frac = (scaled % 1_000_000n).toString().padStart(6, "0");
  return `${scaled / 1_000_000n}.${frac}`;
}

const rangeOf = (r: IdRange): WireRange => ({ beginId: r.beginId.toString(), endId: r.endId.toString(), ids: rangeSize(r).toString() });
const idsIn = (ranges: readonly IdRange[]): bigint => ranges.reduce((sum, r) => sum + rangeSize(r), 0n);

/** `a` minus `b`, both merged (ascending, disjoint): one linear sweep, since ledgers can hold many ranges. */
export function subtractRanges(a: readonly IdRange[], b: readonly IdRange[]): IdRange[] {
  const out: IdRange[] = [];
  let j = 0;
  for (const r of a) {
    let begin = r.beginId;
    while (j < b.length && b[j]!.endId < begin) j++;
    for (let k = j; k < b.length && b[k]!.beginId <= r.endId; k++) {
      const cut = b[k]!;
      if (cut.beginId > begin) out.push({ beginId: begin, endId: cut.beginId - 1n });
      if (cut.endId + 1n > begin) begin = cut.endId + 1n;
    }
    if (begin <= r.endId) out.push({ beginId: begin, endId: r.endId });
  }
  return out;
}

function rangeSet(ranges: readonly IdRange[], order: "asc" | "desc" = "desc"): WireRangeSet {
  const sorted = order === "desc" ? [...ranges].sort((x, y) => (x.endId < y.endId ? 1 : x.endId > y.endId ? -1 : 0)) : ranges;
  return { ranges: ranges.length, ids: idsIn(ranges).toString(), sample: sorted.slice(0, SAMPLE).map(rangeOf) };
}

/* ---------------------------------------------------------------- ETA */

function wireEta(eta: RunEta): WireEta {
  return {
    from: eta.from,
    finishAt: eta.finishAt,
    observedFinishAt: eta.observedFinishAt,
    cyclesRemaining: eta.cyclesRemaining,
    batchesRemaining: eta.batchesRemaining.toString(),
    idsRemaining: eta.idsRemaining.toString(),
    extrapolated: eta.extrapolated,
    observedIdsPerSecond: eta.observedIdsPerSecond,
    ifResumedNow: eta.ifResumedNow,
  };
}

/**
 * The calendar and observed-pace ETA, under the stored config or a proposed patch. Uses core's
 * `spreader.eta` when core has it; otherwise core's exported `estimate()` with the inputs its TSDoc
 * names (the next cycle's start, the fresh ids below the cursor, the deferred ranges, the observed pace).
 */
export async function etaOf(
  spreader: DashboardSpreader,
  status: AnyStatus,
  deferred: readonly IdRange[],
  now: number,
  patch?: Partial<BackfillConfigInput>,
): Promise<WireEta | null> {
  const coreEta = extrasOf(spreader).eta;
  if (coreEta) {
    // core's eta takes a whole config: the stored one with the patch applied.
    const eta = await coreEta(status.name, patch === undefined ? undefined : { config: { ...status.config, ...patch } as BackfillConfigInput });
    return eta ? wireEta(eta) : null;
  }
  if (!OPEN_STATES.has(status.status)) return null;
  const from = status.status === "running" ? Math.max(now, status.nextTickAt) : now;
  const observed = observedRate(status.metrics, now, { startedAt: status.startedAt });
  const eta = estimate({
    config: patch === undefined ? status.config : ({ ...status.config, ...patch } as BackfillConfigInput),
    from,
    idsRemaining: status.cursor >= status.minId ? status.cursor - status.minId + 1n : 0n,
    requeued: deferred,
    observed,
  });
  return wireEta({ from, ...eta, observedIdsPerSecond: observed, ifResumedNow: status.status !== "running" });
}

/* ------------------------------------------------------------- window */

/** The rate in force at `now` and the next on/off-peak change (core's {@link rateWindow}). */
export function windowOf(config: BackfillConfig, now: number): WireWindow {
  return rateWindow(config, now);
}

/* ---------------------------------------------------------------- rows */

/** What is read less often than the status: the ledger and what is derived from it. */
export interface SlowPart {
  readonly audit: AuditReport;
  readonly eta: WireEta | null;
  readonly rows: { readonly done: string; readonly total: string; readonly at: number } | null;
}

/** One list row from a status, the last slow read (if any) and the window in force. */
export function rowOf(status: AnyStatus, slow: SlowPart | null, window: WireWindow, now: number): WireRow {
  const { progress, config, rate } = status;
  const control = controlOf(status);
  const batchSize = control?.batchSize ?? config.batchSize;
  const ceiling = control?.ceiling ?? rateAt(config, now).perSecond;
  const running = status.status === "running";
  const cycleMs = config.duration * 1000;
  return {
    readable: true,
    name: status.name,
    status: status.status,
    runId: status.runId,
    etag: etagOf(status),
    revision: typeof status.revision === "number" ? status.revision : null,
    cycle: status.cycle,
    ids: {
      min: status.minId.toString(),
      max: status.initialId.toString(),
      total: progress.idsTotal.toString(),
      done: progress.idsDone.toString(),
      cursor: status.cursor.toString(),
      percent: percentOf(progress.idsDone, progress.idsTotal),
    },
    rows: slow?.rows ?? null,
    rate: {
      batchSize,
      perSecond: rate.perSecond,
      perSecondExact: rate.perSecondExact,
      idsPerSecond: rate.perSecond * batchSize,
      // core's status().rate is the rate in force; the configured one is the ceiling it stays under.
      configured: { perSecond: ceiling, batchSize: config.batchSize, idsPerSecond: ceiling * config.batchSize },
      // Only for runs that go on: an ended run's row then stays the same, and live updates skip it.
      observedIdsPerSecond: ENDED_STATES.has(status.status) ? null : observedRate(status.metrics, now, { startedAt: status.startedAt }),
    },
    window,
    eta: slow?.eta ?? null,
    batches: { done: progress.batchesDone, failed: progress.batchesFailed, deferred: progress.batchesDeferred },
    failedRanges: slow ? slow.audit.failed.length : null,
    tick: {
      nextTickAt: status.nextTickAt,
      overdueMs: status.tickOverdueMs,
      stalled: running && status.tickOverdueMs > Math.max(MINUTE, 2 * cycleMs),
      revivals: status.watchdog?.revivals ?? null,
      lastRevivedAt: status.watchdog?.lastRevivedAt ?? null,
      lastReason: status.watchdog?.lastReason ?? null,
    },
    hold: status.hold ?? null,
    reconciled: status.reconciled ? { ranges: status.reconciled.ranges } : null,
    control,
    startedAt: status.startedAt,
    finishedAt: status.finishedAt,
    lastDoneAt: progress.lastDoneAt,
  };
}

/* --------------------------------------------------------- closed loop */

/**
 * The health state as far as the stored run tells it: core stores what it did with a reading (a hold
 * of cause `health`, the loop's reason `throttled: slow: …`), not the reading.
 */
function healthOf(status: AnyStatus): WireControl["health"] {
  const hold = status.hold;
  if (status.status === "held" && hold?.cause === "health") return { state: "stop", reason: hold.reason.replace(/^health: /, "") };
  const signal = /^throttled: (?:slow|stop): (.*)$/s.exec(status.control?.reason ?? "");
  return signal ? { state: "slow", reason: signal[1] as string } : { state: "clear", reason: null };
}

/** What the closed loop does to the run, or null when nothing steers it (or core has no loop). */
export function controlOf(status: AnyStatus): WireControl | null {
  const c = status.control;
  if (c === null || c === undefined) return null;
  const budget = c.budget;
  return {
    summary: c.summary,
    perSecond: c.perSecond,
    ceiling: c.ceiling,
    autotuneShare: status.config.autotune ? c.share : null,
    batchSize: c.batchSize,
    configuredBatchSize: status.config.batchSize,
    pins: { perSecond: c.pins.perSecond, batchSize: c.pins.batchSize },
    health: healthOf(status),
    deadline: c.deadline && { finishBy: c.deadline.finishBy, feasible: c.deadline.feasible, share: c.deadline.share, finishAt: c.deadline.finishAt, needs: c.deadline.needs },
    budget: budget && {
      key: budget.key,
      perSecond: budget.perSecond,
      weight: status.config.budget?.weight ?? 1,
      cap: budget.cap,
      share: budget.cap === null || budget.perSecond <= 0 ? null : budget.cap / budget.perSecond,
    },
  };
}

/* -------------------------------------------------------------- ranges */

/** The first line of an error, numbers replaced: ranges failing "the same way" share it. */
function errorKey(f: FailedRange): string {
  const first = f.error.split("\n", 1)[0] ?? "";
  return `${f.errorName}: ${first.replace(/\d+/g, "#").slice(0, 300)}`;
}

export function errorGroups(failed: readonly FailedRange[]): WireErrorGroup[] {
  const groups = new Map<string, FailedRange[]>();
  for (const f of failed) {
    const key = errorKey(f);
    const list = groups.get(key);
    if (list) list.push(f);
    else groups.set(key, [f]);
  }
  return [...groups.entries()]
    .map(([key, list]): WireErrorGroup => {
      const recent = [...list].sort((a, b) => b.at - a.at);
      return {
        key,
        errorName: recent[0]!.errorName,
        message: recent[0]!.error,
        ranges: list.length,
        ids: idsIn(list).toString(),
        firstAt: recent[recent.length - 1]!.at,
        lastAt: recent[0]!.at,
        sample: recent.slice(0, SAMPLE).map((f) => ({ ...rangeOf(f), at: f.at, attempts: f.attempts, error: f.error })),
      };
    })
    .sort((a, b) => b.lastAt - a.lastAt);
}

/** The ledger's open ids by why they are open: core's classification when it has one, else derived here. */
export function rangesOf(status: AnyStatus, audit: AuditReport): WireRanges {
  // Read as possibly absent: a runtime of an older core does not classify.
  const classified = (audit as Partial<Pick<AuditReport, "classified">>).classified;
  const done = mergeRanges(audit.done);
  let inFlight: IdRange[];
  let notPlanned: IdRange[];
  let lost: IdRange[];
  if (Array.isArray(classified)) {
    const of = (kind: string) => classified.filter((g) => g.kind === kind);
    inFlight = of("in flight");
    notPlanned = of("not planned");
    lost = of("lost");
  } else {
    const failed = mergeRanges(audit.failed);
    const deferred = mergeRanges(audit.deferred);
    const unplanned = status.cursor >= status.minId ? [{ beginId: status.minId, endId: status.cursor }] : [];
    notPlanned = subtractRanges(unplanned, done);
    const rest = subtractRanges(subtractRanges(subtractRanges(audit.gaps, failed), deferred), unplanned);
    // Without core's record of enqueued batches, what is left is in flight while the run goes on, lost once it ended.
    inFlight = ENDED_STATES.has(status.status) ? [] : rest;
    lost = ENDED_STATES.has(status.status) ? rest : [];
  }
  return {
    done: { ranges: done.length, ids: idsIn(done).toString() },
    inFlight: rangeSet(inFlight),
    deferred: rangeSet(audit.deferred),
    notPlanned: rangeSet(notPlanned),
    failed: { ranges: audit.failed.length, ids: idsIn(audit.failed).toString(), groups: errorGroups(audit.failed) },
    lost: rangeSet(lost),
  };
}

/* ------------------------------------------------------------ timeline */

/** Fields of a config, as the running core has them (newer cores add fields). */
const configKeys = (config: BackfillConfig): ReadonlySet<string> => new Set(Object.keys(config));

function valueText(value: unknown): string {
  const json = value === undefined ? "undefined" : JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  return json.length > MAX_VALUE_TEXT ? `${json.slice(0, MAX_VALUE_TEXT)}…` : json;
}

function kindOf(change: ConfigChange, fields: ReadonlySet<string>): WireChange["kind"] {
  const keys = Object.keys(change.changes);
  if (keys.includes("run")) return "run";
  if (keys.includes("status")) return "status";
  if (keys.includes("requeuedFailedRanges")) return "retry";
  if (keys.length > 0 && keys.every((k) => fields.has(k))) return "config";
  return "other";
}

export function timelineOf(changes: readonly ConfigChange[], config: BackfillConfig): WireChange[] {
  const fields = configKeys(config);
  return changes.map((c) => ({
    at: c.at,
    actor: c.actor,
    reason: c.reason ?? null,
    kind: kindOf(c, fields),
    changes: Object.entries(c.changes).map(([field, { from, to }]) => ({ field, from: valueText(from), to: valueText(to) })),
  }));
}

/* --------------------------------------------------------------- chart */

/** The config in force at `t`: the current one with the recorded changes after `t` undone (null before the run). */
function configAt(current: BackfillConfig, changes: readonly ConfigChange[], t: number): BackfillConfig | null {
  const config: Record<string, unknown> = { ...current };
  const fields = configKeys(current);
  for (const change of changes) {
    if (change.at <= t) break; // newest first: the rest happened before t
    if ("run" in change.changes) return null;
    for (const [field, { from }] of Object.entries(change.changes)) if (fields.has(field)) config[field] = from;
  }
  try {
    return validateConfig(config);
  } catch {
    return current; // a hand-edited trail: draw the current config rather than nothing
  }
}

/** The configured rate over [from, to) as steps, one per window. */
function steps(config: BackfillConfig, from: number, to: number): WireChart["schedule"][number][] {
  const out: WireChart["schedule"][number][] = [];
  let t = from;
  while (t < to) {
    const { perSecond, onPeak } = rateAt(config, t);
    const change = nextWindowChange(config, t);
    const end = Math.min(change?.at ?? to, to);
    out.push({ from: t, to: end, perSecond, onPeak });
    t = end;
  }
  return out;
}

/** The configured schedule of the next 24 h under `config`. */
export function scheduleAhead(config: BackfillConfig, now: number): WireChart["schedule"][number][] {
  return steps(config, now, now + 24 * HOUR);
}

/**
 * The rate chart: observed batches per minute of the last hour under the configured rate of the
 * time (reconstructed from the audit trail when there is one), then the next 24 h of the schedule.
 */
export function chartOf(status: AnyStatus, changes: readonly ConfigChange[] | null, now: number): WireChart {
  const from = now - HOUR;
  const to = now + 24 * HOUR;
  const start = Math.max(from, status.startedAt);
  const schedule: WireChart["schedule"][number][] = [];
  const trail = changes ?? [];
  // Cut the past at each config change, newest last.
  const cuts = trail.filter((c) => c.at > start && c.at <= now).map((c) => c.at).reverse();
  let t = start;
  for (const cut of [...cuts, now]) {
    const config = configAt(status.config, trail, t);
    if (config && cut > t) schedule.push(...steps(config, t, cut));
    t = cut;
  }
  schedule.push(...steps(status.config, now, to));
  const observed = status.metrics.recent
    .filter((b) => b.minute + MINUTE > from && b.minute <= now)
    .map((b) => {
      // A minute counts from the run's start (a run that began at :40 worked 20 s of it) to now (the current one).
      const seconds = Math.max(1, (Math.min(now, b.minute + MINUTE) - Math.max(b.minute, status.startedAt)) / 1000);
      return { minute: b.minute, batchesPerSecond: b.batches / seconds, idsPerSecond: Number(b.ids) / seconds };
    });
  return { now, from, to, observed, schedule };
}

/* ---------------------------------------------------------------- plan */

export async function planOf(spreader: DashboardSpreader, name: string): Promise<WirePlan> {
  const plan = extrasOf(spreader).plan;
  if (!plan) {
    return { available: false, reason: "this version of @superspreader/core has no spreader.plan(); the next cycle's plan shows once it does" };
  }
  const p: NextCycle | null = await plan(name);
  if (p === null) return { available: false, reason: "the run has ended: there is no next cycle" };
  return {
    available: true,
    cycle: p.cycle,
    beginAt: p.beginAt,
    perSecond: p.perSecond,
    onPeak: p.onPeak,
    slots: p.slots,
    cursorBefore: p.cursorBefore.toString(),
    cursorAfter: p.cursorAfter.toString(),
    nextTickAt: p.nextTickAt,
    total: p.batches.length,
    batches: p.batches.slice(0, PLAN_SAMPLE).map((b) => ({ ...rangeOf(b), runAt: b.runAt, kind: b.kind })),
  };
}

export const configJson = (config: BackfillConfig): WireConfig => config as WireConfig;
