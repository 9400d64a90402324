import { batchJobId, createMemoryIdSource, createSuperSpreader, type BatchContext } from "@superspreader/core";
import { createBullMQJobQueue, runBullMQWorker, type BullMQWorkerHandle } from "@superspreader/adapter-bullmq";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKFILLS } from "./fixtures/backfills.js";
import { CONFIG_MODULE, cli, redisUrl, unique, waitUntil } from "./helpers.js";

// The --config module reads these when the CLI first imports it.
const prefix = unique("cli");
const queueName = unique("cli-q");
process.env.CLI_TEST_PREFIX = prefix;
process.env.CLI_TEST_QUEUE = queueName;

/** The CLI against this file's key prefix. */
const run = (args: readonly string[], env: Record<string, string | undefined> = {}, tty = false) =>
  cli(args, { SUPERSPREADER_PREFIX: prefix, ...env }, tty);
const withConfig = (args: readonly string[]) => run([...args, "--config", CONFIG_MODULE]);

/* The worker side of the app: the real handlers, on a BullMQ worker. */
const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
const store = createRedisStateStore({ client: connection, prefix });
const queue = createBullMQJobQueue({ connection, queueName, onError: () => {} });
const spreader = createSuperSpreader({ queue, store });
const bullmq = new Queue(queueName, { connection });
/** Backfills whose poisoned range still fails. */
const failing = new Set(["orders", "invoices"]);
/** While set, orders' handlers wait for it to resolve (to hold batches in flight). */
let hold: { promise: Promise<void>; release: () => void; waiting: number } | null = null;
let worker: BullMQWorkerHandle;

async function handleOrders({ beginId, endId }: BatchContext) {
  if (hold) {
    hold.waiting++;
    await hold.promise;
  }
  if (failing.has("orders") && beginId <= 99_995n && endId >= 99_995n) throw new TypeError("order 99995 is malformed");
}

beforeAll(async () => {
  for (const [name, { maxId, config }] of Object.entries(BACKFILLS)) {
    spreader.define(name, {
      source: createMemoryIdSource({ minId: 1, maxId }),
      config,
      handle:
        name === "orders"
          ? handleOrders
          : async ({ beginId }) => {
              if (name === "invoices" && beginId === 1n && failing.has(name)) throw new RangeError("invoice 5 has no customer");
            },
    });
  }
  worker = await runBullMQWorker({ spreader, connection, queueName, concurrency: 8, onError: () => {} });
});

afterAll(async () => {
  hold?.release();
  await worker?.close();
  await queue.close();
  await bullmq.close();
  connection.disconnect();
  const app = await import("./fixtures/app.js");
  await app.closeForTests();
});

const ids = (s: string) => BigInt(s);

