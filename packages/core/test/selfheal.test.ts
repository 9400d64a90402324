import { describe, expect, it } from "vitest";
import {
  createMemoryIdSource,
  createSuperSpreader,
  type JobProcessor,
  type JobQueue,
  type QueueJob,
  type StateStore,
  type SuperSpreader,
} from "../src/index.js";
import { T0, idCounter, world, type World } from "./harness.js";

const config = { batchSize: 100, duration: 10, perSecondOnPeak: 10, perSecondOffPeak: 10 };
const SIZE = 20_000;

/** A queue that silently loses the first job `lose` picks (deleted by hand, lost in a Redis restart). */
function losing(lose: (job: QueueJob) => boolean) {
  let lost = false;
  const keep = (j: QueueJob) => {
    if (lost || !lose(j)) return true;
    lost = true;
    return false;
  };
  return (q: JobQueue): JobQueue => ({ ...bind(q), enqueue: (jobs) => q.enqueue(jobs.filter(keep)) });
}

function define(w: World, name = "heal", size = SIZE, extra: Partial<typeof config> & Record<string, unknown> = {}) {
  const ids = idCounter(size);
  w.spreader.define(name, { source: createMemoryIdSource({ minId: 1, maxId: size }), config: { ...config, ...extra }, handle: ids.handle });
  return ids;
}

async function completes(w: World, name: string, ids: ReturnType<typeof idCounter>) {
  expect(ids.missing(), "ids never processed").toEqual([]);
  const status = await w.spreader.status(name);
  expect(status.status).toBe("completed");
  expect(status.progress.batchesFailed).toBe(0);
  expect((await w.spreader.audit(name)).gaps).toEqual([]);
  return status;
}

describe("reconciliation: ranges the queue loses are enqueued again by the ticks", () => {
  it("a batch job deleted from the queue (or lost in a Redis restart)", async () => {
    const victim = (j: QueueJob) => j.data.kind === "batch" && j.data.cycle === 0 && j.data.beginId === "15901";
    const w = world({ queue: losing(victim) });
    const ids = define(w);
    const lost: string[] = [];
    w.spreader.on("rangesLost", (e) => lost.push(...e.ranges.map((r) => `${r.beginId}..${r.endId} ${r.state}`)));
    await w.spreader.start("heal");
    await w.run();
    const status = await completes(w, "heal", ids);
    expect(lost).toEqual(["15901..16000 missing"]);
    expect(status.reconciled.ranges).toBe(1);
    expect(ids.mismatches(1)).toEqual([]);
  });

  it("a batch the queue gave up on without the runtime seeing it (a stall limit)", async () => {
    let given = 0;
    // The queue fails every delivery of this job without calling the runtime: then it is failed for good.
    const stalls = (p: SuperSpreader): JobProcessor => ({
      watchdog: () => p.watchdog(),
      perform: async (data, context) => {
        const d = data as { kind: string; cycle: number; beginId: string };
        if (d.kind === "batch" && d.cycle === 0 && d.beginId === "17901") {
          given++;
          throw new Error("job stalled more than allowable limit");
        }
        return p.perform(data, context);
      },
    });
    const w = world({ processor: stalls });
    const ids = define(w);
    const lost: string[] = [];
    w.spreader.on("rangesLost", (e) => lost.push(...e.ranges.map((r) => `${r.beginId}..${r.endId} ${r.state}`)));
    await w.spreader.start("heal");
    await w.run();
    expect(given).toBe(3);
    await completes(w, "heal", ids);
    expect(lost).toEqual(["17901..18000 failed"]);
  });

  it("a batch whose completion cannot be recorded on any attempt (markDone throws)", async () => {
    let refused = 0;
    const flaky = (s: StateStore): StateStore => ({
      ...bind(s),
      markDone: async (name, runId, entry, at) => {
        if (entry.beginId === 12901n && entry.cycle === 0) {
          refused++;
          throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
        }
        return s.markDone(name, runId, entry, at);
      },
    });
    const w = world({ store: flaky });
    const ids = define(w);
    await w.spreader.start("heal");
    await w.run();
    expect(refused).toBe(3);
    await completes(w, "heal", ids);
    // The handler ran again for that range (the first runs did the work but could not record it).
    expect(ids.counts[12901]).toBe(4);
  });

  it("a range nothing accounts for (lost from the ledger's view) is requeued once every range was enqueued", async () => {
    // Both the job and its outstanding entry are lost: only the ledger shows the gap.
    const job = (j: QueueJob) => j.data.kind === "batch" && j.data.beginId === "5901" && j.data.cycle === 1;
    const dropEntry = (s: StateStore): StateStore => ({
      ...bind(s),
      addOutstanding: (name, runId, entries) => s.addOutstanding(name, runId, entries.filter((e) => e.beginId !== 5901n || e.cycle !== 1)),
    });
    const w = world({ queue: losing(job), store: dropEntry });
    const ids = define(w);
    const sources: string[] = [];
    w.spreader.on("rangesLost", (e) => sources.push(e.source));
    await w.spreader.start("heal");
    await w.run();
    await completes(w, "heal", ids);
    expect(sources).toEqual(["ledger"]);
  });

  it("repair() finds a lost range before the ticks do, reports it and requeues it", async () => {
    const victim = (j: QueueJob) => j.data.kind === "batch" && j.data.cycle === 0 && j.data.beginId === "19801";
    const w = world({ queue: losing(victim) }, { reconcileAfterMs: 3_600_000 });
    const ids = define(w);
    await w.spreader.start("heal");
    await w.run(30);
    const report = await w.spreader.repair("heal", { actor: "ops", reason: "audit showed a gap" });
    expect(report.lost.map((r) => [r.beginId, r.endId, r.state])).toEqual([[19801n, 19900n, "missing"]]);
    expect(report).toMatchObject({ requeued: 1, revived: false, requested: false });
    expect(report.stillQueued).toBeGreaterThan(0);
    await w.run();
    await completes(w, "heal", ids);
    const status = await w.spreader.status("heal");
    expect(status.reconciled.ranges).toBe(1);
    const history = await w.store.listConfigChanges("heal", 5);
    expect(history.some((c) => c.actor === "ops" && "repair" in c.changes)).toBe(true);
  });
});

