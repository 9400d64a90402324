import {
  createManualClock,
  createMemoryJobQueue,
  createMemoryStateStore,
  createMemoryWorker,
  createSuperSpreader,
  type BatchJobData,
  type JobProcessor,
  type JobQueue,
  type ManualClock,
  type MemoryJobQueue,
  type StateStore,
  type SuperSpreader,
  type SuperSpreaderOptions,
} from "../src/index.js";

/** A Monday, off peak for the schedules used in these tests. */
export const T0 = Date.parse("2026-11-16T00:00:00Z");

export interface World {
  clock: ManualClock;
  queue: MemoryJobQueue;
  store: StateStore;
  spreader: SuperSpreader;
  run(maxJobs?: number): Promise<number>;
  batchJobs(name?: string): BatchJobData[];
}

/**
 * Everything in memory with a manual clock; `wrap` may decorate the ports (fault injection) and the
 * processor the worker calls (a queue that gives a job up without running it), `options` the runtime's.
 */
export function world(
  wrap: { queue?: (q: JobQueue) => JobQueue; store?: (s: StateStore) => StateStore; processor?: (p: SuperSpreader) => JobProcessor } = {},
  options: Partial<Pick<SuperSpreaderOptions, "reconcileAfterMs" | "tickAttempts">> = {},
): World {
  const clock = createManualClock(T0);
  const queue = createMemoryJobQueue({ clock });
  const store = createMemoryStateStore();
  const spreader = createSuperSpreader({
    queue: wrap.queue ? wrap.queue(queue) : queue,
    store: wrap.store ? wrap.store(store) : store,
    clock,
    ...options,
  });
  const worker = createMemoryWorker({ queue, spreader: wrap.processor ? wrap.processor(spreader) : spreader });
  return {
    clock,
    queue,
    store,
    spreader,
    // Capped, so a chain that never ends fails its test instead of hanging it.
    run: (maxJobs) => worker.runUntilIdle(clock, { maxJobs: maxJobs ?? 1_000_000 }),
    batchJobs: (name) =>
      queue
        .all()
        .map((r) => r.job.data)
        .filter((d): d is BatchJobData => d.kind === "batch" && (name === undefined || d.backfill === name)),
  };
}

/** Counts handler calls per id for ids in [1, size]. */
export function idCounter(size: number) {
  const counts = new Uint16Array(size + 1);
  return {
    counts,
    handle: async ({ beginId, endId }: { beginId: bigint; endId: bigint }) => {
      for (let id = Number(beginId); id <= Number(endId); id++) counts[id] = (counts[id] ?? 0) + 1;
    },
    /** Ids in [1, size] seen a number of times other than `times`. */
    mismatches(times = 1) {
      const bad: number[] = [];
      for (let id = 1; id <= size; id++) if (counts[id] !== times) bad.push(id);
      return bad;
    },
    missing() {
      const bad: number[] = [];
      for (let id = 1; id <= size; id++) if ((counts[id] ?? 0) === 0) bad.push(id);
      return bad;
    },
  };
}
