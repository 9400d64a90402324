import type { FailedRange } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { parseIfMatch } from "../src/http.js";
import { errorGroups, percentOf, subtractRanges } from "../src/model.js";

const r = (beginId: number, endId: number) => ({ beginId: BigInt(beginId), endId: BigInt(endId) });
const failure = (beginId: number, error: string, at: number, errorName = "Error"): FailedRange => ({
  ...r(beginId, beginId + 9),
  cycle: 0,
  error,
  errorName,
  attempts: 3,
  at,
});

describe("the dashboard's arithmetic", () => {
  it("subtracts merged ranges in one sweep, touching, overlapping and spanning several", () => {
    expect(subtractRanges([r(1, 100)], [])).toEqual([r(1, 100)]);
    expect(subtractRanges([r(1, 100)], [r(1, 100)])).toEqual([]);
    expect(subtractRanges([r(1, 100)], [r(10, 19), r(30, 39), r(100, 120)])).toEqual([r(1, 9), r(20, 29), r(40, 99)]);
    expect(subtractRanges([r(1, 10), r(20, 30), r(40, 50)], [r(5, 25), r(45, 45)])).toEqual([r(1, 4), r(26, 30), r(40, 44), r(46, 50)]);
    expect(subtractRanges([r(50, 60)], [r(1, 10), r(70, 80)])).toEqual([r(50, 60)]);
    const big = 10n ** 19n;
    expect(subtractRanges([{ beginId: 1n, endId: big }], [{ beginId: 2n, endId: big - 1n }])).toEqual([r(1, 1), { beginId: big, endId: big }]);
  });

  it("computes percentages exactly from bigints, beyond 2^53", () => {
    expect(percentOf(0n, 0n)).toBe("100.000000");
    expect(percentOf(1n, 3n)).toBe("33.333333");
    expect(percentOf(155_555_540n, 10n ** 12n)).toBe("0.015555");
    expect(percentOf(10n ** 12n, 10n ** 12n)).toBe("100.000000");
    expect(percentOf(9_007_199_254_740_993n, 18_014_398_509_481_986n)).toBe("50.000000");
  });

  it("groups failed ranges by error name and message with numbers folded, latest first", () => {
    const groups = errorGroups([
      failure(1, "deadlock on row 17\ncaused by: lock timeout", 1000),
      failure(11, "deadlock on row 4242", 3000),
      failure(21, "deadlock on row 5", 2000, "DriverError"),
      failure(31, "<b>bad</b> row 9", 500),
    ]);
    expect(groups.map((g) => [g.key, g.ranges, g.ids, g.firstAt, g.lastAt])).toEqual([
      ["Error: deadlock on row #", 2, "20", 1000, 3000],
      ["DriverError: deadlock on row #", 1, "10", 2000, 2000],
      ["Error: <b>bad</b> row #", 1, "10", 500, 500],
    ]);
    expect(groups[0]!.message).toBe("deadlock on row 4242");
    expect(groups[0]!.sample.map((s) => s.beginId)).toEqual(["11", "1"]);
  });

  it("reads If-Match as RFC 9110 says: strong tags only, or *", () => {
    expect(parseIfMatch("*")).toEqual({ any: true, tags: [] });
    expect(parseIfMatch('"a.r1"')).toEqual({ any: false, tags: ["a.r1"] });
    expect(parseIfMatch('W/"a.r1", "b.r2"')).toEqual({ any: false, tags: ["b.r2"] });
    expect(parseIfMatch("a.r1")).toEqual({ any: false, tags: [] });
  });
});