describe("the watchdog: no chain waits for a human", () => {
  /** A queue whose next enqueue of a tick throws after nothing was stored: the process died in between. */
  function killBeforeTickEnqueue() {
    let armed = false;
    return {
      arm: () => (armed = true),
      wrap: (q: JobQueue): JobQueue => ({
        ...bind(q),
        enqueue: async (jobs) => {
          if (armed && jobs.length === 1 && jobs[0]?.data.kind === "tick") {
            armed = false;
            throw new Error("process killed");
          }
          return q.enqueue(jobs);
        },
      }),
    };
  }

  for (const call of ["start", "resume"] as const) {
    it(`revives the chain of a process killed between the state write and the enqueue of ${call}()`, async () => {
      const kill = killBeforeTickEnqueue();
      const w = world({ queue: kill.wrap });
      const ids = define(w, "heal", 150_000);
      await w.spreader.start("heal");
      await w.run(300);
      if (call === "resume") await w.spreader.pause("heal");
      kill.arm();
      await expect(w.spreader[call]("heal")).rejects.toThrow("process killed");
      await w.run();
      // The chain is dead: the old tick is stale (older epoch), the new one never reached the queue.
      const dead = await w.spreader.status("heal");
      expect(dead.status).toBe("running");
      expect(ids.missing().length).toBeGreaterThan(25_000);
      w.clock.advance(10_000);
      const actions = await w.spreader.watchdog();
      expect(actions).toEqual([{ backfill: "heal", action: "revived", reason: expect.stringContaining("is missing") }]);
      await w.run();
      const status = await completes(w, "heal", ids);
      expect(status.watchdog.revivals).toBe(1);
    });
  }

  it("revives a chain whose tick job the queue gave up on, with a new epoch (never two chains)", async () => {
    let failTicks = 0;
    const w = world(
      {
        processor: (p) => ({
          watchdog: () => p.watchdog(),
          perform: async (data, context) => {
            if ((data as { kind: string; cycle: number }).kind === "tick" && (data as { cycle: number }).cycle === 2 && failTicks < 3) {
              failTicks++;
              throw new Error("redis timeout");
            }
            return p.perform(data, context);
          },
        }),
      },
      { tickAttempts: 3 },
    );
    const ids = define(w);
    await w.spreader.start("heal");
    await w.run();
    expect(failTicks).toBe(3);
    expect((await w.spreader.status("heal")).status).toBe("running");
    w.clock.advance(10_000);
    expect(await w.spreader.watchdog()).toEqual([{ backfill: "heal", action: "revived", reason: expect.stringContaining("is failed") }]);
    // A second watchdog right after finds the new tick queued and does nothing.
    expect(await w.spreader.watchdog()).toEqual([]);
    await w.run();
    await completes(w, "heal", ids);
    expect(ids.mismatches(1)).toEqual([]);
  });

  it("lets an operator tool without the queue resume, start and retry: the workers' watchdog enqueues the tick", async () => {
    const w = world();
    const ids = define(w);
    const cli = createSuperSpreader({ queue: null, store: w.store, clock: w.clock });
    await w.spreader.start("heal");
    await w.run(50);
    await cli.pause("heal", { actor: "cli:ops" });
    await w.run();
    expect((await cli.resume("heal", { actor: "cli:ops" })).status).toBe("running");
    await w.run();
    expect(ids.missing().length).toBeGreaterThan(0);
    // A run revived by a process without the queue is marked: the watchdog enqueues its tick at once.
    expect(await w.spreader.watchdog()).toEqual([{ backfill: "heal", action: "revived", reason: expect.stringContaining("revived by a process without the queue") }]);
    expect(await w.spreader.watchdog()).toEqual([]);
    await w.run();
    await completes(w, "heal", ids);

    // A restart requested from the tool is carried out by a worker that defines the backfill.
    const requested = await cli.start("heal", { restart: true, actor: "cli:ops", reason: "new rows" });
    expect(requested.status).toBe("completed");
    expect(requested.request).toMatchObject({ actor: "cli:ops", reason: "new rows" });
    expect(await w.spreader.watchdog()).toEqual([{ backfill: "heal", action: "started", reason: "start requested by cli:ops" }]);
    const restarted = await w.spreader.status("heal");
    expect(restarted.status).toBe("running");
    expect(restarted.runId).not.toBe(requested.runId);
    // The run carries the id the request announced, so whoever asked can follow it.
    expect(restarted.runId).toBe(requested.request?.runId);
    expect(restarted.request).toBeNull();
    await w.run();
    expect(ids.mismatches(2)).toEqual([]);

    // A first start of a backfill never stored, from the tool.
    const other = define(w, "fresh", 1_000);
    expect((await cli.start("fresh", { actor: "cli:ops" })).status).toBe("starting");
    expect((await w.spreader.watchdog()).map((a) => [a.backfill, a.action])).toEqual([["fresh", "started"]]);
    const first = (await w.store.listConfigChanges("fresh", 1))[0];
    expect(first?.changes.config).toMatchObject({ from: null, to: { batchSize: 100 } });
    await w.run();
    await completes(w, "fresh", other);
  });

  it("leaves a running chain alone when a tool without the queue calls start or resume on it", async () => {
    const w = world();
    define(w);
    const cli = createSuperSpreader({ queue: null, store: w.store, clock: w.clock });
    await w.spreader.start("heal");
    await w.run(5);
    const before = await w.store.get("heal");
    await cli.start("heal");
    await cli.resume("heal");
    expect((await w.store.get("heal"))?.version).toBe(before?.version);
    expect(await w.spreader.watchdog()).toEqual([]);
  });

  it("restarts a cancelled requested start with the definition's config, not the placeholder", async () => {
    const w = world();
    const ids = define(w, "late-start", 1_000);
    const cli = createSuperSpreader({ queue: null, store: w.store, clock: w.clock });
    await cli.start("late-start");
    await cli.cancel("late-start");
    await w.spreader.start("late-start", { restart: true });
    expect((await w.spreader.status("late-start")).config).toMatchObject({ batchSize: 100, perSecondOffPeak: 10 });
    await w.run();
    await completes(w, "late-start", ids);
  });
});

