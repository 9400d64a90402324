/** Formatting for people. Ids arrive as decimal strings and are grouped as strings, never through a float. */

/** "1234567" → "1,234,567" (exact for any length). */
export function int(value: string | number): string {
  const s = typeof value === "number" ? String(Math.round(value)) : value;
  const negative = s.startsWith("-");
  const digits = negative ? s.slice(1) : s;
  return `${negative ? "-" : ""}${digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}`;
}

/** A rate or other decimal: at most 3 significant decimals, grouped ("7.5", "1,950", "0.003"). */
export function num(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const fixed = digits === 0 ? value.toFixed(0) : value.toFixed(digits).replace(/\.?0+$/, "");
  const [whole, frac] = fixed.split(".");
  return frac === undefined ? int(whole ?? "0") : `${int(whole ?? "0")}.${frac}`;
}

/** The server's exact percent ("0.015555"): two decimals from 1 % up, more below so small progress still shows. */
export function percent(exact: string): string {
  const [whole = "0", frac = ""] = exact.split(".");
  if (whole !== "0") return `${int(whole)}.${frac.slice(0, 2).padEnd(2, "0")} %`;
  const trimmed = frac.replace(/0+$/, "");
  return `0.${trimmed.length < 2 ? trimmed.padEnd(2, "0") : trimmed} %`;
}

/** A duration: "3d 4h", "2h 5m", "4m 10s", "45s". */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  const d = Math.floor(s / 86_400);
  const hr = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d >= 365) return `${num(d / 365.2425)} years`;
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** "in 3h 5m" or "2m 10s ago". */
export function relative(at: number, now: number): string {
  const diff = at - now;
  if (Math.abs(diff) < 1000) return "now";
  return diff > 0 ? `in ${span(diff)}` : `${span(diff)} ago`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Local date and time, "2026-11-22 08:21:49". */
export function stamp(at: number): string {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return "–";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local "Mon 05:00". */
export function dayTime(at: number): string {
  const d = new Date(at);
  return `${["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getDay()]} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "2026-11-22 08:21:49 (in 1m 36s)". */
export function when(at: number | null, now: number): string {
  return at === null ? "–" : `${stamp(at)} (${relative(at, now)})`;
}

const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** ISO weekdays as core accepts them back: [1,2,3,4,5] → "Mon-Fri", [5,6,7,1] stays a list. */
export function days(list: readonly number[]): string {
  const sorted = [...list].sort((a, b) => a - b);
  const contiguous = sorted.length > 2 && sorted.every((d, i) => i === 0 || d === sorted[i - 1]! + 1);
  if (contiguous) return `${DAY_NAMES[sorted[0]! - 1]}-${DAY_NAMES[sorted[sorted.length - 1]! - 1]}`;
  return sorted.map((d) => DAY_NAMES[d - 1]).join(",");
}
