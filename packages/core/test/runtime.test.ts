import { describe, expect, it } from "vitest";
import { createMemoryIdSource, createSuperSpreader, isSuperSpreaderError, type BatchJobData, type JobOutcome } from "../src/index.js";
import { DOC_CACHE_MS } from "../src/context.js";
import { T0, idCounter, world } from "./harness.js";

const config = { batchSize: 100, duration: 10, perSecondOnPeak: 50, perSecondOffPeak: 50 };

describe("runtime", () => {
  it("runs a 100,000-id backfill on a fake clock, calling the handler once per id", async () => {
    const w = world();
    const ids = idCounter(100_000);
    w.spreader.define("full", { source: createMemoryIdSource({ minId: 1, maxId: 100_000 }), config, handle: ids.handle });
    const completed: string[] = [];
    w.spreader.on("completed", (e) => completed.push(e.status));
    await w.spreader.start("full");
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    const status = await w.spreader.status("full");
    expect(status.status).toBe("completed");
    expect(status.progress).toMatchObject({ idsTotal: 100_000n, idsDone: 100_000n, fraction: 1, batchesDone: 1000 });
    expect((await w.spreader.audit("full")).gaps).toEqual([]);
    expect(completed).toEqual(["completed"]);
    // 1000 batches at 50/s over 10 s cycles: 500 per cycle, two cycles, then a tick that finds the run complete.
    const batches = w.batchJobs();
    expect(batches).toHaveLength(1000);
    expect(new Set(batches.map((b) => b.cycle))).toEqual(new Set([0, 1]));
  });

  it("a pause written by another process stops this worker's on-time batches within DOC_CACHE_MS", async () => {
    const w = world();
    const handled: bigint[] = [];
    // 5 batches/s: slots 200 ms apart, so one falls inside the cache's age and the next ones outside it.
    const slow = { batchSize: 10, duration: 10, perSecondOnPeak: 5, perSecondOffPeak: 5, spreadWithinSecond: true };
    const definition = { source: createMemoryIdSource({ minId: 1, maxId: 1_000 }), config: slow, handle: async ({ beginId }: { beginId: bigint }) => void handled.push(beginId) };
    w.spreader.define("paused-elsewhere", definition);
    // The operator's process: the same store, its own runtime (and so its own document cache).
    const operator = createSuperSpreader({ queue: w.queue, store: w.store, clock: w.clock });
    operator.define("paused-elsewhere", definition);
    await w.spreader.start("paused-elsewhere");
    await w.run(1); // the tick plans cycle 0 (and this process remembers the running document)
    const batches = w.batchJobs("paused-elsewhere").sort((a, b) => (a.scheduledAt ?? 0) - (b.scheduledAt ?? 0));
    const context = { attempt: 1, maxAttempts: 3, signal: new AbortController().signal };
    const at = (batch: BatchJobData | undefined) => batch?.scheduledAt ?? 0;
    w.clock.set(at(batches[0]));
    expect(await w.spreader.perform(batches[0] as BatchJobData, context)).toBe("done");
    await operator.pause("paused-elsewhere");
    // Within the cache's age an on-time batch may still go by the running document it read…
    w.clock.set(Math.max(w.clock.now(), at(batches[1])));
    expect(w.clock.now() - at(batches[0])).toBeLessThanOrEqual(DOC_CACHE_MS);
    expect(await w.spreader.perform(batches[1] as BatchJobData, context)).toBe("done");
    // …but past it every batch reads the state again, sees the pause and is deferred, not run.
    const later = batches.find((b) => at(b) > at(batches[0]) + DOC_CACHE_MS && at(b) <= at(batches[0]) + 900) as BatchJobData;
    w.clock.set(at(later));
    expect(await w.spreader.perform(later, context)).toBe("deferred");
    expect(handled).toEqual([BigInt(batches[0]?.beginId ?? 0), BigInt(batches[1]?.beginId ?? 0)]);
    expect((await w.spreader.audit("paused-elsewhere")).deferred.length).toBe(1);
  });

  it("refuses a transactional backfill on a store without transactions, naming the field, and defines nothing", async () => {
    const w = world();
    const define = (transactional: unknown) =>
      w.spreader.define("tx", { transactional, source: createMemoryIdSource({ minId: 1, maxId: 10 }), config, handle: async () => {} } as never);
    expect(() => define(true)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", field: "transactional", message: expect.stringContaining("@superspreader/store-drizzle") }));
    expect(() => define("yes")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", field: "transactional", message: expect.stringContaining('"yes"') }));
    expect(w.spreader.defined()).toEqual([]);
  });

  it("paces batches at the configured rate, cycle after cycle from the cycle's start", async () => {
    const w = world();
    w.spreader.define("paced", {
      source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
      config: { batchSize: 10, duration: 2, perSecondOnPeak: 3, perSecondOffPeak: 3 },
      handle: async () => {},
    });
    await w.spreader.start("paced");
    await w.run();
    const jobs = w.queue.all().filter((r) => r.job.data.kind === "batch");
    const offsets = jobs.slice(0, 12).map((r) => (r.job.runAt - T0) / 1000);
    expect(offsets).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    const ticks = w.queue.all().filter((r) => r.job.data.kind === "tick");
    expect(ticks.slice(0, 4).map((r) => (r.job.runAt - T0) / 1000)).toEqual([0, 2, 4, 6]);
  });

  it("pauses without losing work: deferred batches run after resume", async () => {
    const w = world();
    const ids = idCounter(10_000);
    w.spreader.define("pausing", { source: createMemoryIdSource({ minId: 1, maxId: 10_000 }), config, handle: ids.handle });
    await w.spreader.start("pausing");
    await w.run(40);
    await w.spreader.pause("pausing");
    await w.run();
    const paused = await w.spreader.status("pausing");
    expect(paused.status).toBe("paused");
    expect(paused.progress.batchesDeferred).toBeGreaterThan(0);
    expect(ids.missing().length).toBeGreaterThan(0);
    await w.spreader.resume("pausing");
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    expect((await w.spreader.status("pausing")).status).toBe("completed");
    expect((await w.spreader.audit("pausing")).deferred).toEqual([]);
  });

  it("cancels: queued jobs become no-ops", async () => {
    const w = world();
    const ids = idCounter(10_000);
    w.spreader.define("cancelling", { source: createMemoryIdSource({ minId: 1, maxId: 10_000 }), config, handle: ids.handle });
    await w.spreader.start("cancelling");
    await w.run(20);
    await w.spreader.cancel("cancelling");
    const before = ids.missing().length;
    await w.run();
    expect(ids.missing().length).toBe(before);
    expect((await w.spreader.status("cancelling")).status).toBe("cancelled");
    await expect(w.spreader.pause("cancelling")).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("records a range that keeps failing, ends the run as failed, and retries it on request", async () => {
    const w = world();
    const ids = idCounter(1_000);
    let broken = true;
    w.spreader.define("flaky", {
      source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
      config: { ...config, batchSize: 10, maxAttempts: 2 },
      handle: async (ctx) => {
        if (broken && ctx.beginId <= 500n && ctx.endId >= 500n) throw new TypeError("row 500 is malformed");
        await ids.handle(ctx);
      },
    });
    const failures: boolean[] = [];
    w.spreader.on("batchFailed", (e) => failures.push(e.final));
    await w.spreader.start("flaky");
    await w.run();
    expect(failures).toEqual([false, true]);
    const audit = await w.spreader.audit("flaky");
    expect(audit.failed).toMatchObject([{ beginId: 491n, endId: 500n, error: "row 500 is malformed", errorName: "TypeError", attempts: 2 }]);
    expect(audit.gaps).toEqual([{ beginId: 491n, endId: 500n }]);
    expect((await w.spreader.status("flaky")).status).toBe("failed");
    broken = false;
    expect(await w.spreader.retryFailed("flaky")).toBe(1);
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    expect((await w.spreader.status("flaky")).status).toBe("completed");
  });

  it("runs two backfills at once, each with its own config and ids", async () => {
    const w = world();
    const a = idCounter(5_000);
    const b = idCounter(3_000);
    w.spreader.define("alpha", { source: createMemoryIdSource({ minId: 1, maxId: 5_000 }), config, handle: a.handle });
    w.spreader.define("beta", {
      source: createMemoryIdSource({ minId: 1, maxId: 3_000 }),
      config: { batchSize: 7, duration: 3, perSecondOnPeak: 20, perSecondOffPeak: 20 },
      handle: b.handle,
    });
    await w.spreader.start("alpha");
    await w.spreader.start("beta");
    await w.run();
    expect(a.mismatches(1)).toEqual([]);
    expect(b.mismatches(1)).toEqual([]);
    expect(w.batchJobs("beta").every((j) => BigInt(j.endId) - BigInt(j.beginId) < 7n)).toBe(true);
    expect(await w.spreader.list()).toEqual(["alpha", "beta"]);
  });

  it("starts no second tick chain when start is called again", async () => {
    const w = world();
    const ids = idCounter(20_000);
    w.spreader.define("once", { source: createMemoryIdSource({ minId: 1, maxId: 20_000 }), config, handle: ids.handle });
    await w.spreader.start("once");
    await w.run(3);
    await w.spreader.start("once");
    await w.spreader.start("once");
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    const planned = w.queue.all().filter((r) => r.job.data.kind === "tick" && r.outcome === ("planned" satisfies JobOutcome));
    const cycles = planned.map((r) => r.job.data.cycle);
    expect(new Set(cycles).size).toBe(cycles.length);
  });

  it("starts one run when several processes call start at once", async () => {
    const w = world();
    const ids = idCounter(5_000);
    w.spreader.define("racing", { source: createMemoryIdSource({ minId: 1, maxId: 5_000 }), config, handle: ids.handle });
    const statuses = await Promise.all([w.spreader.start("racing"), w.spreader.start("racing"), w.spreader.start("racing")]);
    expect(new Set(statuses.map((s) => s.runId)).size).toBe(1);
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
  });

  it("does not re-run a finished backfill unless asked to restart", async () => {
    const w = world();
    const ids = idCounter(1_000);
    w.spreader.define("rerun", { source: createMemoryIdSource({ minId: 1, maxId: 1_000 }), config, handle: ids.handle });
    const first = await w.spreader.start("rerun");
    await w.run();
    expect((await w.spreader.start("rerun")).runId).toBe(first.runId);
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    const second = await w.spreader.start("rerun", { restart: true });
    expect(second.runId).not.toBe(first.runId);
    await w.run();
    expect(ids.mismatches(2)).toEqual([]);
  });

  it("completes at once over an empty source", async () => {
    const w = world();
    w.spreader.define("empty", { source: createMemoryIdSource({ ids: [] }), config, handle: async () => {} });
    const status = await w.spreader.start("empty");
    expect(status.status).toBe("completed");
    expect(status.progress.fraction).toBe(1);
    expect(w.queue.all()).toHaveLength(0);
  });

  it("applies a config change from the next cycle and records it; a bad change writes nothing", async () => {
    const w = world();
    const ids = idCounter(100_000);
    w.spreader.define("tuned", { source: createMemoryIdSource({ minId: 1, maxId: 100_000 }), config, handle: ids.handle });
    await w.spreader.start("tuned");
    await w.run(1);
    await w.spreader.updateConfig("tuned", { batchSize: 250 }, { actor: "ops", reason: "db is quiet" });
    await expect(w.spreader.updateConfig("tuned", { batchSize: -1 })).rejects.toMatchObject({ code: "INVALID_CONFIG", field: "batchSize" });
    await expect(w.spreader.updateConfig("tuned", { bogus: 1 } as never)).rejects.toMatchObject({ code: "INVALID_CONFIG", field: "bogus" });
    expect((await w.spreader.status("tuned")).config.batchSize).toBe(250);
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    const sizes = new Set(w.batchJobs().map((j) => Number(BigInt(j.endId) - BigInt(j.beginId) + 1n)));
    expect(sizes.has(100)).toBe(true);
    expect(sizes.has(250)).toBe(true);
    const [latest] = await w.store.listConfigChanges("tuned", 1);
    expect(latest).toMatchObject({ actor: "ops", reason: "db is quiet", changes: { batchSize: { from: 100, to: 250 } } });
  });

  it("keeps ticking without work while the rate is 0", async () => {
    const w = world();
    const ids = idCounter(100);
    w.spreader.define("idle", {
      source: createMemoryIdSource({ minId: 1, maxId: 100 }),
      config: { batchSize: 10, duration: 60, perSecondOnPeak: 1, perSecondOffPeak: 0, peak: { timezone: "UTC", days: "Mon-Fri", hours: [1, 2] } },
      handle: ids.handle,
    });
    await w.spreader.start("idle"); // Monday 00:00 UTC: off peak, rate 0
    await w.run(30); // 30 ticks, 30 minutes
    expect(ids.missing()).toHaveLength(100);
    expect((await w.spreader.status("idle")).cycle).toBe(30);
    await w.run(); // 01:00 brings the on-peak window
    expect(ids.mismatches(1)).toEqual([]);
    expect((await w.spreader.status("idle")).status).toBe("completed");
  });

  it("keeps ids beyond 2^53 exact end to end", async () => {
    const w = world();
    const top = 2n ** 63n - 1n;
    const seen: bigint[] = [];
    w.spreader.define("big", {
      source: createMemoryIdSource({ minId: top - 999n, maxId: top }),
      config: { ...config, batchSize: 37 },
      handle: async ({ beginId, endId }) => {
        for (let id = beginId; id <= endId; id++) seen.push(id);
      },
    });
    await w.spreader.start("big");
    await w.run();
    expect(seen).toHaveLength(1000);
    expect(new Set(seen).size).toBe(1000);
    expect(seen.every((id) => id >= top - 999n && id <= top)).toBe(true);
    expect((await w.spreader.audit("big")).done).toEqual([{ beginId: top - 999n, endId: top }]);
  });

  it("refuses work it cannot do, with errors that say what to do", async () => {
    const w = world();
    await expect(w.spreader.start("nope")).rejects.toMatchObject({ code: "UNKNOWN_BACKFILL" });
    await expect(w.spreader.status("nope")).rejects.toThrow(/not found/);
    expect(() => w.spreader.define("bad name", { source: createMemoryIdSource({ ids: [] }), config, handle: async () => {} })).toThrow(
      /name must be/,
    );
    expect(() => w.spreader.define("x", { source: createMemoryIdSource({ ids: [] }), config: { ...config, duration: 0 }, handle: async () => {} })).toThrow(
      /duration must be/,
    );
    await expect(w.spreader.perform({ kind: "batch", backfill: "x" }, { attempt: 1, maxAttempts: 1, signal: new AbortController().signal })).rejects.toMatchObject({
      code: "CORRUPT_DATA",
    });
    // A worker without the definition must not consume the job.
    const other = world();
    other.spreader.define("only-here", { source: createMemoryIdSource({ minId: 1, maxId: 10 }), config, handle: async () => {} });
    await other.spreader.start("only-here");
    await other.run(1); // the tick
    const job = other.queue.all().find((r) => r.job.data.kind === "batch");
    const stranger = world();
    await stranger.store.compareAndSet("only-here", 0, (await other.store.get("only-here"))?.value);
    const error = await (async () => {
      try {
        await (await import("../src/index.js"))
          .createSuperSpreader({ queue: stranger.queue, store: stranger.store })
          .perform(job?.job.data, { attempt: 1, maxAttempts: 3, signal: new AbortController().signal });
      } catch (e) {
        return e;
      }
    })();
    expect(isSuperSpreaderError(error) && error.code).toBe("UNKNOWN_BACKFILL");
  });
});

describe("shutdown", () => {
  it("does not record a range as failed when its last attempt was aborted by shutdown", async () => {
    const w = world();
    w.spreader.define("aborted", {
      source: createMemoryIdSource({ minId: 1, maxId: 10 }),
      config: { ...config, maxAttempts: 1 },
      handle: async ({ signal }) => {
        if (signal.aborted) throw new DOMException("shutting down", "AbortError");
      },
    });
    await w.spreader.start("aborted");
    await w.run(1); // the tick
    const job = w.queue.all().find((r) => r.job.data.kind === "batch")!;
    const controller = new AbortController();
    controller.abort();
    await expect(w.spreader.perform(job.job.data, { attempt: 1, maxAttempts: 1, signal: controller.signal })).rejects.toThrow("shutting down");
    expect((await w.spreader.audit("aborted")).failed).toEqual([]);
    await expect(w.spreader.perform(job.job.data, { attempt: 1, maxAttempts: 1, signal: new AbortController().signal })).resolves.toBe("done");
  });
});

describe("a dead tick chain", () => {
  it("shows as an overdue tick and is revived by start() without a second chain", async () => {
    const w = world();
    const ids = idCounter(10_000);
    w.spreader.define("revive", { source: createMemoryIdSource({ minId: 1, maxId: 10_000 }), config: { ...config, batchSize: 10 }, handle: ids.handle });
    await w.spreader.start("revive");
    await w.run(1); // cycle 0 planned; tick 1 queued for +10 s
    await w.run(w.batchJobs().length); // the batches of cycle 0
    const tick = w.queue.all().find((r) => r.job.data.kind === "tick" && r.job.data.cycle === 1)!;
    w.clock.set(tick.runAt);
    expect(w.queue.claim()?.job.id).toBe(tick.job.id); // a worker takes tick 1 and dies for good: the job is lost
    w.clock.advance(60_000);
    expect((await w.spreader.status("revive")).tickOverdueMs).toBe(60_000);
    expect(ids.missing().length).toBeGreaterThan(0);
    await w.spreader.start("revive");
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    expect((await w.spreader.status("revive")).status).toBe("completed");
  });
});

describe("stored state edited by hand", () => {
  it("is reported as CORRUPT_DATA naming the backfill, even after a valid read", async () => {
    const w = world();
    w.spreader.define("edited", { source: createMemoryIdSource({ minId: 1, maxId: 100 }), config, handle: async () => {} });
    await w.spreader.start("edited");
    await w.spreader.status("edited");
    const stored = (await w.store.get("edited"))!;
    const value = stored.value as { config: Record<string, unknown> };
    await w.store.compareAndSet("edited", stored.version, { ...value, config: { ...value.config, batchSize: 0 } });
    await expect(w.spreader.status("edited")).rejects.toMatchObject({ code: "CORRUPT_DATA" });
    await expect(w.spreader.status("edited")).rejects.toThrow(/backfill "edited".*batchSize must be a whole number/);
  });
});