describe("outage holds: a burst of failures holds the run, probes, and resumes by itself", () => {
  it("holds during a database outage, spends no attempts, records the cause, and completes with 0 failed ranges", async () => {
    const w = world();
    const ids = idCounter(SIZE);
    const outage = { from: T0 + 4_000, to: T0 + 34_000 };
    w.spreader.define("outage", {
      source: createMemoryIdSource({ minId: 1, maxId: SIZE }),
      config: { ...config, perSecondOnPeak: 5, perSecondOffPeak: 5 },
      async handle(context) {
        const now = w.clock.now();
        if (now >= outage.from && now < outage.to) {
          throw new Error('Failed query: update "items" set …', { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }) });
        }
        await ids.handle(context);
      },
    });
    const events: string[] = [];
    w.spreader.on("held", (e) => events.push(`held: ${e.reason}`));
    w.spreader.on("resumed", (e) => events.push(`resumed by ${e.by}`));
    w.spreader.on("probeFailed", () => events.push("probe failed"));
    let held: Awaited<ReturnType<SuperSpreader["status"]>> | null = null;
    w.spreader.on("held", () => {
      void w.spreader.status("outage").then((s) => (held = s));
    });
    await w.spreader.start("outage");
    await w.run();
    const status = await w.spreader.status("outage");
    expect(status.status).toBe("completed");
    // No range is left failed: the few that spent their (immediate) retries before the hold went back with it.
    expect((await w.spreader.audit("outage")).failed).toEqual([]);
    expect(ids.missing()).toEqual([]);
    expect(events[0]).toBe("held: 10 failed attempts in a row");
    expect(events.at(-1)).toBe("resumed by probe");
    // Probes at 5 s, then 10 s, 20 s … after the hold: the outage of 30 s needs a few.
    expect(events.filter((e) => e === "probe failed").length).toBeGreaterThanOrEqual(2);
    expect(held).not.toBeNull();
    expect(held!.hold?.lastError).toContain("caused by: Error: connect ECONNREFUSED 127.0.0.1:5432");
    const history = await w.store.listConfigChanges("outage", 20);
    expect(history.filter((c) => c.actor === "superspreader").map((c) => c.changes.status)).toEqual([
      { from: "held", to: "running" },
      { from: "running", to: "held" },
    ]);
  });

  it("keeps the cause chain of a range that fails for good, and does not hold for one bad range", async () => {
    const w = world();
    const ids = idCounter(2_000);
    w.spreader.define("bad-row", {
      source: createMemoryIdSource({ minId: 1, maxId: 2_000 }),
      config: { ...config, maxAttempts: 2 },
      async handle(context) {
        if (context.beginId === 1_001n) throw new TypeError("row 1001 is malformed", { cause: new RangeError("year 20260 is out of range") });
        await ids.handle(context);
      },
    });
    await w.spreader.start("bad-row");
    await w.run();
    const status = await w.spreader.status("bad-row");
    expect(status.status).toBe("failed");
    const [failed] = (await w.spreader.audit("bad-row")).failed;
    expect(failed?.error).toBe("row 1001 is malformed\ncaused by: RangeError: year 20260 is out of range");
    expect(failed?.errorName).toBe("TypeError");
  });

  it("can be resumed or cancelled by hand while held", async () => {
    const w = world();
    let failing = true;
    w.spreader.define("manual", {
      source: createMemoryIdSource({ minId: 1, maxId: SIZE }),
      config: { ...config, hold: { consecutiveFailures: 3, probeAfter: 3600, maxProbeInterval: 3600 } },
      async handle() {
        if (failing) throw new Error("down");
      },
    });
    await w.spreader.start("manual");
    await w.run(40);
    expect((await w.spreader.status("manual")).status).toBe("held");
    failing = false;
    const resumed = await w.spreader.resume("manual", { actor: "ops" });
    expect(resumed.status).toBe("running");
    expect(resumed.hold).toBeNull();
    await w.run();
    expect((await w.spreader.status("manual")).status).toBe("completed");
  });
});

