import type BeeQueue from "bee-queue";
import { describe, expect, it } from "vitest";
import { CAPPED_EXPONENTIAL, backoffOption, cappedDelay, cappedStrategy } from "../src/backoff.js";

describe("the capped exponential backoff", () => {
  it("doubles from delayMs and never waits longer than maxDelayMs, whatever the attempt", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => cappedDelay(n, 1_000, 60_000))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
    for (let n = 7; n <= 2_000; n++) expect(cappedDelay(n, 1_000, 60_000), `retry ${n}`).toBe(60_000);
  });

  it("computes the wait from the remaining retries, without changing the stored options", () => {
    const options = { retries: 24, backoff: backoffOption(undefined) };
    expect(options.backoff).toEqual({ strategy: CAPPED_EXPONENTIAL, delay: 1_000, maxDelay: 60_000 });
    const job = (retries: number) =>
      ({ id: "t", data: { superspreader: 1, attempts: 25, data: { kind: "tick" } }, options: { ...options, retries } }) as unknown as BeeQueue.Job<unknown>;
    // Bee-Queue asks before it counts the failure: 24 retries left means attempt 1 failed.
    expect([24, 23, 18, 1].map((left) => cappedStrategy(job(left)))).toEqual([1_000, 2_000, 60_000, 60_000]);
    expect(options.backoff).toEqual({ strategy: CAPPED_EXPONENTIAL, delay: 1_000, maxDelay: 60_000 });
  });

  it("keeps fixed and immediate as Bee-Queue's own", () => {
    expect(backoffOption({ type: "fixed", delayMs: 250 })).toEqual({ strategy: "fixed", delay: 250 });
    expect(backoffOption({ type: "immediate" })).toEqual({ strategy: "immediate" });
  });
});
