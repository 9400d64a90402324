import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMemoryIdSource, createSuperSpreader, type IdSource } from "../src/index.js";
import { idCounter, world, type World } from "./harness.js";

const config = { batchSize: 10, duration: 2, perSecondOnPeak: 10, perSecondOffPeak: 10 };

/** A table that grows: `maxId()` answers whatever `grow` set last. */
function growing(max: number): IdSource & { grow(to: number): void } {
  let top = BigInt(max);
  return { capabilities: {}, minId: async () => 1n, maxId: async () => top, grow: (to) => (top = BigInt(to)) };
}

/** Ranges of the batch jobs the scheduler enqueued, by "begin-end", with how often. */
function enqueued(w: World, name: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const job of w.batchJobs(name)) seen.set(`${job.beginId}-${job.endId}`, (seen.get(`${job.beginId}-${job.endId}`) ?? 0) + 1);
  return seen;
}

describe("extend (catch-up)", () => {
  it("extends a completed run to the new rows only, and runs no finished range again", async () => {
    const w = world();
    const source = growing(200);
    const counter = idCounter(350);
    w.spreader.define("grow", { source, config, handle: counter.handle });
    await w.spreader.start("grow");
    await w.run();
    expect((await w.spreader.status("grow")).status).toBe("completed");
    source.grow(350);
    const report = await w.spreader.extend("grow", { actor: "alice", reason: "rows since the start" });
    expect(report).toMatchObject({ extended: true, fromId: 200n, toId: 350n, added: { beginId: 201n, endId: 350n }, sourceMaxId: 350n, revived: true, requested: false, status: "running" });
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    const status = await w.spreader.status("grow");
    expect(status.status).toBe("completed");
    expect(status.progress.idsTotal).toBe(350n);
    expect(status.progress.idsDone).toBe(350n);
    expect(status.unplanned).toEqual([]);
    const audit = await w.spreader.audit("grow");
    expect(audit.initialId).toBe(350n);
    expect(audit.gaps).toEqual([]);
    expect([...enqueued(w, "grow").values()].every((n) => n === 1)).toBe(true);
    const history = await w.store.listConfigChanges("grow", 5);
    expect(history[0]).toMatchObject({ actor: "alice", reason: "rows since the start", changes: { initialId: { from: "200", to: "350" } } });
  });

  it("is a no-op that says so when nothing is new, and repeatable when something is", async () => {
    const w = world();
    const source = growing(100);
    const counter = idCounter(400);
    w.spreader.define("again", { source, config, handle: counter.handle });
    await w.spreader.start("again");
    await w.run();
    const before = await w.spreader.status("again");
    const none = await w.spreader.extend("again");
    expect(none).toMatchObject({ extended: false, fromId: 100n, toId: 100n, added: null, revived: false, status: "completed" });
    expect((await w.spreader.status("again")).revision).toBe(before.revision);
    source.grow(250);
    expect((await w.spreader.extend("again")).added).toEqual({ beginId: 101n, endId: 250n });
    source.grow(400);
    // The second extension, before the first is planned: its span is queued after the first.
    expect((await w.spreader.extend("again")).added).toEqual({ beginId: 251n, endId: 400n });
    expect((await w.spreader.status("again")).unplanned).toEqual([
      { beginId: 101n, endId: 250n },
      { beginId: 251n, endId: 400n },
    ]);
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    expect((await w.spreader.audit("again")).complete).toBe(true);
  });

  it("extends a running run mid-way: the new span is planned after the current one, status and ETA cover it", async () => {
    const w = world();
    const source = growing(1_000);
    const counter = idCounter(1_500);
    w.spreader.define("mid", { source, config: { ...config, perSecondOffPeak: 5 }, handle: counter.handle });
    await w.spreader.start("mid");
    await w.run(12);
    const before = await w.spreader.status("mid");
    const etaBefore = (await w.spreader.eta("mid"))!;
    source.grow(1_500);
    const report = await w.spreader.extend("mid");
    expect(report).toMatchObject({ extended: true, revived: false, status: "running" });
    const after = await w.spreader.status("mid");
    expect(after.progress.idsTotal).toBe(1_500n);
    expect(after.cursor).toBe(before.cursor);
    expect(after.unplanned.at(-1)).toEqual({ beginId: 1_001n, endId: 1_500n });
    const etaAfter = (await w.spreader.eta("mid"))!;
    expect(etaAfter.idsRemaining).toBe(etaBefore.idsRemaining + 500n);
    expect(etaAfter.finishAt!).toBeGreaterThan(etaBefore.finishAt!);
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    expect((await w.spreader.status("mid")).status).toBe("completed");
  });

  it("leaves a paused run paused, and its new span is planned after the resume", async () => {
    const w = world();
    const source = growing(300);
    const counter = idCounter(400);
    w.spreader.define("paused", { source, config, handle: counter.handle });
    await w.spreader.start("paused");
    await w.run(5);
    await w.spreader.pause("paused");
    source.grow(400);
    expect(await w.spreader.extend("paused")).toMatchObject({ extended: true, status: "paused", revived: false });
    await w.run();
    await w.spreader.resume("paused");
    await w.run();
    expect(counter.missing()).toEqual([]);
    expect((await w.spreader.audit("paused")).complete).toBe(true);
  });

  it("autoExtend: the tick extends the run to rows inserted during it before completing", async () => {
    const w = world();
    const source = growing(200);
    const counter = idCounter(260);
    let inserted = false;
    w.spreader.define("auto", {
      source,
      config: { ...config, autoExtend: true },
      handle: async (batch) => {
        await counter.handle(batch);
        // The application inserts rows while the backfill runs.
        if (!inserted) {
          inserted = true;
          source.grow(260);
        }
      },
    });
    await w.spreader.start("auto");
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    const status = await w.spreader.status("auto");
    expect(status).toMatchObject({ status: "completed", initialId: 260n });
    expect((await w.store.listConfigChanges("auto", 5)).some((c) => c.actor === "autoExtend")).toBe(true);
  });

  it("without autoExtend, rows inserted during the run are left to extend", async () => {
    const w = world();
    const source = growing(200);
    w.spreader.define("manual", { source, config, handle: async () => source.grow(260) });
    await w.spreader.start("manual");
    await w.run();
    expect(await w.spreader.status("manual")).toMatchObject({ status: "completed", initialId: 200n });
  });

  it("an extension landing between a stored plan and its enqueue neither loses nor doubles a span", async () => {
    // The tick stores its plan, then dies before enqueueing it (outstanding entries go first).
    let failNext = false;
    const w = world({
      store: (s) => ({
        ...s,
        addOutstanding: async (...args: Parameters<typeof s.addOutstanding>) => {
          if (failNext) {
            failNext = false;
            throw new Error("killed after storing the plan");
          }
          return s.addOutstanding(...args);
        },
      }),
    });
    const source = growing(100);
    const counter = idCounter(300);
    w.spreader.define("race", { source, config, handle: counter.handle });
    await w.spreader.start("race");
    await w.run();
    source.grow(200);
    await w.spreader.extend("race");
    failNext = true;
    await w.run(1);
    const stored = (await w.store.get("race"))!.value as { pending: { spanTaken?: boolean; cursor: string; floor: string } | null; spans: unknown[] };
    // The stored plan took the first queued span, which the document still lists until the plan is finalised.
    expect(stored.pending).toMatchObject({ spanTaken: true, cursor: "200", floor: "101" });
    expect(stored.spans).toEqual([{ beginId: "101", endId: "200" }]);
    source.grow(300);
    await w.spreader.extend("race");
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    expect([...enqueued(w, "race").values()].every((n) => n === 1)).toBe(true);
    expect(await w.spreader.status("race")).toMatchObject({ status: "completed", initialId: 300n, unplanned: [] });
  });

  it("refuses a cancelled run, naming it", async () => {
    const w = world();
    w.spreader.define("gone", { source: growing(50), config, handle: async () => {} });
    await w.spreader.start("gone");
    await w.spreader.cancel("gone");
    await expect(w.spreader.extend("gone")).rejects.toMatchObject({ code: "INVALID_STATE", message: expect.stringContaining('backfill "gone" is cancelled') });
  });

  it("from a process that does not define the backfill, writes a request a worker's watchdog carries out", async () => {
    const w = world();
    const source = growing(100);
    const counter = idCounter(180);
    w.spreader.define("far", { source, config, handle: counter.handle });
    await w.spreader.start("far");
    await w.run();
    source.grow(180);
    const cli = createSuperSpreader({ queue: null, store: w.store, clock: w.clock });
    const asked = await cli.extend("far", { actor: "cli:bob" });
    expect(asked).toMatchObject({ requested: true, extended: false, status: "completed" });
    expect((await w.store.get("far"))!.value).toMatchObject({ extendRequest: { actor: "cli:bob" } });
    await w.spreader.watchdog();
    expect((await w.store.get("far"))!.value).toMatchObject({ extendRequest: null, lastExtend: { actor: "cli:bob", extended: true, fromId: "100", toId: "180" } });
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    expect((await w.spreader.status("far")).status).toBe("completed");
  });
});