describe("revisions and honest restarts", () => {
  it("bumps the revision on operator-visible changes only, and refuses a stale expectedRevision", async () => {
    const w = world();
    define(w);
    const started = await w.spreader.start("heal");
    await w.run(30);
    const later = await w.spreader.status("heal");
    expect(later.cycle).toBeGreaterThan(started.cycle);
    expect(later.revision).toBe(started.revision);
    await w.spreader.updateConfig("heal", { batchSize: 50 }, { expectedRevision: later.revision });
    await expect(w.spreader.updateConfig("heal", { batchSize: 60 }, { expectedRevision: later.revision })).rejects.toMatchObject({
      code: "CONFLICT",
      field: "expectedRevision",
    });
    await expect(w.spreader.pause("heal", { expectedRevision: later.revision })).rejects.toMatchObject({ code: "CONFLICT" });
    const now = await w.spreader.status("heal");
    expect(now.config.batchSize).toBe(50);
    expect(now.status).toBe("running");
    expect(now.revision).toBe(later.revision + 1);
  });

  it("restarts with the live config unless told to reset it, and records the values", async () => {
    const w = world();
    define(w, "heal", 1_000);
    await w.spreader.start("heal");
    await w.spreader.updateConfig("heal", { perSecondOffPeak: 20 }, { actor: "ops" });
    await w.run();
    const restarted = await w.spreader.start("heal", { restart: true });
    expect(restarted.config.perSecondOffPeak).toBe(20);
    const [change] = await w.store.listConfigChanges("heal", 1);
    expect(change?.reason).toBe("restart (live config)");
    expect(change?.changes.config).toEqual({ from: expect.objectContaining({ perSecondOffPeak: 20 }), to: expect.objectContaining({ perSecondOffPeak: 20 }) });
    await w.run();
    const reset = await w.spreader.start("heal", { restart: true, resetConfig: true });
    expect(reset.config.perSecondOffPeak).toBe(10);
    expect((await w.store.listConfigChanges("heal", 1))[0]?.reason).toBe("restart (definition's config (reset))");
  });

  it("changes the config of a backfill whose stored zone an earlier version accepted, keeping the zone", async () => {
    const w = world();
    define(w, "legacy-zone", 1_000);
    await w.spreader.start("legacy-zone");
    const stored = await w.store.get("legacy-zone");
    const doc = stored?.value as { config: Record<string, unknown> };
    await w.store.compareAndSet("legacy-zone", stored?.version ?? 0, { ...doc, config: { ...doc.config, peak: { timezone: "PST", windows: [{ days: [1], hours: [5, 17] }] } } });
    const config = await w.spreader.updateConfig("legacy-zone", { perSecondOffPeak: 20 });
    expect(config.peak?.timezone).toBe("PST");
    expect(config.perSecondOffPeak).toBe(20);
    // A new peak schedule must name a canonical zone.
    await expect(w.spreader.updateConfig("legacy-zone", { peak: { timezone: "PST", days: "Mon", hours: [5, 17] } })).rejects.toMatchObject({ field: "peak.timezone" });
  });

  it("goes on with a state written by the previous version, pending plan included", async () => {
    const w = world();
    const ids = define(w, "old", 1_000);
    // As 0.0.x stored it mid-cycle: no revision, pace, hold, tracking; a pending plan without grid fields.
    const oldConfig = { batchSize: 100, duration: 10, perSecondOnPeak: 10, perSecondOffPeak: 10, peak: null, maxAttempts: 3, priority: null, spreadWithinSecond: false };
    await w.store.compareAndSet("old", 0, {
      schema: 1,
      name: "old",
      runId: "oldrun000001",
      status: "running",
      config: oldConfig,
      minId: "1",
      initialId: "1000",
      cursor: "1000",
      cycle: 0,
      epoch: 0,
      nextTickAt: T0,
      pending: {
        cycle: 0,
        beginAt: T0,
        perSecond: "10",
        onPeak: false,
        spreadWithinSecond: false,
        batchSize: 100,
        cursor: "1000",
        fresh: 10,
        nextCursor: "0",
        requeue: [],
        nextTickAt: T0 + 10_000,
      },
      startedAt: T0,
      updatedAt: T0,
      finishedAt: null,
    });
    await w.queue.enqueue([{ id: "old.oldrun000001.t0.e0", runAt: T0, attempts: 25, data: { kind: "tick", backfill: "old", runId: "oldrun000001", cycle: 0, epoch: 0, scheduledAt: T0 } }]);
    await w.run();
    expect(ids.mismatches(1)).toEqual([]);
    const status = await w.spreader.status("old");
    expect(status.status).toBe("completed");
    expect(status.config.hold?.consecutiveFailures).toBe(10);
    // The jobs of the old plan were the ones it promised: slot k at k / rate, no priority.
    const first = w.queue.all().find((r) => r.job.id === "old.oldrun000001.b0.901-1000");
    expect(first?.job).toMatchObject({ runAt: T0, attempts: 3 });
    expect(first?.job.priority).toBeUndefined();
  });
});

/** A port object with its methods bound, so a spread copy of it still works. */
function bind<T extends object>(target: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(target)) {
    const value = (target as Record<string, unknown>)[key];
    out[key] = typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
  }
  return out as T;
}
