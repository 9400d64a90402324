import type { Core } from "./context.js";
import { tickJob, tickJobId } from "./cycle.js";
import type { BackfillDoc } from "./doc.js";
import type { JobState, WatchdogAction } from "./ports.js";

/** A tick this much past its time whose job the queue does not hold (or gave up) is revived. */
export const WATCHDOG_GRACE_MS = 5_000;
const LIVE: ReadonlySet<JobState> = new Set(["waiting", "delayed", "active"]);

/** What the watchdog needs from the runtime besides the core: carrying out requested starts and repairs. */
export interface WatchdogHooks {
  start(doc: BackfillDoc): Promise<void>;
  repair(doc: BackfillDoc): Promise<void>;
  extend(doc: BackfillDoc): Promise<void>;
}

/**
 * Looks after the tick chains of the backfills this process defines. A chain is alive when
 * the queue holds the tick job of its current cycle and epoch (waiting, delayed or active);
 * when that job is missing (a kill between a state write and its enqueue, a resume from the
 * CLI, Redis losing it) the same job is enqueued again (same id: any number of watchdogs
 * enqueue it once); when the queue gave it up (failed for good) or it ended without moving
 * the run on, the epoch is bumped and a new tick enqueued, which turns the old one stale.
 * Either way there is never a second chain.
 */
export async function watchdog(core: Core, hooks: WatchdogHooks): Promise<WatchdogAction[]> {
  if (core.queue === null) return [];
  const queue = core.queue;
  const actions: WatchdogAction[] = [];
  const errors: unknown[] = [];
  for (const name of core.registry.keys()) {
    try {
      const current = await core.read(name);
      if (!current) continue;
      const { doc } = current;
      if (doc.status === "starting" || doc.request !== null) {
        await hooks.start(doc);
        const reason = `start requested by ${doc.request?.actor ?? "someone"}`;
        actions.push({ backfill: name, action: "started", reason });
        core.events.emit("revived", { ...core.base(doc), action: "started", reason });
        continue;
      }
      if (doc.repairRequest !== null) await hooks.repair(doc);
      // Reviving a finished run, it enqueues the tick itself.
      if (doc.extendRequest !== null) await hooks.extend(doc);
      if (doc.status !== "running" && doc.status !== "held") continue;
      const now = core.clock.now();
      if (!doc.needsTick && now - doc.nextTickAt < WATCHDOG_GRACE_MS) continue;
      const id = tickJobId(doc.name, doc.runId, doc.cycle, doc.epoch);
      const [state = "missing"] = await queue.lookup([id]);
      if (LIVE.has(state)) continue;
      const reason = doc.needsTick
        ? `tick job ${id} is ${state}: the chain was revived by a process without the queue`
        : `tick job ${id} is ${state}, ${Math.round((now - doc.nextTickAt) / 1000)} s after its time`;
      const record = (d: BackfillDoc) => ({ revivals: d.watchdog.revivals + 1, lastRevivedAt: now, lastReason: reason });
      if (state === "missing") {
        // The tick of this very cycle and epoch was never enqueued, or is gone: enqueue it (idempotent by id).
        const { changed, after } = await core.mutate(name, (d) =>
          d.runId === doc.runId && d.epoch === doc.epoch && d.cycle === doc.cycle && (d.status === "running" || d.status === "held")
            ? { ...d, watchdog: record(d), needsTick: false }
            : null,
        );
        if (!changed) continue;
        await queue.enqueue([tickJob(after, after.cycle, after.epoch, now, core.tickAttempts)]);
      } else {
        // Given up or ended without moving the run on: that id is spent, so a new epoch takes over.
        const { kicked } = await core.kick(name, (d) =>
          d.runId === doc.runId && d.epoch === doc.epoch && (d.status === "running" || d.status === "held") ? { watchdog: record(d), needsTick: false } : null,
        );
        if (!kicked) continue;
      }
      actions.push({ backfill: name, action: "revived", reason });
      core.events.emit("revived", { ...core.base(doc), action: "revived", reason });
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `[superspreader] the watchdog failed for ${errors.length} backfills`);
  return actions;
}
