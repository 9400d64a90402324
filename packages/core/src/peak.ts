import { DateTime, IANAZone } from "luxon";
import { SuperSpreaderError, describeValue } from "./errors.js";

/** Days of a window: ISO weekday numbers (1 = Monday … 7 = Sunday), names ("Mon", "monday"), or ranges ("Mon-Fri", "Fri-Mon"). */
export type DaysInput = string | ReadonlyArray<number | string>;

/** One on-peak window as written in a config. */
export interface PeakWindowInput {
  /** The weekdays on which the window starts. */
  days: DaysInput;
  /**
   * Half-open local hours `[begin, end)`, 0–24 (fractions allowed: 9.5 is 09:30).
   * `begin > end` wraps past midnight: `[22, 6]` on Fri runs Fri 22:00 to Sat 06:00.
   */
  hours: readonly [number, number];
}

/** On-peak windows in an IANA time zone: one window inline, or several in `windows`. */
export type PeakInput =
  | ({ timezone: string } & PeakWindowInput)
  | {
      timezone: string;
      windows: readonly PeakWindowInput[];
    };

/** A validated window: sorted ISO weekdays and hours. */
export interface PeakWindow {
  readonly days: readonly number[];
  readonly hours: readonly [number, number];
}

/** A validated peak schedule (what configs store). */
export interface PeakSchedule {
  readonly timezone: string;
  readonly windows: readonly PeakWindow[];
}

const DAY_NAMES: Record<string, number> = {
  mon: 1, monday: 1, tue: 2, tues: 2, tuesday: 2, wed: 3, wednesday: 3, thu: 4, thur: 4, thurs: 4, thursday: 4,
  fri: 5, friday: 5, sat: 6, saturday: 6, sun: 7, sunday: 7,
};

function invalid(field: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_CONFIG", `${field} ${message}`, { field });
}

function parseDay(value: unknown, field: string): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 7) return value;
  if (typeof value === "string") {
    const day = DAY_NAMES[value.trim().toLowerCase()];
    if (day !== undefined) return day;
  }
  throw invalid(field, `must be a weekday (1 = Monday … 7 = Sunday, or a name such as "Mon"), got ${describeValue(value)}`);
}

function parseDays(value: unknown, field: string): number[] {
  const days = new Set<number>();
  const addPart = (part: unknown, partField: string) => {
    if (typeof part === "string" && part.includes("-")) {
      const [from, to, ...rest] = part.split("-");
      if (rest.length > 0) throw invalid(partField, `must be a day or a range "Mon-Fri", got ${describeValue(part)}`);
      let first: number;
      let last: number;
      try {
        first = parseDay(from, partField);
        last = parseDay(to, partField);
      } catch {
        throw invalid(partField, `must be a range of weekday names such as "Mon-Fri", got ${describeValue(part)}`);
      }
      // A range may wrap the week: "Fri-Mon" is Fri, Sat, Sun, Mon.
      for (let d = first; ; d = (d % 7) + 1) {
        days.add(d);
        if (d === last) break;
      }
    } else {
      days.add(parseDay(part, partField));
    }
  };
  if (typeof value === "string") {
    value.split(",").forEach((part, i, all) => addPart(part.trim(), all.length > 1 ? `${field}[${i}]` : field));
  } else if (Array.isArray(value)) {
    value.forEach((part, i) => addPart(part, `${field}[${i}]`));
  } else {
    throw invalid(field, `must be a string such as "Mon-Fri" or an array of weekdays, got ${describeValue(value)}`);
  }
  if (days.size === 0) throw invalid(field, "must name at least one weekday");
  return [...days].sort((a, b) => a - b);
}

function parseHours(value: unknown, field: string): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) {
    throw invalid(field, `must be [begin, end] local hours, got ${describeValue(value)}`);
  }
  const [begin, end] = value as unknown[];
  for (const [i, h] of [begin, end].entries()) {
    if (typeof h !== "number" || !Number.isFinite(h) || h < 0 || h > 24) {
      throw invalid(`${field}[${i}]`, `must be an hour from 0 to 24, got ${describeValue(h)}`);
    }
  }
  if (begin === end) throw invalid(field, `must not be empty: begin equals end (${String(begin)}); use [0, 24] for the whole day`);
  return [begin as number, end as number];
}

/** Abbreviations people write for a zone, and the place they almost always mean. */
const ABBREVIATIONS: Record<string, string> = {
  EST: "America/New_York", EDT: "America/New_York", ET: "America/New_York", EST5EDT: "America/New_York",
  CST: "America/Chicago", CDT: "America/Chicago", CT: "America/Chicago", CST6CDT: "America/Chicago",
  MST: "America/Denver (or America/Phoenix, which keeps standard time)", MDT: "America/Denver", MT: "America/Denver", MST7MDT: "America/Denver",
  PST: "America/Los_Angeles", PDT: "America/Los_Angeles", PT: "America/Los_Angeles", PST8PDT: "America/Los_Angeles",
  AKST: "America/Anchorage", HST: "Pacific/Honolulu", GMT: "UTC", Z: "UTC", UCT: "UTC", ZULU: "UTC",
  BST: "Europe/London", CET: "Europe/Paris (or your city in Europe)", CEST: "Europe/Paris (or your city in Europe)",
  EET: "Europe/Athens (or your city)", WET: "Europe/Lisbon", JST: "Asia/Tokyo", KST: "Asia/Seoul",
  AEST: "Australia/Sydney", AEDT: "Australia/Sydney", IST: "Asia/Kolkata (or Europe/Dublin)",
};
/** Areas of the backward-compatibility links ("US/Pacific") and fixed offsets ("Etc/GMT+5"): not places. */
const LINK_AREAS = ["US", "Canada", "Mexico", "Brazil", "Chile", "Etc", "SystemV"];
let canonical: Map<string, string> | null = null;

