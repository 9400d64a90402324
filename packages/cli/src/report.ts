/**
 * How the commands present what core computes: every number here comes from the runtime
 * (status, audit, plan, eta); this file only reads them together and puts them in words.
 */
import {
  observedRate,
  type AuditReport,
  type BackfillConfig,
  type BackfillStatus,
  type ClassifiedGap,
  type FailedRange,
  type IdSource,
  type RunEta,
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
  return h && { since: f.iso(h.since), reason: h.reason, lastError: h.lastError, probes: h.probes, nextProbeAt: f.iso(h.nextProbeAt) };
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
