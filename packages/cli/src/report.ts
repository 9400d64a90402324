/**
 * How the commands present what core computes: every number here comes from the runtime
 * (status, audit, plan, eta); this file only reads them together and puts them in words.
 */
import {
  observedRate,
  rateAt,
  type AuditReport,
  type BackfillConfig,
  type BackfillStatus,
  type ClassifiedGap,
  type ConfigChange,
  type DeadlinePlan,
  type FailedRange,
  type IdSource,
  type RunEta,
  type StateStore,
  type SuperSpreader,
} from "@superspreader/core";
import * as f from "./format.js";

/** Everything the read commands show about one backfill: one status, audit and ETA read. */
export interface Snapshot {
  readonly now: number;
  readonly status: BackfillStatus;
  readonly audit: AuditReport;
  readonly eta: RunEta | null;
}

export async function snapshot(spreader: SuperSpreader, name: string): Promise<Snapshot> {
  const [status, audit, eta] = await Promise.all([spreader.status(name), spreader.audit(name), spreader.eta(name)]);
  return { now: Date.now(), status, audit, eta };
}

/** True once the run is over: nothing of it will run again without a restart. */
export const ended = (s: BackfillStatus) => s.status === "completed" || s.status === "failed" || s.status === "cancelled";

/**
 * True for a first run cancelled while it waited for a worker: it never had a run nor an id space
 * (a run over an empty id space completes as it starts, so it is never cancelled).
 */
export const neverRan = (s: BackfillStatus) => s.status === "cancelled" && s.progress.idsTotal === 0n;

/**
 * A stalled chain: its tick is late by more than two cycles (and a minute). Workers' watchdogs
 * revive a dead chain within seconds, so this means no worker defining the backfill is running.
 */
export function stalled(status: BackfillStatus): boolean {
  return (status.status === "running" || status.status === "held") && status.tickOverdueMs > Math.max(60_000, 2 * status.config.duration * 1000);
}

export function etaJson(eta: RunEta | null) {
  if (eta === null) return null;
  return {
    from: f.iso(eta.from),
    finishAt: f.iso(eta.finishAt),
    observedFinishAt: f.iso(eta.observedFinishAt),
    cyclesRemaining: eta.cyclesRemaining,
    batchesRemaining: eta.batchesRemaining,
    idsRemaining: eta.idsRemaining,
    observedIdsPerSecond: eta.observedIdsPerSecond,
    extrapolated: eta.extrapolated,
    ifResumedNow: eta.ifResumedNow,
  };
}

/** The ETA in one line, or why there is none. */
export function etaLine(status: BackfillStatus, eta: RunEta | null, now: number): string {
  if (status.status === "starting") return "not started yet: waiting for a worker";
  if (eta === null) return status.finishedAt === null ? status.status : `ended ${f.when(status.finishedAt, now)}`;
  if (eta.finishAt === null) return "never at the configured rates (no cycle starts in a window whose rate is above 0)";
  const cycles = eta.cyclesRemaining === null ? "" : `, ${f.plural(eta.cyclesRemaining, "cycle")}`;
  const resumed = eta.ifResumedNow ? `, if ${status.status === "held" ? "the hold ended" : "resumed"} now` : "";
  return `${f.when(eta.finishAt, now)}${cycles}${eta.extrapolated ? ", extrapolated past 100 years" : ""}${resumed}`;
}

/** Whether the observed-pace finish is worth showing: it differs from the calendar's by more than a cycle. */
export function observedDiffers(eta: RunEta, config: BackfillConfig): boolean {
  return eta.observedFinishAt !== null && (eta.finishAt === null || Math.abs(eta.observedFinishAt - eta.finishAt) > config.duration * 1000);
}

export function failureJson(r: FailedRange) {
  return { beginId: r.beginId, endId: r.endId, cycle: r.cycle, errorName: r.errorName, error: r.error, attempts: r.attempts, at: f.iso(r.at) };
}

