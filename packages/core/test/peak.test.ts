import { describe, expect, it } from "vitest";
import { isOnPeak, rateAt, validateConfig } from "../src/index.js";

const LA = "America/Los_Angeles";
const laWeekdays = { timezone: LA, days: "Mon-Fri", hours: [5, 17] } as const;

describe("isOnPeak", () => {
  it("uses half-open hours on the zone's wall clock", () => {
    // Monday 2026-11-16, PST (UTC-8).
    expect(isOnPeak(laWeekdays, new Date("2026-11-16T12:59:59Z"))).toBe(false); // 04:59:59
    expect(isOnPeak(laWeekdays, new Date("2026-11-16T13:00:00Z"))).toBe(true); // 05:00
    expect(isOnPeak(laWeekdays, new Date("2026-11-17T00:59:59Z"))).toBe(true); // 16:59:59
    expect(isOnPeak(laWeekdays, new Date("2026-11-17T01:00:00Z"))).toBe(false); // 17:00: end is exclusive
    // Saturday 2026-11-21 noon.
    expect(isOnPeak(laWeekdays, new Date("2026-11-21T20:00:00Z"))).toBe(false);
  });

  it("wraps hours past midnight onto the next day", () => {
    const nights = { timezone: "UTC", days: ["Fri"], hours: [22, 6] } as const;
    expect(isOnPeak(nights, new Date("2026-11-20T21:59:59Z"))).toBe(false); // Fri 21:59
    expect(isOnPeak(nights, new Date("2026-11-20T22:00:00Z"))).toBe(true); // Fri 22:00
    expect(isOnPeak(nights, new Date("2026-11-21T05:59:59Z"))).toBe(true); // Sat 05:59, morning part of Friday's window
    expect(isOnPeak(nights, new Date("2026-11-21T06:00:00Z"))).toBe(false);
    expect(isOnPeak(nights, new Date("2026-11-21T22:30:00Z"))).toBe(false); // Sat evening: Sat is not listed
    expect(isOnPeak(nights, new Date("2026-11-20T03:00:00Z"))).toBe(false); // Fri morning belongs to Thursday
  });

  it("wraps day ranges past the weekend (Fri-Mon)", () => {
    const weekend = { timezone: "UTC", days: "Fri-Mon", hours: [0, 24] } as const;
    const day = (iso: string) => isOnPeak(weekend, new Date(iso));
    expect([
      day("2026-11-19T12:00:00Z"), // Thu
      day("2026-11-20T12:00:00Z"), // Fri
      day("2026-11-21T12:00:00Z"), // Sat
      day("2026-11-22T12:00:00Z"), // Sun
      day("2026-11-23T12:00:00Z"), // Mon
      day("2026-11-24T12:00:00Z"), // Tue
    ]).toEqual([false, true, true, true, true, false]);
  });

  it("accepts several windows", () => {
    const schedule = {
      timezone: "Europe/Berlin",
      windows: [
        { days: [1, 2, 3, 4, 5], hours: [8, 12] },
        { days: "Mon-Fri", hours: [13.5, 18] },
      ],
    } as const;
    // Wednesday 2026-11-18, CET (UTC+1).
    expect(isOnPeak(schedule, new Date("2026-11-18T08:00:00Z"))).toBe(true); // 09:00
    expect(isOnPeak(schedule, new Date("2026-11-18T11:45:00Z"))).toBe(false); // 12:45 lunch gap
    expect(isOnPeak(schedule, new Date("2026-11-18T12:30:00Z"))).toBe(true); // 13:30
    expect(isOnPeak(schedule, new Date("2026-11-18T17:00:00Z"))).toBe(false); // 18:00
  });

  it("follows the spring-forward week in Los Angeles (2026-03-08)", () => {
    // Friday 2026-03-06 is PST (UTC-8); Monday 2026-03-09 is PDT (UTC-7).
    expect(isOnPeak(laWeekdays, new Date("2026-03-06T13:00:00Z"))).toBe(true); // Fri 05:00 PST
    expect(isOnPeak(laWeekdays, new Date("2026-03-09T12:00:00Z"))).toBe(true); // Mon 05:00 PDT
    expect(isOnPeak(laWeekdays, new Date("2026-03-09T11:59:59Z"))).toBe(false); // Mon 04:59:59 PDT
    expect(isOnPeak(laWeekdays, new Date("2026-03-10T00:00:00Z"))).toBe(false); // Mon 17:00 PDT
    // A window starting inside the skipped hour (02:00–03:00 does not exist on Sunday 03-08) opens at 03:00 PDT.
    const early = { timezone: LA, days: "Sun", hours: [2.5, 4] } as const;
    expect(isOnPeak(early, new Date("2026-03-08T09:59:59Z"))).toBe(false); // 01:59:59 PST
    expect(isOnPeak(early, new Date("2026-03-08T10:00:00Z"))).toBe(true); // 03:00 PDT
    expect(isOnPeak(early, new Date("2026-03-08T11:00:00Z"))).toBe(false); // 04:00 PDT
  });

  it("follows the fall-back week in Los Angeles (2026-11-01)", () => {
    // Friday 2026-10-30 is PDT (UTC-7); Monday 2026-11-02 is PST (UTC-8).
    expect(isOnPeak(laWeekdays, new Date("2026-10-30T12:00:00Z"))).toBe(true); // Fri 05:00 PDT
    expect(isOnPeak(laWeekdays, new Date("2026-11-02T12:00:00Z"))).toBe(false); // Mon 04:00 PST
    expect(isOnPeak(laWeekdays, new Date("2026-11-02T13:00:00Z"))).toBe(true); // Mon 05:00 PST
    // 01:00–02:00 happens twice on Sunday 11-01: a [1, 2) window is on for both (two real hours).
    const repeated = { timezone: LA, days: "Sun", hours: [1, 2] } as const;
    expect(isOnPeak(repeated, new Date("2026-11-01T08:30:00Z"))).toBe(true); // 01:30 PDT
    expect(isOnPeak(repeated, new Date("2026-11-01T09:30:00Z"))).toBe(true); // 01:30 PST
    expect(isOnPeak(repeated, new Date("2026-11-01T10:00:00Z"))).toBe(false); // 02:00 PST
  });
});

describe("rateAt", () => {
  const config = validateConfig({ batchSize: 70, duration: 180, perSecondOnPeak: 3, perSecondOffPeak: 7.5, peak: laWeekdays });
  it("picks the on-peak rate inside a window and the off-peak rate outside", () => {
    expect(rateAt(config, new Date("2026-11-16T18:00:00Z"))).toEqual({ perSecond: 3, perSecondExact: "3", onPeak: true });
    expect(rateAt(config, new Date("2026-11-21T18:00:00Z"))).toEqual({ perSecond: 7.5, perSecondExact: "7.5", onPeak: false });
  });
  it("is off peak everywhere without a schedule", () => {
    const plain = validateConfig({ batchSize: 1, duration: 1, perSecondOnPeak: 1, perSecondOffPeak: 0 });
    expect(rateAt(plain, 0)).toEqual({ perSecond: 0, perSecondExact: "0", onPeak: false });
  });
});
