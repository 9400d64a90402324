/**
 * The closed loop from the command line (issue #9): status shows what autotune, health, a shared budget
 * and a deadline do to a run; pin and unpin hold the rate or batch size; estimate plans a deadline;
 * config set takes the loop's fields. The workers run in this process on the in-memory queue, their
 * state in the test's real Redis; the CLI has only Redis, as an operator's shell has.
 */
import type { HealthReading } from "@superspreader/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, unique, waitUntil } from "./helpers.js";
import { memoryApp, type MemoryApp } from "./memory-app.js";

const prefix = unique("cli-loop");
const run = (args: readonly string[], env: Record<string, string | undefined> = {}) => cli(args, { SUPERSPREADER_PREFIX: prefix, ...env });

const HOUR = 3_600_000;
/** 100,000 ids at 5 batches of 10 a second: 2,000 s of work at the configured rates, so the run goes on for the whole file. */
const steady = { batchSize: 10, duration: 1, perSecondOnPeak: 5, perSecondOffPeak: 5 } as const;
/** What the health indicators of `slowed` and `stopped` answer. */
const slow: HealthReading = { level: "slow", reason: "replica lag 2.3 s > 1.5 s", value: 2.3 };
const stop: HealthReading = { level: "stop", reason: "replica lag 12 s > 10 s", value: 12 };
const deadline = new Date(Date.now() + 3 * HOUR).toISOString();

let app: MemoryApp;

beforeAll(async () => {
  app = memoryApp(prefix, {
    tuned: { maxId: 100_000, config: { ...steady, autotune: {}, finishBy: deadline } },
    // One database's budget of 4 batches/s, weighted 1 : 3.
    shareA: { maxId: 100_000, config: { ...steady, budget: { key: "orders-db", perSecond: 4, weight: 1 } } },
    shareB: { maxId: 100_000, config: { ...steady, budget: { key: "orders-db", perSecond: 4, weight: 3 } } },
    slowed: { maxId: 100_000, config: { ...steady, autotune: {} }, health: [async () => slow] },
    stopped: { maxId: 100_000, config: { ...steady, health: { interval: 1, stopHold: 600 } }, health: [async () => stop] },
    pinned: { maxId: 100_000, config: steady },
    configured: { maxId: 100_000, config: steady },
    quick: { maxId: 20, config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 } },
  });
  for (const name of ["tuned", "shareA", "shareB", "slowed", "stopped", "pinned", "configured", "quick"]) await app.spreader.start(name);
});

afterAll(async () => {
  await app?.close();
});

const status = (name: string) => app.spreader.status(name);