/** A failed range in one line: its error's first line (the cause chain follows on the next lines, indented by `indent`). */
export function failureText(r: FailedRange, now: number, indent: string): string {
  const [first, ...causes] = r.error.split("\n");
  const head = `${f.rangeText(r)}  ${r.errorName}: ${first} (${f.plural(r.attempts, "attempt")}, ${f.relative(r.at, now)})`;
  return [head, ...causes.map((line) => `${indent}  ${line.trim()}`)].join("\n");
}

export function gapJson(g: ClassifiedGap) {
  return { beginId: g.beginId, endId: g.endId, ids: g.endId - g.beginId + 1n, kind: g.kind };
}

export function holdJson(s: BackfillStatus) {
  const h = s.hold;
  return h && { since: f.iso(h.since), cause: h.cause ?? "failures", reason: h.reason, lastError: h.lastError, probes: h.probes, nextProbeAt: f.iso(h.nextProbeAt) };
}

export function watchdogJson(s: BackfillStatus) {
  return { revivals: s.watchdog.revivals, lastRevivedAt: f.iso(s.watchdog.lastRevivedAt), lastReason: s.watchdog.lastReason };
}

export function requestJson(s: BackfillStatus) {
  const r = s.request;
  return r && { at: f.iso(r.at), actor: r.actor, reason: r.reason, config: r.config, resetConfig: r.resetConfig };
}

/** How long a start request may wait before the CLI says no worker seems to pick it up: a watchdog looks every ~5 s. */
const REQUEST_UNANSWERED_MS = 60_000;

/** A start waiting for a worker, in words: who asked, when, with which config, and whether any worker seems to be there. */
export function requestText(s: BackfillStatus, now: number): string | null {
  const r = s.request;
  if (r === null) return null;
  const what = s.status === "starting" ? "first run" : "restart";
  const config = s.status === "starting" || r.resetConfig ? "the definition's config" : "the live config";
  const overrides = r.config ? ` with ${f.value(r.config)}` : "";
  const late =
    now - r.at > REQUEST_UNANSWERED_MS
      ? `; no worker has taken it up in ${f.span(now - r.at)}: is a worker that defines ${s.name} running against this Redis and prefix?`
      : "; a worker that defines it carries it out within seconds";
  return `${what} requested by ${r.actor} ${f.relative(r.at, now)} (${config}${overrides})${r.reason ? ` "${r.reason}"` : ""}${late}`;
}

/** A hold in words, over several lines (the last error keeps its cause chain). */
export function holdLines(s: BackfillStatus, now: number, indent: string): string[] {
  const h = s.hold;
  if (h === null) return [];
  if (h.cause === "health") {
    // No probe batch: the hold ends when the indicators no longer say stop, looked at when its time is up.
    const look = h.nextProbeAt === null ? "" : `; looked at again ${f.when(h.nextProbeAt, now)}`;
    return [`held since ${f.when(h.since, now)} by the database's health: ${h.reason.replace(/^health: /, "")}${look}. It resumes by itself once no indicator says stop; \`superspreader resume ${s.name}\` resumes now.`];
  }
  const probe = h.nextProbeAt === null ? "a probe batch is in flight" : `next probe ${f.when(h.nextProbeAt, now)}`;
  return [
    `held since ${f.when(h.since, now)}: ${h.reason}; ${f.plural(h.probes, "probe")} sent, ${probe}. It resumes by itself when a probe succeeds; \`superspreader resume ${s.name}\` resumes now.`,
    ...(h.lastError === null ? [] : h.lastError.split("\n").map((line, i) => `${indent}${i === 0 ? "last error: " : "  "}${line.trim()}`)),
  ];
}

/** What the watchdog did, or null when it never had to. */
export function watchdogText(s: BackfillStatus, now: number): string | null {
  const w = s.watchdog;
  if (w.revivals === 0) return null;
  const last = w.lastRevivedAt === null ? "" : `, last ${f.relative(w.lastRevivedAt, now)}`;
  return `revived the tick chain ${f.plural(w.revivals, "time")}${last}${w.lastReason ? `: ${w.lastReason}` : ""}`;
}