describe("state written by the previous version", () => {
  // Captured from the version before extensions (no floor, spans, extendRequest, lastExtend): a run
  // between cycles, the same run with a stored plan of cycle 1 not yet finalised, and a completed run.
  const fixtures = JSON.parse(readFileSync(new URL("./fixtures/v1-docs.json", import.meta.url), "utf8")) as Record<"running" | "pending" | "completed", Record<string, unknown>>;

  for (const which of ["running", "pending"] as const) {
    it(`loads a ${which} run unchanged and finishes it, every id once`, async () => {
      const doc = fixtures[which];
      expect(doc).not.toHaveProperty("spans");
      const w = world();
      w.clock.set(doc.nextTickAt as number);
      const counter = idCounter(100);
      // What cycle 0 enqueued before the fixture was written: 40 ids, 61..100, already done.
      for (let id = 61; id <= 100; id++) counter.counts[id] = 1;
      w.spreader.define("legacy", { source: createMemoryIdSource({ minId: 1, maxId: 100 }), config: { batchSize: 10, duration: 2, perSecondOnPeak: 2, perSecondOffPeak: 2 }, handle: counter.handle });
      await w.store.compareAndSet("legacy", 0, doc);
      for (let end = 100; end > 60; end -= 10) await w.store.markDone("legacy", doc.runId as string, { beginId: BigInt(end - 9), endId: BigInt(end), cycle: 0 }, w.clock.now());
      const status = await w.spreader.status("legacy");
      expect(status).toMatchObject({ status: "running", minId: 1n, initialId: 100n, cursor: 60n, unplanned: [{ beginId: 1n, endId: 60n }] });
      expect(status.progress.idsTotal).toBe(100n);
      await w.spreader.start("legacy"); // revives the chain (the fixture's tick is not in this queue)
      await w.run();
      expect(counter.mismatches(1)).toEqual([]);
      expect(await w.spreader.audit("legacy")).toMatchObject({ complete: true, gaps: [] });
    });
  }

  it("loads a completed run and extends it", async () => {
    const doc = fixtures.completed;
    const w = world();
    const source = growing(100);
    const counter = idCounter(130);
    w.spreader.define("legacy", { source, config: { batchSize: 10, duration: 2, perSecondOnPeak: 2, perSecondOffPeak: 2 }, handle: counter.handle });
    await w.store.compareAndSet("legacy", 0, doc);
    for (let end = 100; end > 0; end -= 10) await w.store.markDone("legacy", doc.runId as string, { beginId: BigInt(end - 9), endId: BigInt(end), cycle: 0 }, w.clock.now());
    for (let id = 1; id <= 100; id++) counter.counts[id] = 1;
    expect(await w.spreader.status("legacy")).toMatchObject({ status: "completed", initialId: 100n, unplanned: [] });
    source.grow(130);
    expect(await w.spreader.extend("legacy")).toMatchObject({ extended: true, revived: true, added: { beginId: 101n, endId: 130n } });
    await w.run();
    expect(counter.mismatches(1)).toEqual([]);
    expect(await w.spreader.status("legacy")).toMatchObject({ status: "completed", initialId: 130n });
  });
});
