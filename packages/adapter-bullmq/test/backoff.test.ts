import { describe, expect, it } from "vitest";
import { CAPPED_EXPONENTIAL, backoffOption, cappedBackoffStrategy, cappedDelay } from "../src/backoff.js";

describe("the capped exponential backoff", () => {
  it("doubles from delayMs and never waits longer than maxDelayMs, whatever the attempt", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => cappedDelay(n, 1_000, 60_000))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
    for (let n = 7; n <= 2_000; n++) expect(cappedDelay(n, 1_000, 60_000), `retry ${n}`).toBe(60_000);
    expect(cappedDelay(5, 0, 60_000)).toBe(0);
    expect(cappedDelay(3, 7, 7)).toBe(7);
  });

  it("is what the worker's strategy answers for a job stored with the default backoff", () => {
    const stored = backoffOption(undefined);
    expect(stored).toEqual({ type: CAPPED_EXPONENTIAL, delay: 1_000, maxDelay: 60_000 });
    const job = { opts: { backoff: stored } };
    expect([1, 7, 25].map((n) => cappedBackoffStrategy(n, CAPPED_EXPONENTIAL, undefined, job))).toEqual([1_000, 60_000, 60_000]);
    expect(() => cappedBackoffStrategy(1, "linear", undefined, { opts: { backoff: { type: "linear", delay: 1 } } })).toThrow(/unknown backoff/);
  });

  it("keeps a fixed backoff as BullMQ's own", () => {
    expect(backoffOption({ type: "fixed", delayMs: 250 })).toEqual({ type: "fixed", delay: 250 });
  });
});