export function observedOf(status: BackfillStatus, now: number): number | null {
  return observedRate(status.metrics, now, { startedAt: status.startedAt });
}

/* --------------------------------------------------------------- rows */

export interface RowProgress {
  readonly done: bigint;
  readonly total: bigint;
}

/** Rows done and in total, when the app's source for this backfill can count them. */
export async function rowsOf(source: IdSource | undefined, audit: AuditReport): Promise<RowProgress | null> {
  const count = source?.capabilities.countRange;
  if (!count || audit.initialId < audit.minId) return null;
  const [total, ...done] = await Promise.all([count(audit.minId, audit.initialId), ...audit.done.map((r) => count(r.beginId, r.endId))]);
  return { total, done: done.reduce((sum, n) => sum + n, 0n) };
}

/* ------------------------------------------------------------- window */

/** The most recent failures first. */
export function lastErrors(failed: readonly FailedRange[], limit: number): FailedRange[] {
  return [...failed].sort((a, b) => b.at - a.at).slice(0, limit);
}

/* ------------------------------------------------------- closed loop */

/** The actor core records the closed loop's decisions as. */
export const AUTOTUNE_ACTOR = "autotune";

/** How far back `status` looks in the change history for the loop's last decision. */
const TUNED_LOOKBACK = 50;

/** The closed loop's last decision (actor "autotune") among the recent changes, or null (none, or no store to read). */
export async function lastTuned(store: StateStore | null, name: string): Promise<ConfigChange | null> {
  if (store === null) return null;
  const changes = await store.listConfigChanges(name, TUNED_LOOKBACK);
  return changes.find((c) => c.actor === AUTOTUNE_ACTOR) ?? null;
}

/** The rate in force and the configured one (its ceiling), ids per second at the batch size each plans with. */
export function ratesOf(s: BackfillStatus, now: number) {
  const ceiling = rateAt(s.config, now);
  const batchSize = s.control?.batchSize ?? s.config.batchSize;
  return {
    configured: { batchesPerSecond: ceiling.perSecond, idsPerSecond: ceiling.perSecond * s.config.batchSize, onPeak: ceiling.onPeak, batchSize: s.config.batchSize },
    inForce: { batchesPerSecond: s.rate.perSecond, idsPerSecond: s.rate.perSecond * batchSize, batchSize },
  };
}

/** A deadline plan for --json, times as ISO 8601. */
export function deadlineJson(d: DeadlinePlan) {
  return { finishBy: f.iso(d.finishBy), feasible: d.feasible, share: d.share, finishAt: f.iso(d.finishAt), needs: d.needs };
}

/** Where the database's health leaves the run: held on `stop`, slowed on `slow`, or neither. */
export interface HealthView {
  /**
   * `stop`: a health indicator holds the run; `slow`: the loop's last congestion signal was an indicator
   * saying slow (or stop); `clear`: neither (no indicator said so at the last decision, or there are none).
   */
  readonly state: "stop" | "slow" | "clear";
  readonly reason: string | null;
}

/**
 * The health state as far as the stored run tells it: core stores no reading, only what it did with one
 * (a hold of cause `health`, and the loop's reason `throttled: slow: …`).
 */
export function healthOf(s: BackfillStatus): HealthView {
  if (s.status === "held" && s.hold?.cause === "health") return { state: "stop", reason: s.hold.reason.replace(/^health: /, "") };
  const signal = /^throttled: (slow|stop): (.*)$/s.exec(s.control?.reason ?? "");
  if (signal) return { state: "slow", reason: signal[2] as string };
  return { state: "clear", reason: null };
}

/** One backfill sharing a budget, as `status` shows it. */
export interface BudgetPeer {
  readonly name: string;
  readonly status: string;
  readonly weight: number;
  /** The most batches per second the budget leaves it, or null before its first claim. */
  readonly cap: number | null;
}

