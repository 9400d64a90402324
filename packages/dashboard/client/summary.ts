import type { WireRow } from "../src/wire.js";
import * as f from "./format.js";

/*
 * Sentences about a row, shared by the list and the detail view, so both say the same thing
 * in the same words.
 */

export function progressText(row: WireRow): string {
  return `${f.percent(row.ids.percent)} · ${f.int(row.ids.done)} of ${f.int(row.ids.total)} ids`;
}

export function rowsText(row: WireRow, now: number): string | null {
  return row.rows === null ? null : `rows ${f.int(row.rows.done)} of ${f.int(row.rows.total)} (counted ${f.relative(row.rows.at, now)})`;
}

export function rateText(row: WireRow): string {
  return `set ${f.num(row.rate.perSecond)}/s × ${f.int(row.rate.batchSize)} = ${f.num(row.rate.configuredIdsPerSecond)} ids/s`;
}

export function observedText(row: WireRow): string {
  return row.rate.observedIdsPerSecond === null ? "seen: nothing in 15 min" : `seen ${f.num(row.rate.observedIdsPerSecond)} ids/s`;
}

export function windowText(row: WireRow, now: number): string {
  const w = row.window;
  const here = w.onPeak ? "on peak" : "off peak";
  if (w.next === null) return `${here} (${f.num(w.perSecond)}/s), no change ahead`;
  return `${here} until ${f.dayTime(w.next.at)} (${f.relative(w.next.at, now)}), then ${f.num(w.next.perSecond)}/s`;
}

export function etaText(row: WireRow, now: number): string {
  const eta = row.eta;
  if (eta === null) return row.finishedAt === null ? "–" : `ended ${f.relative(row.finishedAt, now)}`;
  if (eta.finishAt === null) return "never at these rates (every rate in force is 0)";
  const suffix = eta.ifResumedNow ? " if resumed now" : eta.extrapolated ? " (extrapolated)" : "";
  return `${f.relative(eta.finishAt, now)}${suffix}`;
}

export function observedEtaText(row: WireRow, now: number): string {
  const at = row.eta?.observedFinishAt ?? null;
  return at === null ? "at the observed pace: –" : `at the observed pace: ${f.relative(at, now)}`;
}

/** A tick this late is worth mentioning (a busy queue delays ticks by a second or two). */
const LATE_MS = 5000;

export function tickText(row: WireRow): string {
  const parts: string[] = [];
  if (row.tick.stalled) parts.push(`stalled: tick ${f.span(row.tick.overdueMs)} late`);
  else if (row.tick.overdueMs > LATE_MS) parts.push(`tick ${f.span(row.tick.overdueMs)} late`);
  else parts.push(row.status === "running" ? "on time" : "–");
  if (row.tick.revivals !== null && row.tick.revivals > 0) parts.push(`revived ${row.tick.revivals}×`);
  if (row.reconciled !== null && row.reconciled.ranges > 0) parts.push(`${f.int(row.reconciled.ranges)} lost ranges requeued`);
  return parts.join(" · ");
}

/** The state with its cause: "held: database unreachable", "paused". */
export function stateTitle(row: WireRow): string {
  if (row.hold) return `held since ${f.stamp(row.hold.since)}: ${row.hold.reason}`;
  return row.status;
}