describe("operating running backfills", () => {
  it("starts a first run with --new, with the app's queue from the --config module", async () => {
    const refused = await withConfig(["start", "orders"]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('backfill "orders" was never started (add --new to start its first run');
    expect(await spreader.list()).toEqual([]);

    const started = await withConfig(["start", "orders", "--new", "--json"]);
    expect(started.code).toBe(0);
    expect(started.json()).toMatchObject({ name: "orders", started: true, requested: false, status: "running", config: "definition", ids: { minId: "1", maxId: "100000" } });
    expect((await withConfig(["start", "orders"])).stdout).toContain("orders is running");
    for (const name of ["invoices", "refunds"]) {
      const text = (await withConfig(["start", name, "--new"])).stdout;
      expect(text).toMatch(new RegExp(`^${name}: started run \\w+ over ids 1\\.\\.[\\d,]+ with the definition's config: batchSize=10, `));
    }
  });

  it("lists every backfill with state, progress and ETA", async () => {
    await waitUntil("orders to make progress", async () => (await spreader.status("orders")).progress.idsDone >= 2_000n, 20_000);
    const listed = await run(["list", "--json"]);
    expect(listed.code).toBe(0);
    const { backfills } = listed.json();
    expect(backfills.map((b: { name: string }) => b.name)).toEqual(["invoices", "orders", "refunds"]);
    const orders = backfills[1];
    expect(orders).toMatchObject({ status: "running", progress: { idsTotal: "100000" }, stalled: false });
    expect(ids(orders.progress.idsDone)).toBeGreaterThanOrEqual(2_000n);
    expect(Date.parse(orders.eta.finishAt)).toBeGreaterThan(Date.now());
    // Both rates of refunds are 0: it never finishes.
    expect(backfills[2]).toMatchObject({ status: "running", eta: { finishAt: null } });

    const text = await run(["list"]);
    expect(text.stdout).toMatch(/^NAME\s+STATE\s+PROGRESS \(ids\)\s+ETA$/m);
    expect(text.stdout).toMatch(/^orders\s+running\s+\[#*\.*\]/m);
    expect(text.stdout).toContain("never at the configured rates");
  });

  it("shows status: progress, ranges by state, rates, window, ETA and the last errors", async () => {
    await waitUntil("the poisoned range to fail", async () => (await spreader.audit("orders")).failed.length === 1, 20_000);
    const result = await run(["status", "orders", "--json"]);
    expect(result.code).toBe(0);
    const s = result.json();
    expect(s).toMatchObject({
      name: "orders",
      status: "running",
      ids: { minId: "1", maxId: "100000", total: "100000" },
      rows: null,
      ranges: { failed: { ranges: 1, ids: "10" } },
      rate: { configured: { batchesPerSecond: 100, idsPerSecond: 1000 } },
      lastErrors: [{ beginId: "99991", endId: "100000", errorName: "TypeError", error: "order 99995 is malformed", attempts: 1 }],
      config: { batchSize: 10, duration: 1 },
    });
    expect(s.rate.observed.idsPerSecond).toBeGreaterThan(0);
    expect(typeof s.window.onPeak).toBe("boolean");
    expect(Date.parse(s.window.next.at)).toBeGreaterThan(Date.now());
    expect(Date.parse(s.eta.finishAt)).toBeGreaterThan(Date.now());
    // Every id is in exactly one state.
    const { finished, inFlight, deferred, failed, notPlanned, lost } = s.ranges;
    expect([finished, inFlight, deferred, failed, notPlanned, lost].reduce((sum, r) => sum + ids(r.ids), 0n)).toBe(100_000n);

    const text = (await run(["status", "orders"])).stdout;
    for (const label of ["ids ", "finished", "in flight", "deferred", "failed", "not planned", "rate", "window", "next tick", "eta", "errors"]) {
      expect(text).toContain(`  ${label}`);
    }
    expect(text).toMatch(/ids\s+\[[#.]{30}\]\s+\d+\.\d%\s+[\d,]+ of 100,000/);
    expect(text).toContain("99,991..100,000  TypeError: order 99995 is malformed (1 attempt,");
    expect(text).not.toContain("\u001b[");
    // Colours only on a terminal, and never with NO_COLOR.
    expect((await run(["status", "orders"], {}, true)).stdout).toContain("\u001b[32mrunning\u001b[39m");
    expect((await run(["status", "orders"], { NO_COLOR: "1" }, true)).stdout).not.toContain("\u001b[");
  });

  it("pauses (deferring what arrives), then plans the next cycle and estimates without enqueuing", async () => {
    // Hold handlers so batches are still queued when the pause lands: they must be deferred, not lost.
    let release = () => {};
    hold = { promise: new Promise<void>((resolve) => (release = resolve)), release: () => release(), waiting: 0 };
    await waitUntil("held batches and queued ones", async () => {
      const counts = await bullmq.getJobCounts("waiting", "delayed", "prioritized");
      return (hold?.waiting ?? 0) >= 8 && (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0) > 0;
    });
    const paused = await run(["pause", "orders", "--reason", "maintenance", "--json"]);
    expect(paused.code).toBe(0);
    expect(paused.json()).toMatchObject({ name: "orders", previous: "running", status: "paused" });
    expect((await run(["pause", "orders"])).stdout).toContain("already paused");
    // A worker's on-time batches go by the state it read in the last 250 ms (core's DOC_CACHE_MS): a
    // pause from another process reaches them within that. Past it, every batch that starts sees it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    hold.release();
    hold = null;
    await waitUntil("every enqueued batch to be done, failed or deferred", async () => (await run(["status", "orders", "--json"])).json().ranges.inFlight.ranges === 0);

    const status = (await run(["status", "orders", "--json"])).json();
    expect(status.status).toBe("paused");
    expect(status.ranges.deferred.ranges).toBeGreaterThan(0);
    const cursor = ids(status.ids.cursor);

    // plan shows core's planner: the batches the next tick enqueues, deferred ranges first.
    const planned = await run(["plan", "orders", "--json"]);
    expect(planned.code).toBe(0);
    const p = planned.json();
    const core = await spreader.plan("orders");
    expect(p).toMatchObject({ name: "orders", status: "paused", dryRun: true, ended: false, kind: "work", slots: 100, ifResumedNow: true, cursorBefore: status.ids.cursor });
    expect(p.batches.map((b: { beginId: string; endId: string; kind: string }) => `${b.beginId}-${b.endId} ${b.kind}`)).toEqual(
      core?.batches.map((b) => `${b.beginId}-${b.endId} ${b.kind}`),
    );
    expect(p.batches.at(0).kind).toBe("requeued");
    expect(p.batches.at(-1).kind).toBe("fresh");
    const planText = (await run(["plan", "orders"])).stdout;
    expect(planText).toMatch(/#\s+RUN AT\s+RANGE\s+KIND/);
    expect(planText).toContain("(paused: what the cycle would plan if resumed now)");
    expect(planText).toContain("Dry run: nothing was enqueued.");
    expect((await spreader.status("orders")).cursor).toBe(cursor); // nothing moved

    const estimated = await run(["estimate", "orders", "--json"]);
    expect(estimated.code).toBe(0);
    const e = estimated.json();
    const eta = await spreader.eta("orders");
    expect(e).toMatchObject({
      status: "paused",
      ifResumedNow: true,
      idsRemaining: `${eta?.idsRemaining}`,
      batchesRemaining: `${eta?.batchesRemaining}`,
      cyclesRemaining: eta?.cyclesRemaining,
    });
    expect((await run(["estimate", "orders"])).stdout).toMatch(/calendar\s+\d{4}-.*cycles, if resumed now/);
  });

  it("validates config set before writing: bad values change nothing; good ones are recorded", async () => {
    const before = (await run(["config", "get", "orders", "--json"])).json();
    expect(before.history).toEqual([
      expect.objectContaining({ actor: "cli:tester", reason: "maintenance", changes: { status: { from: "running", to: "paused" } } }),
      expect.objectContaining({ actor: "cli:tester", reason: "start (definition's config)" }),
    ]);
    for (const [assignments, message] of [
      [["perSecondOffPeak=abc"], 'perSecondOffPeak must be a finite number of batches per second ≥ 0, got "abc"'],
      [["batchSize=0"], "batchSize must be a whole number ≥ 1, got 0"],
      [["colour=blue"], "config.colour is not a known field"],
      [["perSecondOffPeak"], '"perSecondOffPeak" is not key=value'],
      [["duration=1", "duration=2"], "duration is set twice"],
      [['peak={"timezone":"Mars/Olympus","days":"Mon","hours":[1,2]}'], "peak.timezone must be an IANA time zone"],
      [["perSecondOffPeak=1000000"], "more than 100000"],
    ] as const) {
      const result = await run(["config", "set", "orders", ...assignments, "--reason", "bad"]);
      expect(result.code, assignments.join(" ")).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain("nothing was changed");
    }
    expect((await run(["config", "get", "orders", "--json"])).json()).toEqual(before);

    const preview = await run(["config", "set", "orders", "duration=2", "--dry-run", "--json"]);
    expect(preview.code).toBe(0);
    expect(preview.json()).toMatchObject({ dryRun: true, changes: { duration: { from: 1, to: 2 } }, eta: { before: { ifResumedNow: true }, after: { ifResumedNow: true } } });
    expect((await run(["config", "get", "orders", "--json"])).json()).toEqual(before);

    const set = await run(["config", "set", "orders", "perSecondOffPeak=50", "perSecondOnPeak=50", "--reason", "halve the load"]);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain("perSecondOffPeak: 100 → 50");
    expect(set.stdout).toContain("reason: halve the load");
    const after = (await run(["config", "get", "orders", "--json"])).json();
    expect(after.config).toEqual({ ...before.config, perSecondOffPeak: 50, perSecondOnPeak: 50 });
    expect(after.history).toHaveLength(before.history.length + 1);
    expect(after.history[0]).toMatchObject({
      actor: "cli:tester",
      reason: "halve the load",
      changes: { perSecondOffPeak: { from: 100, to: 50 }, perSecondOnPeak: { from: 100, to: 50 } },
    });
    expect(Math.abs(Date.parse(after.history[0].at) - Date.now())).toBeLessThan(60_000);
    expect((await run(["config", "set", "orders", "perSecondOffPeak=50"])).stdout).toContain("no change");
    const text = (await run(["config", "get", "orders"])).stdout;
    expect(text).toMatch(/peak\s+America\/Los_Angeles Mon-Fri 05:00-17:00/);
    expect(text).toContain('cli:tester  perSecondOnPeak 100 → 50, perSecondOffPeak 100 → 50  "halve the load"');
  });

  it("resumes with only Redis: the worker's watchdog enqueues the tick, and the next cycle enqueues what plan showed", async () => {
    const p = (await run(["plan", "orders", "--json"])).json();
    expect(p.slots).toBe(50);
    const resumed = await run(["resume", "orders", "--reason", "maintenance over"]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toBe("orders: paused → running; a worker's watchdog enqueues its tick within seconds\n");
    const { runId } = await spreader.status("orders");
    const jobIds = p.batches.map((b: { beginId: string; endId: string }) => batchJobId("orders", runId, p.cycle, { beginId: ids(b.beginId), endId: ids(b.endId) }));
    await waitUntil("the planned batches to be enqueued", async () => (await Promise.all(jobIds.map((id: string) => bullmq.getJob(id)))).every(Boolean), 30_000);
    expect((await spreader.status("orders")).watchdog.revivals).toBe(1);
  }, 40_000);

  it("retries failed ranges; with --config a failed run is revived with the app's queue", async () => {
    failing.delete("orders");
    const retried = await run(["retry-failed", "orders", "--json"]);
    expect(retried.code).toBe(0);
    expect(retried.json()).toMatchObject({ requeued: 1, status: "running" });
    expect((await run(["retry-failed", "orders"])).stdout).toContain("no failed ranges");
    await waitUntil("the retried range to be done", async () => {
      const { done } = await spreader.audit("orders");
      return done.some((r) => r.beginId <= 99_991n && r.endId >= 100_000n);
    }, 20_000);

    await waitUntil("invoices to fail", async () => (await spreader.status("invoices")).status === "failed", 20_000);
    expect((await spreader.audit("invoices")).failed).toHaveLength(1);
    failing.delete("invoices");
    const revived = await withConfig(["retry-failed", "invoices", "--json"]);
    expect(revived.json()).toMatchObject({ requeued: 1, previous: "failed", status: "running" });
    // The CLI enqueued the tick itself: no watchdog was needed.
    await waitUntil("invoices to complete", async () => (await spreader.status("invoices")).status === "completed", 20_000);
    expect((await spreader.status("invoices")).watchdog.revivals).toBe(0);
  }, 60_000);

  it("audits the ledger's gaps, and reports a finished run", async () => {
    const a = (await run(["audit", "orders", "--json"])).json();
    expect(a).toMatchObject({ name: "orders", status: "running", complete: false, minId: "1", maxId: "100000" });
    const done = a.done.reduce((sum: bigint, r: { beginId: string; endId: string }) => sum + ids(r.endId) - ids(r.beginId) + 1n, 0n);
    const open = a.gaps.reduce((sum: bigint, g: { ids: string }) => sum + ids(g.ids), 0n);
    expect(done + open).toBe(100_000n);
    expect(a.gaps.at(0)).toMatchObject({ beginId: "1", kind: "not planned" });
    expect((await run(["audit", "orders"])).stdout).toMatch(/gaps\s+\d+ ranges?, [\d,]+ ids/);

    // Bigger batches take the rest in one cycle: the change applies to the running backfill.
    expect((await run(["config", "set", "orders", "batchSize=1000", "perSecondOffPeak=100", "perSecondOnPeak=100"])).code).toBe(0);
    await waitUntil("orders to complete", async () => (await spreader.status("orders")).status === "completed", 30_000);
    expect((await run(["audit", "orders", "--json"])).json()).toMatchObject({ complete: true, gaps: [] });
    expect((await run(["audit", "orders"])).stdout).toContain("none: every id is recorded done");
    expect((await run(["estimate", "orders"])).stdout).toContain("nothing left to estimate");
    const s = (await run(["status", "orders", "--json"])).json();
    expect(s).toMatchObject({ status: "completed", eta: null, ids: { done: "100000", fraction: 1 } });
    expect((await run(["plan", "orders"])).stdout).toMatch(/^orders is completed \(ended .*\): it has no next cycle\./);
  });

  it("cancels only with --yes; a cancelled backfill cannot be paused (exit 1)", async () => {
    expect((await run(["estimate", "refunds"])).stdout).toContain("never at the configured rates");
    const refused = await run(["cancel", "refunds"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("add --yes to confirm");
    expect((await spreader.status("refunds")).status).toBe("running");
    const cancelled = await run(["cancel", "refunds", "--yes", "--reason", "wrong table", "--json"]);
    expect(cancelled.json()).toMatchObject({ previous: "running", status: "cancelled" });
    const pause = await run(["pause", "refunds"]);
    expect(pause.code).toBe(1);
    expect(pause.stderr).toContain("only a running or held backfill can be paused");
  });

  it("counts rows through the --config module's sources", async () => {
    const s = (await withConfig(["status", "orders", "--json"])).json();
    expect(s.rows).toEqual({ total: "100000", done: "100000", fraction: 1 });
    expect((await withConfig(["status", "orders"])).stdout).toMatch(/rows\s+\[#{30}\]\s+100\.0%\s+100,000 of 100,000/);
  });
});
