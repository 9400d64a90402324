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

/** The rate: as set, or under the closed loop the rate in force with the configured ceiling it stays under. */
export function rateText(row: WireRow): string {
  const r = row.rate;
  const inForce = `${f.num(r.perSecond)}/s × ${f.int(r.batchSize)} = ${f.num(r.idsPerSecond)} ids/s`;
  return row.control === null ? `set ${inForce}` : `in force ${inForce} (set ${f.num(r.configured.perSecond)}/s × ${f.int(r.configured.batchSize)})`;
}

const share = (x: number) => `${Math.round(x * 1000) / 10} %`;

/** Autotune's share of the ceiling and the batch size it plans with, against the configured one. */
export function autotuneText(row: WireRow): string | null {
  const c = row.control;
  if (c === null) return null;
  const size = c.batchSize === c.configuredBatchSize ? `batch ${f.int(c.batchSize)} as set` : `batch ${f.int(c.batchSize)} ${c.pins.batchSize === null ? "tuned" : "pinned"} (set ${f.int(c.configuredBatchSize)})`;
  return `${c.autotuneShare === null ? "no autotune" : `autotune at ${share(c.autotuneShare)} of the ceiling`} · ${size}`;
}

export function healthText(row: WireRow): string | null {
  const h = row.control?.health;
  if (!h) return null;
  return h.state === "clear" ? "clear: no indicator said slow or stop" : `${h.state}: ${h.reason ?? ""}${h.state === "stop" ? " (held)" : " (rate lowered)"}`;
}

export function pinsText(row: WireRow): string | null {
  const p = row.control?.pins;
  if (!p || (p.perSecond === null && p.batchSize === null)) return null;
  return [p.perSecond === null ? "" : `rate ${f.num(p.perSecond)}/s`, p.batchSize === null ? "" : `batch size ${f.int(p.batchSize)}`].filter(Boolean).join(" · ");
}

/** Whether the deadline can be met, when the run finishes, and otherwise the rates that would make it. */
export function deadlineText(row: WireRow, now: number): string | null {
  const d = row.control?.deadline;
  if (!d) return null;
  const by = `${f.stamp(d.finishBy)} (${f.relative(d.finishBy, now)})`;
  const finish = d.finishAt === null ? "never" : f.relative(d.finishAt, now);
  if (d.feasible) return `${by}: on pace at ${share(d.share)} of the set rates, finishing ${finish}`;
  const needs = d.needs === null ? "no rate up to 1,000× makes it" : `needs ${f.num(d.needs.perSecondOnPeak)}/s on peak, ${f.num(d.needs.perSecondOffPeak)}/s off peak`;
  return `${by}: cannot be met (finishes ${finish} at the set rates); ${needs}`;
}

/** The shared budget: this run's weight and share, and the other runs sharing it (from the rows the page has). */
export function budgetText(row: WireRow, rows: readonly WireRow[]): string | null {
  const b = row.control?.budget;
  if (!b) return null;
  const peers = rows.filter((r) => r.name !== row.name && r.control?.budget?.key === b.key && (r.status === "running" || r.status === "held"));
  const mine = b.cap === null || b.share === null ? "no share claimed yet" : `${f.num(b.cap)}/s (${share(b.share)})`;
  const others = peers.length === 0 ? "no other running backfill" : peers.map((p) => `${p.name} (weight ${f.num(p.control?.budget?.weight ?? 1)})`).join(", ");
  return `"${b.key}" ${f.num(b.perSecond)}/s, weight ${f.num(b.weight)}: ${mine} · shared with ${others}`;
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
