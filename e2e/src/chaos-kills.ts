/**
 * The kill machinery of a chaos run, both sides: the seeded kill plan the test follows, and the
 * tick kill points a worker process installs. The PostgreSQL-only run uses it; it is written the
 * way `test/chaos.test.ts` and `test/fixtures/chaos-process.ts` do it, so they can use it too.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { tickJobId } from "@superspreader/core";
import type { JobProcessor, SuperSpreader, TickJobData } from "@superspreader/core";
import type { PortInterceptor } from "./chaos.js";

export type Role = "worker" | "ticks";

export interface PlannedKill {
  /** Milliseconds after the backfill started. */
  readonly atMs: number;
  /** A worker busy with a batch, or whichever process runs the next tick. */
  readonly target: Role;
  /** Which worker, for a worker kill (the first of them that is up, from this one on). */
  readonly worker: number;
  /** For a tick-runner kill: before which port call of the next tick (1-based). */
  readonly tickStep: number;
  /** For a worker kill: how long after the worker is seen running a batch. */
  readonly workerDelayMs: number;
}

export interface KillPlanOptions {
  readonly workerKills: number;
  readonly tickKills: number;
  readonly workers: number;
  /** Kill times are drawn in this window (ms after the start). */
  readonly windowMs: readonly [number, number];
  /** How many kill points a tick has (its port calls, and one after them all). */
  readonly tickKillPoints: number;
  readonly maxWorkerKillDelayMs: number;
}

/** The kill schedule, entirely drawn from `random` (a seeded generator). */
export function planKills(random: () => number, o: KillPlanOptions): PlannedKill[] {
  const targets: Role[] = [...Array<Role>(o.workerKills).fill("worker"), ...Array<Role>(o.tickKills).fill("ticks")];
  for (let i = targets.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [targets[i], targets[j]] = [targets[j] as Role, targets[i] as Role];
  }
  const [from, to] = o.windowMs;
  const times = targets.map(() => Math.round(from + random() * (to - from))).sort((a, b) => a - b);
  return targets.map((target, i) => ({
    atMs: times[i] ?? from,
    target,
    worker: Math.floor(random() * o.workers),
    tickStep: 1 + Math.floor(random() * o.tickKillPoints),
    workerDelayMs: Math.round(random() * o.maxWorkerKillDelayMs),
  }));
}

/** One-line description of a plan, for the log. */
export function describePlan(plan: readonly PlannedKill[]): string {
  return plan.map((k) => `${(k.atMs / 1000).toFixed(1)}s ${k.target === "ticks" ? `ticks@step${k.tickStep}` : `worker${k.worker}+${k.workerDelayMs}ms`}`).join(", ");
}

/** Waits until the backfill completed; fails at once if it ends otherwise (failed, cancelled, …), or after `timeoutMs`. */
export async function waitForCompletion(spreader: SuperSpreader, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, cursor, initialId } = await spreader.status(name);
    if (status === "completed") return;
    if (status !== "running") throw new Error(`the backfill ended ${status}`);
    if (Date.now() > deadline) throw new Error(`the backfill did not complete within ${timeoutMs} ms (cursor ${cursor} of ${initialId})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/* ----------------------------------------------- inside a worker process */

interface TickRun {
  readonly jobId: string;
  readonly cycle: number;
  step: number;
}

/** What {@link installTickKillPoints} gives a worker process. */
export interface TickKillPoints {
  /** Wraps a port so that each call of it inside a tick is a kill point. */
  readonly intercept: PortInterceptor;
  /** The processor to run: `spreader`'s, with a last kill point after a tick's port calls, before BullMQ hears it finished. */
  processor(spreader: SuperSpreader): JobProcessor;
}

/**
 * Told `{ type: "arm", step }` over IPC, this process stops the next tick it runs before the
 * step-th port call of that tick (one past the tick's last call = done but not yet acknowledged),
 * reports `{ type: "kill-point", step, call, cycle, jobId }` and waits there to be killed.
 * `{ type: "disarm" }` takes it back. Only the tick's own port calls count (its async context),
 * not those of batches running beside it. `wrap` may replace a port's property (or return
 * `undefined` to leave it).
 */
export function installTickKillPoints(wrap: (label: string, property: string | symbol, value: unknown) => unknown = () => undefined): TickKillPoints {
  const inTick = new AsyncLocalStorage<TickRun>();
  let armedStep: number | null = null;
  process.on("message", (message: { type?: string; step?: number }) => {
    if (message.type === "arm" && typeof message.step === "number") armedStep = message.step;
    if (message.type === "disarm") armedStep = null;
  });

  async function killPoint(call: string, last = false): Promise<void> {
    const tick = inTick.getStore();
    if (tick === undefined) return;
    tick.step += 1;
    if (armedStep === null || (tick.step < armedStep && !last)) return;
    process.send?.({ type: "kill-point", step: tick.step, call, cycle: tick.cycle, jobId: tick.jobId });
    await new Promise(() => {}); // the test SIGKILLs us here
  }

  const intercept: PortInterceptor = (port, label) =>
    new Proxy(port, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        const replaced = wrap(label, property, value);
        if (replaced !== undefined) return replaced;
        if (typeof value !== "function" || property === "close") return value;
        return async (...args: unknown[]) => {
          await killPoint(`${label}.${String(property)}`);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });

  return {
    intercept,
    processor: (spreader) => ({
      watchdog: () => spreader.watchdog(),
      async perform(data, context) {
        if ((data as { kind?: unknown }).kind !== "tick") return spreader.perform(data, context);
        const { backfill, runId, cycle, epoch } = data as TickJobData;
        return inTick.run({ jobId: tickJobId(backfill, runId, cycle, epoch), cycle, step: 0 }, async () => {
          const outcome = await spreader.perform(data, context);
          await killPoint("ack", true);
          return outcome;
        });
      },
    }),
  };
}
