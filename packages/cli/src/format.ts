import { validateConfig, type BackfillConfig, type BackfillStatusName, type ConfigChange, type IdRange, type PeakSchedule } from "@superspreader/core";
import stringWidth from "string-width";

/** An instant as ISO 8601 UTC for JSON, or null. */
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A count with its noun: `1 range`, `3 ranges`, `1,200 ids`. */
export const plural = (n: number | bigint, one: string, many = `${one}s`) => `${int(n)} ${n === 1 || n === 1n ? one : many}`;

/** An id range: `99,991..100,000`. */
export const rangeText = (r: IdRange) => `${int(r.beginId)}..${int(r.endId)}`;

/** At most `limit` items, one a line, and how to see the rest. */
export function limited<T>(items: readonly T[], limit: number, render: (item: T) => string, indent: string): string[] {
  const lines = items.slice(0, limit).map((item) => indent + render(item));
  if (items.length > limit) lines.push(`${indent}… ${int(items.length - limit)} more (--limit ${items.length} or --json for all)`);
  return lines;
}

/** Whole numbers with thousands separators: `1,234,567`. */
export function int(value: bigint | number): string {
  return value.toLocaleString("en-US");
}

/** A fraction 0..1 as `34.5%`. */
export function percent(fraction: number): string {
  return `${(Math.floor(fraction * 1000) / 10).toFixed(1)}%`;
}

