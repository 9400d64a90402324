import { describe, expect, it } from "vitest";
import { validateStoredConfig } from "../src/config.js";
import { MIN_DURATION_SECONDS, isSuperSpreaderError, validateConfig } from "../src/index.js";

const good = { batchSize: 70, duration: 180, perSecondOnPeak: 3, perSecondOffPeak: 7.5 };

function errorOf(input: unknown) {
  try {
    validateConfig(input);
  } catch (error) {
    if (isSuperSpreaderError(error)) return error;
    throw error;
  }
  throw new Error("expected validateConfig to throw");
}

describe("validateConfig", () => {
  it("normalises a valid config with defaults", () => {
    expect(validateConfig({ ...good, peak: { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] } })).toEqual({
      ...good,
      peak: { timezone: "America/Los_Angeles", windows: [{ days: [1, 2, 3, 4, 5], hours: [5, 17] }] },
      maxAttempts: 3,
      priority: null,
      spreadWithinSecond: false,
      hold: { consecutiveFailures: 10, errorRate: 0.5, minAttempts: 20, probeAfter: 5, maxProbeInterval: 300 },
      autotune: null,
      health: { interval: 1, timeout: 5, failClosedAfter: 10, stopHold: 600 },
      budget: null,
      finishBy: null,
      autoExtend: false,
      output: null,
    });
  });

  it("takes autoExtend as a boolean and names the field and value otherwise", () => {
    expect(validateConfig({ ...good, autoExtend: true }).autoExtend).toBe(true);
    expect(() => validateConfig({ ...good, autoExtend: "yes" as unknown as boolean })).toThrow('autoExtend must be true or false, got "yes"');
  });

  it("fills the closed loop's options with their defaults", () => {
    expect(validateConfig({ ...good, autotune: {}, budget: { key: "orders-db", perSecond: 10 }, finishBy: "2026-12-24T00:00:00Z", health: { interval: 2 } })).toMatchObject({
      autotune: { batchSize: { targetMs: 100, min: 1, max: 100_000 }, rate: { minShare: 0.05, latenessMs: 2000, tickMs: 1500 } },
      budget: { key: "orders-db", perSecond: 10, weight: 1 },
      finishBy: Date.parse("2026-12-24T00:00:00Z"),
      health: { interval: 2, timeout: 5, failClosedAfter: 10, stopHold: 600 },
    });
    expect(validateConfig({ ...good, autotune: { batchSize: false } })).toMatchObject({ autotune: { batchSize: null, rate: { minShare: 0.05 } } });
    expect(validateConfig({ ...good, autotune: { rate: false, batchSize: { targetMs: 250, min: 10, max: 500 } } })).toMatchObject({
      autotune: { batchSize: { targetMs: 250, min: 10, max: 500 }, rate: null },
    });
    expect(validateConfig({ ...good, autotune: false })).toMatchObject({ autotune: null });
  });

  it.each([
    [{ autotune: 5 }, "autotune", "autotune must be an object, got 5"],
    [{ autotune: { batchsize: {} } }, "autotune.batchsize", "did you mean batchSize?"],
    [{ autotune: { batchSize: { targetMs: 0 } } }, "autotune.batchSize.targetMs", "got 0"],
    [{ autotune: { batchSize: { min: 1.5 } } }, "autotune.batchSize.min", "got 1.5"],
    [{ autotune: { batchSize: { min: 50, max: 10 } } }, "autotune.batchSize.max", "at least autotune.batchSize.min (50), got 10"],
    [{ autotune: { rate: { minShare: 2 } } }, "autotune.rate.minShare", "got 2"],
    [{ autotune: { rate: { latenessMs: -1 } } }, "autotune.rate.latenessMs", "got -1"],
    [{ autotune: { rate: { tickMs: "fast" } } }, "autotune.rate.tickMs", 'got "fast"'],
    [{ health: { interval: 0 } }, "health.interval", "got 0"],
    [{ health: { stopHold: Number.NaN } }, "health.stopHold", "got NaN"],
    [{ health: { timeOut: 5 } }, "health.timeOut", "did you mean timeout?"],
    [{ budget: { perSecond: 5 } }, "budget.key", "got undefined"],
    [{ budget: { key: "a b", perSecond: 5 } }, "budget.key", 'got "a b"'],
    [{ budget: { key: "db", perSecond: -5 } }, "budget.perSecond", "got -5"],
    [{ budget: { key: "db", perSecond: 5, weight: 0 } }, "budget.weight", "got 0"],
    [{ finishBy: "next tuesday" }, "finishBy", 'got "next tuesday"'],
    [{ finishBy: "2026-13-45T00:00:00Z" }, "finishBy", 'got "2026-13-45T00:00:00Z"'],
  ])("rejects %j naming %s and the value", (patch, field, text) => {
    const error = errorOf({ ...good, ...patch });
    expect(error).toMatchObject({ code: "INVALID_CONFIG", field });
    expect(error.message).toContain(text);
  });

  it("reads a config stored by the previous version (no hold) with today's defaults", () => {
    const stored = { ...good, peak: null, maxAttempts: 3, priority: null, spreadWithinSecond: false };
    expect(validateConfig(stored)).toMatchObject({ ...stored, hold: { consecutiveFailures: 10 } });
  });

  it("turns holds off with hold: false", () => {
    expect(validateConfig({ ...good, hold: false })).toMatchObject({ hold: null });
  });

  it("suggests the field a misspelt key meant", () => {
    expect(errorOf({ ...good, perSecondOffpeak: 10 }).message).toContain("config.perSecondOffpeak is not a known field: did you mean perSecondOffPeak?");
    expect(errorOf({ ...good, hold: { consecutivefailures: 3 } }).message).toContain("did you mean consecutiveFailures?");
    expect(errorOf({ ...good, colour: 1 }).message).not.toContain("did you mean");
  });

  it.each([
    ["PST", 'did you mean "America/Los_Angeles"?'],
    ["EST", 'did you mean "America/New_York"?'],
    ["US/Pacific", 'did you mean "America/Los_Angeles"?'],
    ["EST5EDT", 'did you mean "America/New_York"?'],
    ["Etc/GMT+5", "name the place"],
  ])("refuses the non-canonical time zone %s, naming the intended one when obvious", (timezone, hint) => {
    const error = errorOf({ ...good, peak: { timezone, days: "Mon-Fri", hours: [9, 17] } });
    expect(error.field).toBe("peak.timezone");
    expect(error.message).toContain(`must be a canonical IANA time zone (a place, so daylight saving time is right), got "${timezone}"`);
    expect(error.message).toContain(hint);
  });

  it("accepts canonical zones in any case, spelt canonically, and keeps a stored zone an earlier version accepted", () => {
    expect(validateConfig({ ...good, peak: { timezone: "america/los_angeles", days: "Mon", hours: [1, 2] } }).peak?.timezone).toBe("America/Los_Angeles");
    expect(validateConfig({ ...good, peak: { timezone: "UTC", days: "Mon", hours: [1, 2] } }).peak?.timezone).toBe("UTC");
    expect(validateConfig({ ...good, peak: { timezone: "Asia/Kolkata", days: "Mon", hours: [1, 2] } }).peak?.timezone).toBe("Asia/Kolkata");
    expect(validateStoredConfig({ ...good, peak: { timezone: "PST", days: "Mon", hours: [1, 2] } }).peak?.timezone).toBe("PST");
  });

  it("says the shortest duration when one is too short to be a cycle", () => {
    const error = errorOf({ ...good, duration: 0.0004 });
    expect(error.field).toBe("duration");
    expect(error.message).toBe(`[superspreader] duration must be at least ${MIN_DURATION_SECONDS} seconds (the shortest cycle), got 0.0004`);
  });

  it("accepts a rate of 0 (no work in that window)", () => {
    expect(validateConfig({ ...good, perSecondOnPeak: 0 }).perSecondOnPeak).toBe(0);
  });

  it("re-validates its own output unchanged", () => {
    const once = validateConfig({ ...good, peak: { timezone: "UTC", windows: [{ days: "Sat,Sun", hours: [22, 6] }] } });
    expect(validateConfig(JSON.parse(JSON.stringify(once)))).toEqual(once);
  });

  it.each([
    [{ ...good, batchSize: 0 }, "batchSize", "got 0"],
    [{ ...good, batchSize: 1.5 }, "batchSize", "got 1.5"],
    [{ ...good, batchSize: "70" }, "batchSize", 'got "70"'],
    [{ ...good, duration: 0 }, "duration", "got 0"],
    [{ ...good, duration: -5 }, "duration", "got -5"],
    [{ ...good, duration: Number.POSITIVE_INFINITY }, "duration", "got Infinity"],
    [{ ...good, perSecondOnPeak: -1 }, "perSecondOnPeak", "got -1"],
    [{ ...good, perSecondOffPeak: Number.NaN }, "perSecondOffPeak", "got NaN"],
    [{ ...good, perSecondOffPeak: Number.POSITIVE_INFINITY }, "perSecondOffPeak", "got Infinity"],
    [{ ...good, duration: 100_000, perSecondOnPeak: 0.5, perSecondOffPeak: 2 }, "perSecondOffPeak", "200000 batches per cycle"],
    [{ ...good, peak: { timezone: "America/Bogus", days: "Mon-Fri", hours: [5, 17] } }, "peak.timezone", '"America/Bogus"'],
    [{ ...good, peak: { timezone: "UTC", days: "Mon-Fri", hours: [5, 25] } }, "peak.hours[1]", "got 25"],
    [{ ...good, peak: { timezone: "UTC", days: "Mon-Fri", hours: [-1, 5] } }, "peak.hours[0]", "got -1"],
    [{ ...good, peak: { timezone: "UTC", days: "Mon-Fri", hours: [5, 5] } }, "peak.hours", "[0, 24]"],
    [{ ...good, peak: { timezone: "UTC", days: [0, 1], hours: [5, 6] } }, "peak.days[0]", "got 0"],
    [{ ...good, peak: { timezone: "UTC", days: [8], hours: [5, 6] } }, "peak.days[0]", "got 8"],
    [{ ...good, peak: { timezone: "UTC", days: "Mon-Funday", hours: [5, 6] } }, "peak.days", '"Mon-Funday"'],
    [{ ...good, peak: { timezone: "UTC", windows: [{ days: "Mon", hours: [1, 2] }, { days: "Tue", hours: [3] }] } }, "peak.windows[1].hours", "[3]"],
    [{ ...good, peak: { timezone: "UTC", windows: [] } }, "peak.windows", "non-empty"],
    [{ ...good, peak: { timezone: "UTC", days: "Mon", hours: [1, 2], extra: 1 } }, "peak.extra", "not a known field"],
    [{ ...good, batchsize: 70 }, "batchsize", "not a known field"],
    [{ ...good, maxAttempts: 0 }, "maxAttempts", "got 0"],
    [{ ...good, priority: 0 }, "priority", "got 0"],
    [{ ...good, spreadWithinSecond: "yes" }, "spreadWithinSecond", 'got "yes"'],
    [{ ...good, hold: "on" }, "hold", 'got "on"'],
    [{ ...good, hold: { consecutiveFailures: 0 } }, "hold.consecutiveFailures", "got 0"],
    [{ ...good, hold: { errorRate: 1.5 } }, "hold.errorRate", "got 1.5"],
    [{ ...good, hold: { probeAfter: -1 } }, "hold.probeAfter", "got -1"],
    [{ ...good, hold: { probeAfter: 60, maxProbeInterval: 30 } }, "hold.maxProbeInterval", "got 30"],
    [{ ...good, hold: { probeAfterSeconds: 5 } }, "hold.probeAfterSeconds", "not a known field"],
  ])("rejects %o naming %s", (input, field, detail) => {
    const error = errorOf(input);
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
    expect(error.message).toContain(detail);
    expect(error.message.startsWith("[superspreader] ")).toBe(true);
  });

  it("rejects a missing field and a non-object", () => {
    expect(errorOf({ duration: 1, perSecondOnPeak: 1, perSecondOffPeak: 1 }).field).toBe("batchSize");
    expect(errorOf(null).field).toBe("config");
  });
});
