import {
  createManualClock,
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryStateStore,
  createMemoryWorker,
  createSuperSpreader,
  type ManualClock,
  type SuperSpreader,
  type SuperSpreaderEventName,
  type SuperSpreaderEvents,
} from "@superspreader/core";

/** A Monday, off peak (no peak window is configured anyway). */
export const T0 = Date.parse("2026-11-16T00:00:00Z");
/** How long every handler call takes on the manual clock. */
export const HANDLER_MS = 40;

/** An error with a code, as database drivers throw them. */
export class DriverError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface World {
  clock: ManualClock;
  spreader: SuperSpreader;
  /** Runs due jobs, moving the clock, until none is left (or `maxJobs` ran). */
  run(maxJobs?: number): Promise<number>;
  /** Every event emitted so far, in order: the ground truth the exporters are checked against. */
  events: { name: SuperSpreaderEventName; event: SuperSpreaderEvents[SuperSpreaderEventName] }[];
}

/**
 * The in-memory runtime with a backfill "reindex" over ids 1..1000 in 10 batches of 100, all in
 * cycle 0 (5 per second, 10 s cycles), two attempts per batch. Each handler call takes 40 ms.
 * Range 901-1000 fails its first call and then succeeds; range 1-100 always fails with `failCode`,
 * so the run ends `failed` with 900 ids done.
 */
export function world(failCode = "ER_LOCK_DEADLOCK"): World {
  const clock = createManualClock(T0);
  const queue = createMemoryJobQueue({ clock });
  const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock });
  const calls = new Map<bigint, number>();
  spreader.define("reindex", {
    source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
    config: { batchSize: 100, duration: 10, perSecondOnPeak: 5, perSecondOffPeak: 5, maxAttempts: 2 },
    async handle({ beginId }) {
      const call = (calls.get(beginId) ?? 0) + 1;
      calls.set(beginId, call);
      clock.advance(HANDLER_MS);
      if (beginId === 1n) throw new DriverError("deadlock found when trying to get lock", failCode);
      if (beginId === 901n && call === 1) throw new Error("connection reset");
    },
  });
  const events: World["events"] = [];
  const names: SuperSpreaderEventName[] = [
    "started",
    "cyclePlanned",
    "batchStarted",
    "batchFinished",
    "batchFailed",
    "batchDeferred",
    "paused",
    "resumed",
    "cancelled",
    "completed",
    "configChanged",
  ];
  for (const name of names) spreader.on(name, (event) => events.push({ name, event }));
  const worker = createMemoryWorker({ queue, spreader });
  return {
    clock,
    spreader,
    run: (maxJobs) => worker.runUntilIdle(clock, maxJobs === undefined ? {} : { maxJobs }),
    events,
  };
}

/** Starts "reindex", runs 3 jobs (the tick and two batches), pauses, drains (the rest is deferred), resumes and drains. */
export async function runWithPause(w: World): Promise<void> {
  await w.spreader.start("reindex");
  await w.run(3);
  await w.spreader.pause("reindex");
  await w.run();
  await w.spreader.resume("reindex");
  await w.run();
}

/** Events of one kind from the ground truth. */
export function eventsOf<E extends SuperSpreaderEventName>(w: World, name: E): SuperSpreaderEvents[E][] {
  return w.events.filter((e) => e.name === name).map((e) => e.event as SuperSpreaderEvents[E]);
}

/** Resolves once `count` events of this kind have been emitted (counting those already seen). */
export function waitForEvents(w: World, name: SuperSpreaderEventName, count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (w.events.filter((e) => e.name === name).length < count) return false;
      off();
      resolve();
      return true;
    };
    // Registered after the recorder, so the recorder has already pushed the event when this runs.
    const off = w.spreader.on(name, check);
    check();
  });
}

/**
 * A bare event source for exact queue-lag figures: a `batchStarted` carrying the batch's
 * planned run time (`scheduledAt`) at chosen instants. Not a stand-in for a server: the
 * exporters call `on`, and `list`/`status` only for stored state, of which it has none.
 */
export function scheduledEventSource() {
  const listeners = new Map<string, Set<(event: never) => void>>();
  const emit = (name: SuperSpreaderEventName, event: object) => {
    for (const listener of listeners.get(name) ?? []) (listener as (e: object) => void)(event);
  };
  const source = {
    on(name: string, listener: (event: never) => void) {
      const set = listeners.get(name) ?? new Set();
      listeners.set(name, set);
      set.add(listener);
      return () => set.delete(listener);
    },
    list: async () => [],
    status: async (name: string) => {
      throw new Error(`no stored state for ${name}`);
    },
    /** A batch of "lagging" planned at `scheduledAt` and started at `at`. */
    startBatch(scheduledAt: number, at: number, attempt = 1) {
      emit("batchStarted", { backfill: "lagging", runId: "r1", at, cycle: 0, beginId: 1n, endId: 10n, attempt, scheduledAt });
    },
  };
  return source as unknown as Pick<SuperSpreader, "on" | "status" | "list"> & Pick<typeof source, "startBatch">;
}