/** A progress bar drawn with ASCII only, so it reads the same in every terminal and log. */
export function bar(fraction: number, width = 30): string {
  const filled = Math.max(0, Math.min(width, Math.floor(fraction * width)));
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** A rate such as 7.5, with at most `digits` decimals. */
export function rate(perSecond: number, digits = 3): string {
  return Number(perSecond.toFixed(digits)).toString();
}

/** A share as a percentage to a tenth: `42.5%`. */
export function share(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

/** An instant as ISO 8601 UTC, to the second (or to the millisecond when `precise`, without ".000"). */
export function time(ms: number, precise = false): string {
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return "beyond the year 275760";
  const iso = new Date(ms).toISOString();
  return precise ? iso.replace(".000Z", "Z") : iso.replace(/\.\d{3}Z$/, "Z");
}

/** A duration as its two largest units: `3d 4h`, `1m 8s`, `0s`. */
export function span(ms: number): string {
  let rest = Math.max(0, Math.round(ms / 1000));
  const units: Array<[string, number]> = [
    ["y", 365 * 86_400],
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  const parts: string[] = [];
  for (const [unit, seconds] of units) {
    if (rest >= seconds || (unit === "s" && parts.length === 0)) {
      parts.push(`${int(Math.floor(rest / seconds))}${unit}`);
      rest %= seconds;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** `in 1m 8s`, `3m ago`, or `now` within a second. */
export function relative(ms: number, now: number): string {
  if (Math.abs(ms - now) < 1000) return "now";
  return ms > now ? `in ${span(ms - now)}` : `${span(now - ms)} ago`;
}

/** An instant with its distance from now: `2026-11-22T10:01:10Z (in 1m 8s)`. */
export function when(ms: number, now: number): string {
  return `${time(ms)} (${relative(ms, now)})`;
}

/** An instant on a zone's wall clock: `Mon 2026-11-23 05:00 America/Los_Angeles`. */
export function localTime(ms: number, timezone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      weekday: "short",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.weekday} ${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${timezone}`;
}

const DAY_NAMES = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function days(list: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i;
    while (j + 1 < list.length && (list[j + 1] as number) === (list[j] as number) + 1) j++;
    const first = DAY_NAMES[list[i] as number] as string;
    const last = DAY_NAMES[list[j] as number] as string;
    runs.push(j - i >= 2 ? `${first}-${last}` : j > i ? `${first},${last}` : first);
    i = j + 1;
  }
  return runs.join(",");
}

function clock(hours: number): string {
  const minutes = Math.round(hours * 60);
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

/** A peak schedule in one line: `America/Los_Angeles Mon-Fri 05:00-17:00; Sun 22:00-06:00(+1d)`. */
export function peak(schedule: PeakSchedule | null): string {
  if (schedule === null) return "none (always off peak)";
  const windows = schedule.windows.map(
    ({ days: d, hours: [begin, end] }) => `${days(d)} ${clock(begin)}-${clock(end)}${begin > end ? "(+1d)" : ""}`,
  );
  return `${schedule.timezone} ${windows.join("; ")}`;
}

/**
 * Aligns rows of cells into columns separated by two spaces. Widths are the columns a cell
 * takes on a terminal (string-width): colour codes take none, wide characters two.
 */
export function table(rows: readonly (readonly string[])[], indent = ""): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, stringWidth(cell))));
  const pad = (cell: string, width: number) => cell + " ".repeat(Math.max(0, width - stringWidth(cell)));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : pad(cell, widths[i] as number))).join("  ")).join("\n");
}

/** A config or JSON value in one line: strings bare, everything else as JSON. */
export function value(v: unknown): string {
  if (typeof v === "string") return v;
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x)) ?? "undefined";
}

/** Colours for the state word only; off unless stdout is a terminal and NO_COLOR is unset. */
export function paint(enabled: boolean): (state: BackfillStatusName | string) => string {
  const codes: Record<string, number> = { running: 32, paused: 33, held: 33, starting: 34, failed: 31, cancelled: 35, completed: 36 };
  return (state) => {
    const code = codes[state];
    return enabled && code !== undefined ? `\u001b[${code}m${state}\u001b[39m` : state;
  };
}

/** A config field's value in one line: the peak schedule in words, the deadline as an instant, anything else as {@link value}. */
export function field(key: string, v: unknown): string {
  if (key === "peak") return peak(v as PeakSchedule | null);
  // Stored as epoch ms; people set it, and read it, as an instant.
  if (key === "finishBy" && typeof v === "number") return time(v);
  return value(v);
}

/** A pin's value: `2/s`, `500 ids`, or `none`. */
function pinned(key: string, v: unknown): string {
  if (v === null || v === undefined) return "none";
  return key === "pin.perSecond" ? `${value(v)}/s` : `${value(v)} ids`;
}

/** The fields every config sets; the others are shown only where they differ from their defaults. */
const REQUIRED = ["batchSize", "duration", "perSecondOnPeak", "perSecondOffPeak"] as const;
const DEFAULTS: BackfillConfig = validateConfig({ batchSize: 1, duration: 1, perSecondOnPeak: 0, perSecondOffPeak: 0 });

/** A whole config in one line: `batchSize=10, duration=1, perSecondOnPeak=5, perSecondOffPeak=20, maxAttempts=1`. */
export function configValues(config: BackfillConfig): string {
  return (Object.keys(config) as (keyof BackfillConfig)[])
    .filter((key) => (REQUIRED as readonly string[]).includes(key) || JSON.stringify(config[key]) !== JSON.stringify(DEFAULTS[key]))
    .map((key) => `${key}=${field(key, config[key])}`)
    .join(", ");
}

/** How a run's config compares with the one before it: the fields that changed, or that it was kept, with its values. */
function configChange(from: BackfillConfig | null, to: BackfillConfig, firstRun: boolean): string {
  if (firstRun || from === null) return `config ${configValues(to)}`;
  const changed = (Object.keys(to) as (keyof BackfillConfig)[]).filter((key) => JSON.stringify(to[key]) !== JSON.stringify(from[key]));
  if (changed.length === 0) return `config kept: ${configValues(to)}`;
  return `config ${changed.map((key) => `${key} ${field(key, from[key])} → ${field(key, to[key])}`).join(", ")} (${configValues(to)})`;
}

/**
 * One entry of the change history in words, with its values: `status running → paused`,
 * `perSecondOffPeak 100 → 50`, `run none → 1f2e…, config batchSize=10, …`.
 */
export function describeChange(changes: ConfigChange["changes"]): string {
  const run = changes.run as { from: unknown; to: unknown } | undefined;
  return Object.entries(changes)
    .map(([key, { from, to }]) => {
      switch (key) {
        case "run":
          return `run ${value(from ?? "none")} → ${value(to)}`;
        case "config":
          // A run started from a request was stored with a placeholder config first: with no run before, it is a first run.
          return configChange(from as BackfillConfig | null, to as BackfillConfig, run !== undefined && run.from === null);
        case "startRequested": {
          const r = to as { restart?: boolean; config?: unknown; resetConfig?: boolean };
          const which = r.resetConfig ? "the definition's config" : r.restart ? "the live config" : "the definition's config";
          const overrides = r.config ? ` with ${value(r.config)}` : "";
          return `${r.restart ? "restart" : "start"} requested (${which}${overrides}), for a worker to carry out`;
        }
        case "requeuedFailedRanges":
          return `${value(to)} failed ranges queued again`;
        case "repair": {
          const r = to as { lost?: number; unaccounted?: number; revived?: boolean };
          return `repair: ${r.lost ?? 0} lost and ${r.unaccounted ?? 0} unaccounted ranges queued again${r.revived ? ", run revived" : ""}`;
        }
        case "pin.perSecond":
        case "pin.batchSize": {
          const what = key === "pin.perSecond" ? "rate" : "batch size";
          if (to === null) return `${what} unpinned (was ${pinned(key, from)})`;
          return from === null ? `${what} pinned at ${pinned(key, to)}` : `${what} pin ${pinned(key, from)} → ${pinned(key, to)}`;
        }
        case "perSecond":
          // Only the closed loop records the rate in force (operators change the configured rates).
          return `rate ${value(from)}/s → ${value(to)}/s`;
        default:
          return `${key} ${field(key, from ?? "none")} → ${field(key, to)}`;
      }
    })
    .join(", ");
}
