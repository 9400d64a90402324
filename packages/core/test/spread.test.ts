import { describe, expect, it } from "vitest";
import { spread } from "../src/index.js";

const at = (iso: string) => new Date(iso);
const ranges = (batches: ReturnType<typeof spread>) => batches.map((b) => [b.beginId, b.endId]);
const offsets = (batches: ReturnType<typeof spread>, begin: Date) => batches.map((b) => (b.runAt.getTime() - begin.getTime()) / 1000);

describe("spread", () => {
  it("plans the README example exactly: 6 batches, 3 per second, contiguous", () => {
    const beginAt = at("2020-11-16T22:51:59Z");
    const batches = spread({ initialId: 100_000_000, batchSize: 100, perSecond: 3, duration: 2, beginAt });
    expect(ranges(batches)).toEqual([
      [99_999_901n, 100_000_000n],
      [99_999_801n, 99_999_900n],
      [99_999_701n, 99_999_800n],
      [99_999_601n, 99_999_700n],
      [99_999_501n, 99_999_600n],
      [99_999_401n, 99_999_500n],
    ]);
    expect(batches.map((b) => b.runAt.toISOString())).toEqual([
      "2020-11-16T22:51:59.000Z",
      "2020-11-16T22:51:59.000Z",
      "2020-11-16T22:51:59.000Z",
      "2020-11-16T22:52:00.000Z",
      "2020-11-16T22:52:00.000Z",
      "2020-11-16T22:52:00.000Z",
    ]);
    // The next cycle starts below the last beginId: no range repeats (the Ruby README's typo).
    const next = spread({ initialId: 99_999_400n, batchSize: 100, perSecond: 3, duration: 2, beginAt: at("2020-11-16T22:52:01Z") });
    expect(next[0]).toMatchObject({ beginId: 99_999_301n, endId: 99_999_400n });
    expect(next[0]?.runAt.toISOString()).toBe("2020-11-16T22:52:01.000Z");
  });

  it("clamps the last batch at minId and stops when ids run out", () => {
    const beginAt = at("2026-01-01T00:00:00Z");
    const batches = spread({ initialId: 22, batchSize: 5, perSecond: 1, duration: 30, beginAt });
    expect(ranges(batches)).toEqual([
      [18n, 22n],
      [13n, 17n],
      [8n, 12n],
      [3n, 7n],
      [1n, 2n],
    ]);
    expect(offsets(batches, beginAt)).toEqual([0, 1, 2, 3, 4]);
    expect(ranges(spread({ initialId: 21, batchSize: 5, perSecond: 1, duration: 30, beginAt })).at(-1)).toEqual([1n, 1n]);
    expect(ranges(spread({ initialId: 10, batchSize: 5, perSecond: 1, duration: 30, beginAt, minId: 4 }))).toEqual([
      [6n, 10n],
      [4n, 5n],
    ]);
  });

  it("spaces fractional rates: 0.5/s runs every 2 seconds", () => {
    const beginAt = at("2026-01-01T00:00:00Z");
    const batches = spread({ initialId: 1999, batchSize: 100, perSecond: 0.5, duration: 10, beginAt });
    expect(batches).toHaveLength(5);
    expect(offsets(batches, beginAt)).toEqual([0, 2, 4, 6, 8]);
  });

  it("holds exactly ceil(duration × perSecond) batches with decimal rates", () => {
    const beginAt = 0;
    const count = (perSecond: number, duration: number) =>
      spread({ initialId: 10n ** 12n, batchSize: 10, perSecond, duration, beginAt }).length;
    expect(count(0.3, 10)).toBe(3);
    expect(count(7.5, 180)).toBe(1350);
    expect(count(7.5, 10)).toBe(75);
    expect(count(3, 2)).toBe(6);
    expect(count(10, 1)).toBe(10);
    expect(count(5, 10)).toBe(50);
    expect(count(6, 180)).toBe(1080);
    expect(count(0.1, 25)).toBe(3);
    expect(count(1 / 3, 3)).toBe(1); // 1/3 as a double is 0.3333333333333333 (16 threes): × 3 is just under 1
  });

  it("plans the first cycle of a slot grid: a fractional duration in whole-second mode takes the second it touches", () => {
    // 3/s for 0.5 s: the slots of second 0 all run at :00, inside the cycle; the grid's next cycles hold none
    // until second 1, so the rate over time is still 3/s.
    expect(spread({ initialId: 100, batchSize: 1, perSecond: 3, duration: 0.5, beginAt: 0 }).map((b) => b.runAt.getTime())).toEqual([0, 0, 0]);
    expect(spread({ initialId: 100, batchSize: 1, perSecond: 3, duration: 0.5, beginAt: 0, spreadWithinSecond: true }).map((b) => b.runAt.getTime())).toEqual([0, 333]);
  });

  it("puts exactly perSecond batches in each second for whole rates, evenly for decimal ones", () => {
    const perSecondCounts = (perSecond: number, duration: number) => {
      const counts = new Map<number, number>();
      for (const b of spread({ initialId: 10n ** 9n, batchSize: 1, perSecond, duration, beginAt: 0 })) {
        const s = b.runAt.getTime() / 1000;
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
      return [...counts.values()];
    };
    expect(perSecondCounts(3, 10)).toEqual(Array(10).fill(3));
    // 7.5/s alternates 8 and 7 (slot k at floor(k / 7.5) s).
    expect(perSecondCounts(7.5, 10)).toEqual([8, 7, 8, 7, 8, 7, 8, 7, 8, 7]);
  });

  it("can spread run times inside each second", () => {
    const beginAt = 1_000_000;
    const batches = spread({ initialId: 100, batchSize: 1, perSecond: 4, duration: 1, beginAt, spreadWithinSecond: true });
    expect(batches.map((b) => b.runAt.getTime() - beginAt)).toEqual([0, 250, 500, 750]);
    const odd = spread({ initialId: 100, batchSize: 1, perSecond: 3, duration: 1, beginAt, spreadWithinSecond: true });
    expect(odd.map((b) => b.runAt.getTime() - beginAt)).toEqual([0, 333, 666]);
  });

  it("keeps ids beyond 2^53 exact and prints them as plain decimals", () => {
    const top = 2n ** 63n - 1n;
    const batches = spread({ initialId: top, batchSize: 1000, perSecond: 2, duration: 1, beginAt: 0 });
    expect(ranges(batches)).toEqual([
      [top - 999n, top],
      [top - 1999n, top - 1000n],
    ]);
    expect(String(batches[0]?.endId)).toBe("9223372036854775807");
    expect(spread({ initialId: "18446744073709551615", batchSize: 1, perSecond: 1, duration: 1, beginAt: 0 })[0]?.endId).toBe(
      18_446_744_073_709_551_615n,
    );
  });

  it("plans nothing at rate 0 or below minId", () => {
    expect(spread({ initialId: 100, batchSize: 10, perSecond: 0, duration: 10, beginAt: 0 })).toEqual([]);
    expect(spread({ initialId: 0, batchSize: 10, perSecond: 1, duration: 10, beginAt: 0 })).toEqual([]);
  });

  it("keeps the fraction of a second of beginAt", () => {
    const batches = spread({ initialId: 10, batchSize: 1, perSecond: 1, duration: 2, beginAt: 1_500 });
    expect(batches.map((b) => b.runAt.getTime())).toEqual([1_500, 2_500]);
  });

  it.each([
    [{ batchSize: 0 }, /batchSize must be a whole number ≥ 1, got 0/],
    [{ batchSize: 2.5 }, /batchSize must be a whole number ≥ 1, got 2.5/],
    [{ duration: 0 }, /duration must be a finite number of seconds > 0, got 0/],
    [{ duration: Number.POSITIVE_INFINITY }, /duration .* got Infinity/],
    [{ perSecond: -1 }, /perSecond must be a finite number ≥ 0, got -1/],
    [{ perSecond: Number.NaN }, /perSecond .* got NaN/],
    [{ initialId: 1.5 }, /initialId must be a non-negative integer id .* got 1.5/],
    [{ initialId: 2 ** 60 }, /beyond 2\^53/],
    [{ initialId: "12abc" }, /initialId .* got "12abc"/],
    [{ beginAt: new Date("nope") }, /beginAt must be a valid Date/],
  ])("rejects %o with a message naming the field", (patch, message) => {
    const options = { initialId: 100, batchSize: 10, perSecond: 1, duration: 10, beginAt: 0, ...patch };
    expect(() => spread(options as Parameters<typeof spread>[0])).toThrow(message);
  });
});