/**
 * The stored backfills of budget `key` that plan batches (running, held; a paused one gave its share
 * back), this one included, by name. Read from their stored configs and loop states, so the list needs
 * only Redis; a member whose claim lapsed may still be listed until its next tick.
 */
export async function budgetPeers(spreader: SuperSpreader, s: BackfillStatus): Promise<BudgetPeer[]> {
  const key = s.config.budget?.key;
  if (key === undefined) return [];
  const names = await spreader.list();
  const statuses = await Promise.all(names.map((name) => (name === s.name ? s : spreader.status(name).catch(() => null))));
  return statuses
    .filter((o): o is BackfillStatus => o !== null && o.config.budget?.key === key && (o.status === "running" || o.status === "held"))
    .map((o) => ({ name: o.name, status: o.status, weight: o.config.budget?.weight ?? 1, cap: o.control?.budget?.cap ?? null }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What `status` adds to core's view of the closed loop: its last decision and the budget's other members. */
export interface LoopExtras {
  readonly tuned: ConfigChange | null;
  readonly peers: readonly BudgetPeer[];
}

/** This run's share of its budget (its cap over the budget's rate), or null before its first claim. */
function budgetShare(s: BackfillStatus): number | null {
  const b = s.control?.budget;
  return b && b.cap !== null && b.perSecond > 0 ? b.cap / b.perSecond : null;
}

/** The closed loop for --json: core's view with times as ISO 8601, health, the budget's members, its last decision; null when nothing steers the run. */
export function controlJson(s: BackfillStatus, extras: LoopExtras) {
  const c = s.control;
  if (c === null) return null;
  const { tuned, peers } = extras;
  return {
    ...c,
    configuredBatchSize: s.config.batchSize,
    health: healthOf(s),
    deadline: c.deadline && deadlineJson(c.deadline),
    budget: c.budget && { ...c.budget, weight: s.config.budget?.weight ?? 1, share: budgetShare(s), members: peers },
    lastDecision: tuned && { at: f.iso(tuned.at), actor: tuned.actor, reason: tuned.reason ?? null, changes: tuned.changes },
  };
}

/** Why a deadline the configured rates cannot meet is refused, with the rates that would meet it (as core's updateConfig says it). */
export function deadlineRefusal(config: BackfillConfig, d: DeadlinePlan): string {
  const finish = d.finishAt === null ? "never" : f.time(d.finishAt);
  const need = d.needs === null ? "no rate up to 1,000× the configured ones does; choose a later deadline" : `perSecondOnPeak ${d.needs.perSecondOnPeak} and perSecondOffPeak ${d.needs.perSecondOffPeak} would, or a later deadline`;
  return `finishBy ${f.time(d.finishBy)} cannot be met: at perSecondOnPeak ${config.perSecondOnPeak} and perSecondOffPeak ${config.perSecondOffPeak} the run finishes ${finish}; ${need}`;
}

/**
 * A deadline in words: whether the configured rates meet it, when the run finishes, and otherwise the
 * rates that would (with the command that sets them). The first line follows a label; the others are
 * indented by `indent`.
 */
export function deadlineLines(name: string, d: DeadlinePlan, config: BackfillConfig, now: number, indent: string): string[] {
  const by = f.when(d.finishBy, now);
  if (d.feasible) {
    const finish = d.finishAt === null ? "" : `, finishing ${f.when(d.finishAt, now)}`;
    return [`${by}: can be met; deadline mode runs at ${f.share(d.share)} of the configured rates${finish}`];
  }
  if (d.finishBy <= now) {
    return [`${by}: passed, and the run goes on at the configured rates`, `${indent}\`superspreader config set ${name} finishBy=null\` drops the deadline; a later one is planned for again`];
  }
  const at = `perSecondOnPeak ${f.rate(config.perSecondOnPeak)} and perSecondOffPeak ${f.rate(config.perSecondOffPeak)}`;
  const head = `${by}: cannot be met: at ${at} the run finishes ${d.finishAt === null ? "never" : f.when(d.finishAt, now)}`;
  if (d.needs === null) return [head, `${indent}no rate up to 1,000× the configured ones makes it: choose a later deadline`];
  const { perSecondOnPeak: on, perSecondOffPeak: off } = d.needs;
  const set = [on !== config.perSecondOnPeak ? `perSecondOnPeak=${on}` : "", off !== config.perSecondOffPeak ? `perSecondOffPeak=${off}` : ""].filter(Boolean);
  return [
    head,
    `${indent}perSecondOnPeak ${f.rate(on)} and perSecondOffPeak ${f.rate(off)} would make it, or a later deadline:`,
    `${indent}  superspreader config set ${name} ${set.join(" ")}`,
  ];
}

/** What the closed loop does, for `status`: its summary, autotune, health, pins, the deadline, the shared budget and its last decision. */
export function controlLines(s: BackfillStatus, extras: LoopExtras, now: number, pad: string): string[] {
  const c = s.control;
  if (c === null) {
    // Nothing steers the run, but its health indicators may still hold it: say so beside the HELD line.
    const health = healthOf(s);
    return health.state === "stop" ? [`  health      stop: ${health.reason} (held)`] : [];
  }
  const { tuned, peers } = extras;
  const pins = [c.pins.perSecond === null ? "" : `rate ${f.rate(c.pins.perSecond)} batches/s`, c.pins.batchSize === null ? "" : `batch size ${f.int(c.pins.batchSize)}`].filter(Boolean);
  const budget = c.budget;
  const health = healthOf(s);
  const batch =
    c.batchSize === s.config.batchSize
      ? `batch size ${f.int(c.batchSize)} (as configured)`
      : `batch size ${f.int(c.batchSize)} (${c.pins.batchSize === null ? "tuned" : "pinned"}; configured ${f.int(s.config.batchSize)})`;
  const perId = c.msPerId === null ? "" : `, ${f.rate(c.msPerId * 1000, 1)} µs per id`;
  const share = budget === null ? null : budgetShare(s);
  const others = peers.filter((p) => p.name !== s.name);
  return [
    `  control     ${c.summary}`,
    ...(s.config.autotune === null
      ? []
      : [`  autotune    congestion share ${f.share(c.share)} of the ceiling, ${batch}${perId}${c.lastTickMs === null ? "" : `, last tick ${f.int(c.lastTickMs)} ms`}`]),
    `  health      ${health.state === "clear" ? "clear: no indicator said slow or stop at the last decision" : `${health.state}: ${health.reason}${health.state === "stop" ? " (held)" : " (the rate was lowered)"}`}`,
    ...(pins.length > 0 ? [`  pinned      ${pins.join(", ")}: the loop leaves ${pins.length === 1 ? "it" : "them"} alone (\`superspreader unpin ${s.name}\` lets it set ${pins.length === 1 ? "it" : "them"} again)`] : []),
    ...(c.deadline ? deadlineLines(s.name, c.deadline, s.config, now, pad).map((line, i) => (i === 0 ? `  deadline    ${line}` : line)) : []),
    ...(budget
      ? [
          `  budget      "${budget.key}": ${f.rate(budget.perSecond)} batches/s, weight ${f.rate(s.config.budget?.weight ?? 1)}; ` +
            (budget.cap === null || share === null ? "no share claimed yet" : `this one may take ${f.rate(budget.cap)}/s (${f.share(share)})`),
          `${pad}${others.length === 0 ? "no other running backfill shares it" : `shared with ${others.map((p) => `${p.name} (weight ${f.rate(p.weight)}, ${p.cap === null ? "no claim yet" : `${f.rate(p.cap)}/s`})`).join(", ")}`}`,
        ]
      : []),
    ...(tuned ? [`  last tuned  ${f.relative(tuned.at, now)}: ${f.describeChange(tuned.changes)}${tuned.reason ? `: ${tuned.reason}` : ""}`] : []),
  ];
}