describe("status shows the closed loop", () => {
  it("shows the rate in force under the configured ceiling, the tuned batch size, autotune's share and the deadline", async () => {
    await waitUntil("tuned's loop to plan its deadline", async () => (await status("tuned")).control?.deadline?.finishAt != null, 20_000);
    const s = (await run(["status", "tuned", "--json"])).json();
    expect(s.rate.configured).toMatchObject({ batchesPerSecond: 5, idsPerSecond: 50, batchSize: 10 });
    // 2,000 s of work in 3 h: deadline mode runs well under the ceiling.
    expect(s.rate.inForce.batchesPerSecond).toBeLessThan(5);
    expect(s.rate.inForce.batchesPerSecond).toBeGreaterThan(0);
    expect(s.control).toMatchObject({ ceiling: 5, configuredBatchSize: 10, share: expect.any(Number), health: { state: "clear", reason: null }, budget: null, pins: { perSecond: null, batchSize: null } });
    expect(s.control.deadline).toMatchObject({ finishBy: deadline, feasible: true, needs: null });
    expect(s.control.deadline.share).toBeLessThan(1);
    expect(Date.parse(s.control.deadline.finishAt)).toBeLessThanOrEqual(Date.parse(deadline));

    const text = (await run(["status", "tuned"])).stdout;
    expect(text).toMatch(/^ {2}rate {8}in force [\d.]+ batches\/s × [\d,]+ = [\d.]+ ids\/s \(configured 5 batches\/s × 10 = 50 ids\/s\)/m);
    expect(text).toMatch(/^ {2}control {5}deadline \S+: on pace \(/m);
    expect(text).toMatch(/^ {2}autotune {4}congestion share [\d.]+% of the ceiling, batch size [\d,]+ \((as configured|tuned; configured 10)\)/m);
    expect(text).toContain("  health      clear: no indicator said slow or stop at the last decision");
    expect(text).toMatch(new RegExp(`^ {2}deadline {4}${deadline.replace(/\.\d{3}Z$/, "Z")} \\(in .+\\): can be met; deadline mode runs at [\\d.]+% of the configured rates, finishing `, "m"));
    expect(text).toMatch(/^ {2}last tuned {2}(now|\S+ ago): rate [\d.]+\/s → [\d.]+\/s: deadline /m);
  });

  it("shows a health indicator saying slow, and one saying stop as a hold by the database's health", async () => {
    await waitUntil("slowed to be throttled", async () => (await status("slowed")).control?.reason?.includes("replica lag") === true, 20_000);
    const slowed = (await run(["status", "slowed", "--json"])).json();
    expect(slowed.control.health).toEqual({ state: "slow", reason: "replica lag 2.3 s > 1.5 s" });
    expect(slowed.rate.inForce.batchesPerSecond).toBeLessThan(slowed.rate.configured.batchesPerSecond);
    const slowText = (await run(["status", "slowed"])).stdout;
    expect(slowText).toContain("  health      slow: replica lag 2.3 s > 1.5 s (the rate was lowered)");
    expect(slowText).toMatch(/^ {2}control {5}throttled: slow: replica lag 2\.3 s > 1\.5 s \(/m);

    await waitUntil("stopped to be held", async () => (await status("stopped")).status === "held", 20_000);
    const stopped = (await run(["status", "stopped", "--json"])).json();
    expect(stopped.hold).toMatchObject({ cause: "health", reason: "health: replica lag 12 s > 10 s" });
    expect(stopped.health).toEqual({ state: "stop", reason: "replica lag 12 s > 10 s" });
    expect(slowed.health).toEqual(slowed.control.health);
    const stopText = (await run(["status", "stopped"])).stdout;
    expect(stopText).toMatch(/^ {2}HELD {8}held since .* by the database's health: replica lag 12 s > 10 s; looked at again .*It resumes by itself once no indicator says stop/m);
    expect(stopText).not.toContain("when a probe succeeds");
    expect(stopText).toContain("  health      stop: replica lag 12 s > 10 s (held)");
  });

  it("shows a shared budget: its members, their weights and this one's share", async () => {
    // The second to claim gets what the first left until the first claims again: wait for the weighted split.
    const caps = async () => [(await status("shareA")).control?.budget?.cap ?? null, (await status("shareB")).control?.budget?.cap ?? null];
    await waitUntil("both members to claim their weighted share", async () => {
      const [a, b] = await caps();
      return a != null && b != null && b > a;
    }, 20_000);
    const a = (await run(["status", "shareA", "--json"])).json();
    const b = (await run(["status", "shareB", "--json"])).json();
    expect(a.control.budget).toMatchObject({ key: "orders-db", perSecond: 4, weight: 1 });
    expect(b.control.budget).toMatchObject({ key: "orders-db", perSecond: 4, weight: 3 });
    expect(a.control.budget.members.map((m: { name: string; weight: number }) => [m.name, m.weight])).toEqual([
      ["shareA", 1],
      ["shareB", 3],
    ]);
    // Together they stay at the budget; the heavier one takes more.
    expect(a.control.budget.cap + b.control.budget.cap).toBeLessThanOrEqual(4 + 1e-9);
    expect(b.control.budget.cap).toBeGreaterThan(a.control.budget.cap);
    expect(a.control.budget.share).toBeCloseTo(a.control.budget.cap / 4, 6);
    const text = (await run(["status", "shareB"])).stdout;
    expect(text).toMatch(/^ {2}budget {6}"orders-db": 4 batches\/s, weight 3; this one may take [\d.]+\/s \([\d.]+%\)$/m);
    expect(text).toMatch(/^ {14}shared with shareA \(weight 1, [\d.]+\/s\)$/m);
  });

  it("shows no loop lines for a run nothing steers", async () => {
    const s = (await run(["status", "configured", "--json"])).json();
    expect(s.control).toBeNull();
    expect(s.health).toEqual({ state: "clear", reason: null });
    expect(s.rate.inForce).toEqual({ batchesPerSecond: 5, idsPerSecond: 50, batchSize: 10 });
    const text = (await run(["status", "configured"])).stdout;
    expect(text).toContain("  rate        configured 5 batches/s × 10 = 50 ids/s · observed");
    expect(text).not.toMatch(/^ {2}(control|autotune|health|budget) /m);
  });
});

describe("pin and unpin", () => {
  it("pins the rate and the batch size, shows them, records them, and unpins one or both", async () => {
    const pinned = await run(["pin", "pinned", "--rate", "2", "--batch-size", "25", "--reason", "incident 4711", "--json"]);
    expect(pinned.code).toBe(0);
    expect(pinned.json()).toMatchObject({ name: "pinned", changed: true, pins: { perSecond: 2, batchSize: 25 }, changes: { "pin.perSecond": { from: null, to: 2 }, "pin.batchSize": { from: null, to: 25 } } });
    expect((await status("pinned")).control?.pins).toEqual({ perSecond: 2, batchSize: 25 });

    const again = await run(["pin", "pinned", "--rate", "2"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("pinned: already pinned at these values; nothing was changed.\n");

    const text = (await run(["status", "pinned"])).stdout;
    expect(text).toContain("  pinned      rate 2 batches/s, batch size 25: the loop leaves them alone (`superspreader unpin pinned` lets it set them again)");
    expect(text).toMatch(/^ {2}control {5}rate pinned at 2\/s; batch size pinned at 25 \(2\/s of 5\/s, batch 25\)$/m);
    expect(text).toContain("  rate        in force 2 batches/s × 25 = 50 ids/s (configured 5 batches/s × 10 = 50 ids/s)");
    const history = (await run(["config", "get", "pinned", "--json"])).json();
    expect(history.history[0]).toMatchObject({ actor: "cli:tester", reason: "incident 4711", changes: { "pin.perSecond": { from: null, to: 2 }, "pin.batchSize": { from: null, to: 25 } } });
    expect((await run(["config", "get", "pinned"])).stdout).toMatch(/rate pinned at 2\/s.*batch size pinned at 25 ids/s);

    const rateOnly = await run(["unpin", "pinned", "--rate"]);
    expect(rateOnly.code).toBe(0);
    expect(rateOnly.stdout).toMatch(/^pinned: rate unpinned \(was 2\/s\); applied from the next cycle\. Next cycle: [\d.]+ of 5 batches\/s, batch size 25\.$/m);
    expect((await status("pinned")).control?.pins).toEqual({ perSecond: null, batchSize: 25 });
    expect((await run(["unpin", "pinned", "--rate"])).stdout).toBe("pinned: the rate is not pinned; nothing was changed.\n");

    const all = await run(["unpin", "pinned", "--json"]);
    expect(all.json()).toMatchObject({ changed: true, pins: { perSecond: null, batchSize: null }, changes: { "pin.batchSize": { from: 25, to: null } } });
    expect((await run(["unpin", "pinned"])).stdout).toBe("pinned: nothing is pinned; nothing was changed.\n");
  });

  it("refuses bad values naming the flag and value, and changes nothing", async () => {
    const before = await status("pinned");
    for (const [args, message] of [
      [["pin", "pinned"], "nothing to pin: pass --rate N (batches per second) or --batch-size N (ids)"],
      [["pin", "pinned", "--rate=-1"], '--rate must be a number of batches per second ≥ 0, got "-1"; nothing was changed'],
      [["pin", "pinned", "--rate", "fast"], '--rate must be a number of batches per second ≥ 0, got "fast"'],
      [["pin", "pinned", "--rate", "2", "--batch-size", "0"], '--batch-size must be a whole number of ids ≥ 1, got "0"'],
      [["pin", "pinned", "--batch-size", "2.5"], '--batch-size must be a whole number of ids ≥ 1, got "2.5"'],
      [["pin", "pinned", "--rate", "6"], "values.perSecond 6 is above the configured rates (perSecondOnPeak 5, perSecondOffPeak 5)"],
      [["pin", "pinned", "--rate"], "Option '--rate <value>' argument missing"],
      [["unpin", "pinned", "--rate=2"], "--rate takes no value here (see superspreader unpin --help)"],
      [["unpin", "pinned", "extra"], 'unexpected argument "extra"'],
      [["pin", "pinned", "--finish-by", "2030-01-01T00:00:00Z"], "--finish-by does not apply to `pin`"],
    ] as const) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toContain(message);
    }
    const after = await status("pinned");
    expect(after.revision).toBe(before.revision);
    expect(after.control?.pins ?? { perSecond: null, batchSize: null }).toEqual({ perSecond: null, batchSize: null });

    const unknown = await run(["pin", "pinnd", "--rate", "1"]);
    expect(unknown.code).toBe(3);
    await waitUntil("quick to complete", async () => (await status("quick")).status === "completed", 20_000);
    const ended = await run(["pin", "quick", "--rate", "1"]);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain('backfill "quick" is completed; only a running, held or paused backfill can be pinned');
  });

  it("has help pages that show unpin's flags without values", async () => {
    const pin = (await run(["pin", "--help"])).stdout;
    expect(pin).toContain("Usage: superspreader pin NAME [--rate N] [--batch-size N] [--reason TEXT] [--json]");
    expect(pin).toMatch(/^ {2}--rate N +pin: hold the rate at N batches\/s/m);
    const unpin = (await run(["unpin", "--help"])).stdout;
    expect(unpin).toMatch(/^ {2}--rate +pin: hold the rate/m);
    expect(unpin).toMatch(/^ {2}--batch-size +pin: hold the batch size/m);
    expect((await run(["--help"])).stdout).toMatch(/^ {2}pin NAME +hold the rate or batch size where you say/m);
  });
});

describe("estimate --finish-by", () => {
  it("says a deadline can be met, and when the run finishes at the share deadline mode would use", async () => {
    const far = new Date(Date.now() + 6 * HOUR).toISOString();
    const result = await run(["estimate", "configured", "--finish-by", far, "--json"]);
    expect(result.code).toBe(0);
    const { deadline: d } = result.json();
    expect(d).toMatchObject({ finishBy: far, feasible: true, needs: null, source: "--finish-by" });
    expect(d.share).toBeGreaterThan(0);
    expect(d.share).toBeLessThan(1);
    const text = (await run(["estimate", "configured", "--finish-by", far])).stdout;
    expect(text).toMatch(/^ {2}deadline {3}\S+ \(in .+\): can be met; deadline mode runs at [\d.]+% of the configured rates, finishing /m);
    expect(text).toContain("(the deadline of --finish-by: nothing was written)");
    expect((await status("configured")).config.finishBy).toBeNull();
  });

  it("says a deadline cannot be met, and which rates would make it, with the command that sets them", async () => {
    const near = new Date(Date.now() + 10 * 60_000).toISOString();
    const { deadline: d } = (await run(["estimate", "configured", "--finish-by", near, "--json"])).json();
    expect(d).toMatchObject({ finishBy: near, feasible: false });
    // ~2,000 s of work in 600 s: more than three times the configured rates.
    expect(d.needs.perSecondOnPeak).toBeGreaterThan(15);
    expect(d.needs.perSecondOffPeak).toBe(d.needs.perSecondOnPeak);
    const text = (await run(["estimate", "configured", "--finish-by", near])).stdout;
    expect(text).toMatch(/^ {2}deadline {3}\S+ \(in .+\): cannot be met: at perSecondOnPeak 5 and perSecondOffPeak 5 the run finishes \S+ \(in .+\)$/m);
    expect(text).toContain(`perSecondOnPeak ${d.needs.perSecondOnPeak} and perSecondOffPeak ${d.needs.perSecondOffPeak} would make it, or a later deadline:`);
    expect(text).toContain(`  superspreader config set configured perSecondOnPeak=${d.needs.perSecondOnPeak} perSecondOffPeak=${d.needs.perSecondOffPeak}`);
  });

  it("plans the config's finishBy without the flag, and none without a deadline", async () => {
    const tuned = (await run(["estimate", "tuned", "--json"])).json();
    expect(tuned.deadline).toMatchObject({ finishBy: deadline, feasible: true, source: "config" });
    expect((await run(["estimate", "configured", "--json"])).json().deadline).toBeNull();
    expect((await run(["estimate", "configured"])).stdout).not.toContain("deadline");
  });

  it("refuses a --finish-by that is not an instant, or has passed", async () => {
    for (const [value, message] of [
      ["tomorrow", '--finish-by must be an ISO 8601 instant such as 2026-12-24T00:00:00Z, got "tomorrow"'],
      ["1767225600000", '--finish-by must be an ISO 8601 instant such as 2026-12-24T00:00:00Z, got "1767225600000"'],
      ["2020-01-01T00:00:00Z", '--finish-by 2020-01-01T00:00:00Z has passed: give a later instant, got "2020-01-01T00:00:00Z"'],
    ] as const) {
      const result = await run(["estimate", "configured", "--finish-by", value]);
      expect(result.code, value).toBe(2);
      expect(result.stderr).toContain(message);
    }
    expect((await run(["estimate", "--help"])).stdout).toMatch(/^ {2}--finish-by ISO +a deadline to plan for/m);
  });
});

describe("config set takes the loop's fields", () => {
  it("refuses a deadline the configured rates cannot meet, with the rates that would, dry run or not", async () => {
    const near = new Date(Date.now() + 10 * 60_000).toISOString();
    const before = await status("configured");
    for (const extra of [["--dry-run"], []]) {
      const result = await run(["config", "set", "configured", `finishBy=${near}`, ...extra]);
      expect(result.code, extra.join(" ")).toBe(2);
      expect(result.stderr).toMatch(/finishBy \S+ cannot be met: at perSecondOnPeak 5 and perSecondOffPeak 5 the run finishes \S+; perSecondOnPeak [\d.]+ and perSecondOffPeak [\d.]+ (\([\d.]+× the configured rates\) )?would, or a later deadline; nothing was changed/);
    }
    expect((await status("configured")).revision).toBe(before.revision);
  });

  it("sets a deadline it can meet and says at what share, and clears it with null", async () => {
    const far = new Date(Date.now() + 6 * HOUR).toISOString();
    const dry = await run(["config", "set", "configured", `finishBy=${far}`, "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    expect(dry.json()).toMatchObject({ dryRun: true, deadline: { finishBy: far, feasible: true } });
    const set = await run(["config", "set", "configured", `finishBy=${far}`, "--reason", "due before the release"]);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain(`  finishBy: null → ${far.replace(/\.\d{3}Z$/, "Z")}`);
    expect(set.stdout).toMatch(/^ {2}deadline: \S+ \(in .+\) can be met; deadline mode runs at [\d.]+% of the configured rates/m);
    expect((await status("configured")).config.finishBy).toBe(Date.parse(far));
    const cleared = await run(["config", "set", "configured", "finishBy=null"]);
    expect(cleared.stdout).toContain(`  finishBy: ${far.replace(/\.\d{3}Z$/, "Z")} → null`);
    expect((await status("configured")).config.finishBy).toBeNull();
  });

  it("sets autotune, health and a budget, and refuses bad values naming the field and value", async () => {
    const set = await run(["config", "set", "configured", "autotune={}", 'health={"interval":2}', 'budget={"key":"orders-db","perSecond":8}', "--json"]);
    expect(set.code).toBe(0);
    expect(set.json().changes).toMatchObject({ autotune: { from: null }, health: { to: { interval: 2 } }, budget: { from: null, to: { key: "orders-db", perSecond: 8, weight: 1 } } });
    const before = await status("configured");
    for (const [word, message] of [
      ['autotune={"batchSize":{"min":0}}', "autotune.batchSize.min"],
      ['autotune={"batchSize":{"min":50,"max":10}}', "autotune.batchSize.max must be at least autotune.batchSize.min (50), got 10"],
      ['autotune={"rate":{"minShare":2}}', "autotune.rate.minShare"],
      ['autotune={"targetBatchMs":100}', "targetBatchMs"],
      ['health={"interval":-1}', "health.interval"],
      ['budget={"key":"orders db","perSecond":8}', 'budget.key must be 1–100 letters, digits, "_", "." or "-" naming the shared budget (e.g. the database), got "orders db"'],
      ['budget={"key":"orders-db","perSecond":-1}', "budget.perSecond"],
      ["finishBy=tomorrow", 'finishBy must be an ISO 8601 instant ("2026-12-24T00:00:00Z") or epoch ms, got "tomorrow"'],
    ] as const) {
      const result = await run(["config", "set", "configured", word]);
      expect(result.code, word).toBe(2);
      expect(result.stderr, word).toContain(message);
      expect(result.stderr, word).toContain("nothing was changed");
    }
    expect((await status("configured")).revision).toBe(before.revision);
    const page = (await run(["config", "set", "--help"])).stdout;
    expect(page).toContain("autotune, health, budget, finishBy");
  });
});
