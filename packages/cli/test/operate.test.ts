/**
 * Operating backfills with nothing but Redis: the CLI has no queue, so what needs a job (a tick,
 * a new run, a repair) is written to the store and carried out by the watchdog of a worker that
 * defines the backfill. The workers run in this process on the in-memory queue, their state in
 * the test's real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, unique, waitUntil } from "./helpers.js";
import { memoryApp, type MemoryApp } from "./memory-app.js";

const prefix = unique("cli-op");
const run = (args: readonly string[], env: Record<string, string | undefined> = {}) => cli(args, { SUPERSPREADER_PREFIX: prefix, ...env });

/** While true, flaky's first range fails and burst's handler fails like a database that is down. */
const failing = { flaky: true, burst: true };
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

let app: MemoryApp;

beforeAll(async () => {
  app = memoryApp(
    prefix,
    {
      // 5 batches of 10 ids a second over 100,000 ids: runs for the whole file.
      steady: { maxId: 100_000, config: { batchSize: 10, duration: 1, perSecondOnPeak: 5, perSecondOffPeak: 5 } },
      // Its top range never reaches the queue nor the outstanding set: lost from every record while the run goes on.
      gap: { maxId: 100_000, config: { batchSize: 10, duration: 1, perSecondOnPeak: 5, perSecondOffPeak: 5 } },
      // Range 101..110 of cycle 0 is dropped by the queue; the ticks would look for it only after an hour.
      lossy: { maxId: 200, config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 } },
      flaky: {
        maxId: 40,
        config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100, maxAttempts: 1 },
        handle: async ({ beginId }) => {
          if (failing.flaky && beginId === 1n) throw new RangeError("row 5 has no owner");
        },
      },
      burst: {
        maxId: 100_000,
        config: { batchSize: 10, duration: 1, perSecondOnPeak: 10, perSecondOffPeak: 10, maxAttempts: 1, hold: { consecutiveFailures: 3, probeAfter: 600, maxProbeInterval: 600 } },
        handle: async () => {
          if (failing.burst) throw new Error('Failed query: update "items" set …', { cause: refused() });
        },
      },
      quick: { maxId: 20, config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 } },
      fresh: { maxId: 30, config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 } },
    },
    {
      reconcileAfterMs: 3_600_000,
      lose: [{ backfill: "lossy", cycle: 0, beginId: 101n }],
      forget: [{ backfill: "gap", cycle: 0, beginId: 99_991n }],
    },
  );
  for (const name of ["steady", "gap", "lossy", "flaky", "burst", "quick"]) await app.spreader.start(name);
});

afterAll(async () => {
  await app?.close();
});

const status = (name: string) => app.spreader.status(name);