/** The canonical spelling of a zone name, case-insensitively, from the runtime's list of zones. */
function canonicalName(value: string): string | undefined {
  if (canonical === null) {
    canonical = new Map<string, string>([["utc", "UTC"]]);
    for (const zone of Intl.supportedValuesOf("timeZone")) canonical.set(zone.toLowerCase(), zone);
  }
  return canonical.get(value.toLowerCase());
}

/**
 * Checks an IANA zone name and returns its canonical spelling ("america/los_angeles" →
 * "America/Los_Angeles"). Abbreviations ("PST", "EST": fixed offsets, or another zone than
 * meant) and backward links ("US/Pacific", "Etc/GMT+5") are refused, naming the intended
 * zone when it is obvious. `lenient` accepts anything luxon accepts, as earlier versions did
 * (for configs already stored).
 */
export function checkTimezone(value: unknown, field = "peak.timezone", lenient = false): string {
  if (typeof value !== "string" || !IANAZone.isValidZone(value)) {
    throw invalid(field, `must be an IANA time zone such as "America/Los_Angeles", got ${describeValue(value)}`);
  }
  if (lenient) return value;
  const known = canonicalName(value);
  if (known !== undefined && !known.startsWith("Etc/") && (known.includes("/") || known === "UTC")) return known;
  const [area] = value.split("/");
  const place = value.includes("/") && !LINK_AREAS.some((a) => a.toLowerCase() === area?.toLowerCase());
  // Modern names the runtime's zone list spells the older way (Asia/Kolkata, Europe/Kyiv) are places too.
  if (place) return value;
  const resolved = new Intl.DateTimeFormat("en-US", { timeZone: value }).resolvedOptions().timeZone;
  const meant = ABBREVIATIONS[value.toUpperCase()] ?? (resolved.includes("/") && !resolved.startsWith("Etc/") ? resolved : undefined);
  throw invalid(
    field,
    `must be a canonical IANA time zone (a place, so daylight saving time is right), got ${describeValue(value)}` +
      (meant ? `: did you mean "${meant}"?` : ': name the place, e.g. "America/Los_Angeles" or "Europe/Berlin"'),
  );
}

/**
 * Validates a peak schedule written in a config and returns its normal form.
 * Throws `INVALID_CONFIG` naming the field (`peak.windows[1].hours[0]`, …) and the value.
 */
export function parsePeak(input: unknown, field = "peak", lenient = false): PeakSchedule {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw invalid(field, `must be an object { timezone, days, hours } or { timezone, windows }, got ${describeValue(input)}`);
  }
  const raw = input as Record<string, unknown>;
  const inline = "days" in raw || "hours" in raw;
  const allowed = inline ? ["timezone", "days", "hours"] : ["timezone", "windows"];
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      throw invalid(`${field}.${key}`, `is not a known field (expected ${allowed.join(", ")}${inline ? "; use windows: [...] for several windows" : ""})`);
    }
  }
  const timezone = checkTimezone(raw.timezone, `${field}.timezone`, lenient);
  const rawWindows: unknown[] = inline ? [{ days: raw.days, hours: raw.hours }] : (raw.windows as unknown[]);
  if (!Array.isArray(rawWindows) || rawWindows.length === 0) {
    throw invalid(`${field}.windows`, `must be a non-empty array of { days, hours }, got ${describeValue(raw.windows)}`);
  }
  const windows = rawWindows.map((w, i) => {
    const wf = inline ? field : `${field}.windows[${i}]`;
    if (typeof w !== "object" || w === null) throw invalid(wf, `must be { days, hours }, got ${describeValue(w)}`);
    const win = w as Record<string, unknown>;
    for (const key of Object.keys(win)) if (key !== "days" && key !== "hours") throw invalid(`${wf}.${key}`, "is not a known field (expected days, hours)");
    return { days: parseDays(win.days, `${wf}.days`), hours: parseHours(win.hours, `${wf}.hours`) };
  });
  return { timezone, windows };
}

/**
 * True when `at` falls inside one of the schedule's on-peak windows, judged on the
 * wall clock of the schedule's time zone (so windows follow daylight saving time).
 * Windows are half-open: `[5, 17)` is on at 05:00 and off at 17:00.
 *
 * @example
 * ```ts
 * const peak = { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] } as const;
 * isOnPeak(peak, new Date("2026-11-16T13:00:00Z")); // Monday 05:00 in Los Angeles → true
 * ```
 */
export function isOnPeak(schedule: PeakInput | PeakSchedule, at: Date | number): boolean {
  return onPeakIn(parsePeak(schedule), at);
}

/** {@link isOnPeak} for an already validated schedule (no re-validation on the hot path). */
export function onPeakIn(normal: PeakSchedule, at: Date | number): boolean {
  const local = DateTime.fromMillis(typeof at === "number" ? at : at.getTime(), { zone: normal.timezone });
  const hourOfDay = local.hour + local.minute / 60 + local.second / 3600 + local.millisecond / 3_600_000;
  const today = local.weekday;
  const yesterday = today === 1 ? 7 : today - 1;
  return normal.windows.some(({ days, hours: [begin, end] }) => {
    if (begin < end) return days.includes(today) && hourOfDay >= begin && hourOfDay < end;
    // Wraps past midnight: the evening part belongs to the listed day, the morning part to the day after it.
    return (days.includes(today) && hourOfDay >= begin) || (days.includes(yesterday) && hourOfDay < end);
  });
}