describe("resume, retry-failed and start with only --redis-url", () => {
  it("resumes a paused run: a worker's watchdog enqueues its tick, and status says so", async () => {
    expect((await run(["pause", "steady", "--reason", "maintenance"])).code).toBe(0);
    const paused = await status("steady");
    expect(paused.status).toBe("paused");

    const resumed = await run(["resume", "steady", "--json"]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.json()).toMatchObject({ previous: "paused", status: "running" });
    expect((await run(["resume", "steady"])).stdout).toContain("steady is already running; workers' watchdogs keep its tick chain alive.");

    // The CLI wrote the state only; the run moves on because a worker's watchdog enqueued the tick.
    await waitUntil("the watchdog to revive steady's chain", async () => (await status("steady")).watchdog.revivals > 0, 15_000);
    await waitUntil("steady to make progress after resume", async () => (await status("steady")).progress.idsDone > paused.progress.idsDone, 15_000);
    const s = (await run(["status", "steady", "--json"])).json();
    expect(s.watchdog).toMatchObject({ revivals: 1, lastReason: expect.stringMatching(/^tick job steady\.\w+\.t\d+\.e1 is missing: the chain was revived by a process without the queue$/) });
    expect((await run(["status", "steady"])).stdout).toMatch(/^ {2}watchdog {4}revived the tick chain 1 time, last .*: tick job steady\.\S+ is missing/m);
    expect((await run(["list"])).stdout).toMatch(/^steady .*revived 1×\]$/m);
  }, 40_000);

  it("retries the failed ranges of a failed run: it runs again and completes", async () => {
    await waitUntil("flaky to fail", async () => (await status("flaky")).status === "failed");
    failing.flaky = false;
    const retried = await run(["retry-failed", "flaky"]);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain("flaky: 1 failed range queued again; the next cycles enqueue it first (running): a worker's watchdog enqueues its tick within seconds.");
    await waitUntil("flaky to complete", async () => (await status("flaky")).status === "completed", 15_000);
    expect((await app.spreader.audit("flaky")).complete).toBe(true);
  }, 30_000);

  it("starts a first run only with --new, and never for a typo of a stored name", async () => {
    const typo = await run(["start", "quik"]);
    expect(typo.code).toBe(3);
    expect(typo.stderr).toContain('backfill "quik" was never started: did you mean `quick`? (add --new to start its first run');
    const unseen = await run(["start", "fresh"]);
    expect(unseen.code).toBe(3);
    expect(unseen.stderr).toContain('backfill "fresh" was never started (add --new');
    expect(await app.spreader.list()).not.toContain("quik");
    expect(await app.spreader.list()).not.toContain("fresh");
    // Other commands suggest the stored name too.
    expect((await run(["status", "quik"])).stderr).toContain('backfill "quik" not found: no backfill of that name is stored; did you mean `quick`?');

    const requested = await run(["start", "fresh", "--new", "--reason", "first run"]);
    expect(requested.code).toBe(0);
    expect(requested.stdout).toContain("fresh: first run requested with the definition's config. A worker that defines fresh carries it out within seconds");
    await waitUntil("a worker to start and finish fresh", async () => (await status("fresh")).status === "completed", 15_000);
    const history = (await run(["config", "get", "fresh"])).stdout;
    expect(history).toMatch(/cli:tester {2}run none → \w+, config batchSize=10, duration=0\.1, perSecondOnPeak=100, perSecondOffPeak=100 {2}"first run \(definition's config\)"/);
    expect(history).toContain('cli:tester  start requested (the definition\'s config), for a worker to carry out  "first run"');
  }, 30_000);

  it("shows a start no worker has taken up, and cancels it", async () => {
    // No worker defines "orphan": the request waits.
    expect((await run(["start", "orphan", "--new"])).code).toBe(0);
    const s = await run(["status", "orphan", "--json"]);
    expect(s.json()).toMatchObject({ status: "starting", ids: null, config: null, request: { actor: "cli:tester", resetConfig: false } });
    expect((await run(["status", "orphan"])).stdout).toMatch(/^orphan \(starting\): no run yet; first run requested by cli:tester (now|\d+s ago) \(the definition's config\); a worker that defines it carries it out within seconds$/m);
    expect((await run(["list"])).stdout).toMatch(/^orphan +starting +\(no run yet\) +not started yet: waiting for a worker$/m);
    for (const command of ["plan", "estimate", "audit"]) expect((await run([command, "orphan"])).stdout).toContain("orphan (starting): no run yet");
    const set = await run(["config", "set", "orphan", "batchSize=5"]);
    expect(set.code).toBe(1);
    expect(set.stderr).toContain("is starting (waiting for a worker)");
    const repair = await run(["repair", "orphan"]);
    expect(repair.code).toBe(1);
    expect(repair.stderr).toContain('backfill "orphan" is starting: there is no run to repair');
    expect((await run(["cancel", "orphan", "--yes"])).stdout).toBe("orphan: starting → cancelled\n");
    expect((await run(["list"])).stdout).toMatch(/^orphan +cancelled +\(no run\) +ended /m);
    expect((await run(["status", "orphan"])).stdout).toMatch(/^orphan \(cancelled\): cancelled (now|\d+s ago), before any worker started its first run\.$/m);
  });

  it("restarts with the live config and says so; --reset-config takes the definition's", async () => {
    await waitUntil("quick to complete", async () => (await status("quick")).status === "completed");
    const first = await status("quick");
    expect((await run(["config", "set", "quick", "perSecondOffPeak=50"])).code).toBe(0);
    expect((await run(["start", "quick"])).stdout).toContain("quick is completed (run");
    expect((await run(["start", "quick", "--reset-config"])).stderr).toContain("--reset-config gives a new run the definition's config: add --restart");

    const restart = await run(["start", "quick", "--restart", "--json"]);
    expect(restart.json()).toMatchObject({ requested: true, started: false, config: "live", values: { perSecondOffPeak: 50 } });
    await waitUntil("the restart to run", async () => (await status("quick")).runId !== first.runId && (await status("quick")).status === "completed", 15_000);
    const second = await status("quick");
    expect(second.config.perSecondOffPeak).toBe(50);
    expect((await run(["config", "get", "quick"])).stdout).toMatch(
      new RegExp(`run ${first.runId} → ${second.runId}, config kept: batchSize=10, duration=0\\.1, perSecondOnPeak=100, perSecondOffPeak=50  "restart \\(live config\\)"`),
    );

    const reset = await run(["start", "quick", "--restart", "--reset-config"]);
    expect(reset.stdout).toContain("quick: restart requested with the definition's config (--reset-config). A worker that defines quick carries it out");
    await waitUntil("the reset restart to run", async () => (await status("quick")).runId !== second.runId && (await status("quick")).status === "completed", 15_000);
    expect((await status("quick")).config.perSecondOffPeak).toBe(100);
    expect((await run(["config", "get", "quick"])).stdout).toMatch(/run \w+ → \w+, config perSecondOffPeak 50 → 100 \(batchSize=10, .*\) {2}"restart \(definition's config \(reset\)\)"/);
  }, 40_000);
});

describe("repair, held runs and lost ranges", () => {
  it("repair waits for a worker to find the range the queue lost, and the run completes", async () => {
    // Every range was enqueued; one job is gone, so the run waits for it (the ticks look only after an hour).
    await waitUntil("lossy to enqueue everything", async () => (await status("lossy")).cursor < 1n && (await app.spreader.audit("lossy")).outstanding.length === 1);
    expect((await status("lossy")).status).toBe("running");
    const repaired = await run(["repair", "lossy", "--reason", "a job was deleted by hand", "--json"]);
    expect(repaired.stderr).toBe("");
    expect(repaired.code).toBe(0);
    expect(repaired.json()).toMatchObject({ name: "lossy", requested: true, carriedOut: true, checked: 1, lost: 1, unaccounted: 0, requeued: 1 });
    await waitUntil("lossy to complete", async () => (await status("lossy")).status === "completed", 15_000);
    const text = (await run(["status", "lossy"])).stdout;
    expect(text).toContain("  reconciled  1 range the queue lost or gave up on, found and queued again");
    expect((await run(["config", "get", "lossy"])).stdout).toContain('repair: 1 lost and 0 unaccounted ranges queued again  "a job was deleted by hand"');

    const again = await run(["repair", "lossy"]);
    expect(again.stdout).toBe("lossy: repaired by a worker: looked up 0 enqueued ranges in the queue; 0 lost, 0 unaccounted: nothing was lost.\n");
    const noWait = await run(["repair", "steady", "--no-wait", "--json"]);
    expect(noWait.json()).toMatchObject({ requested: true, carriedOut: false, lost: null });
  }, 30_000);

  it("shows ranges lost from every record in status, list and audit", async () => {
    await waitUntil("gap's lost range to show", async () => (await app.spreader.audit("gap")).classified.some((g) => g.kind === "lost"));
    // Paused and settled first: a batch recorded while an audit reads can look lost for that one read (core's audit reads done before outstanding).
    await app.spreader.pause("gap");
    await waitUntil("gap's batches to settle", async () => (await app.spreader.audit("gap")).outstanding.length === 0);
    const s = (await run(["status", "gap", "--json"])).json();
    expect(s.ranges.lost).toEqual({ ranges: 1, ids: "10" });
    expect((await run(["status", "gap"])).stdout).toContain("  lost        1 range, 10 ids: enqueued, then neither in the queue nor recorded; the next ticks queue them again (`superspreader repair gap` now)");
    expect((await run(["list", "--json"])).json().backfills.find((b: { name: string }) => b.name === "gap")).toMatchObject({ lostRanges: 1 });
    expect((await run(["list"])).stdout).toMatch(/^gap .*\[1 lost range\]$/m);
    const audit = await run(["audit", "gap"]);
    expect(audit.stdout).toMatch(/^ {4}99,991\.\.100,000 +lost$/m);
    expect(audit.stdout).toContain('"lost" ranges were enqueued, then neither held by the queue nor recorded');
  });

  it("shows a run a burst of failures held, with the last error and its cause, and resumes it", async () => {
    await waitUntil("burst to hold itself", async () => (await status("burst")).status === "held", 15_000);
    const s = (await run(["status", "burst", "--json"])).json();
    expect(s).toMatchObject({ status: "held", hold: { reason: expect.any(String), probes: 0, lastError: expect.stringContaining("ECONNREFUSED") } });
    const text = (await run(["status", "burst"])).stdout;
    expect(text).toMatch(/^ {2}HELD {8}held since .*: .+; 0 probes sent, next probe .* \(in \d+m( \d+s)?\)\. It resumes by itself when a probe succeeds; `superspreader resume burst` resumes now\.$/m);
    expect(text).toMatch(/^ {14}last error: Failed query: update "items" set …$/m);
    expect(text).toMatch(/^ {16}caused by: .*connect ECONNREFUSED 127\.0\.0\.1:5432$/m);
    expect((await run(["list"])).stdout).toMatch(/^burst +held .*\[held: .+\]$/m);
    expect((await run(["plan", "burst"])).stdout).toContain("burst (held): the run holds itself; cycle");

    failing.burst = false;
    const resumed = await run(["resume", "burst"]);
    expect(resumed.stdout).toBe("burst: held → running; a worker's watchdog enqueues its tick within seconds\n");
    const before = (await status("burst")).progress.idsDone;
    await waitUntil("burst to make progress again", async () => (await status("burst")).progress.idsDone > before, 15_000);
  }, 40_000);
});
