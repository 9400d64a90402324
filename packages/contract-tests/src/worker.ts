import type { ChildProcess } from "node:child_process";
import {
  DEFAULT_BATCH_PRIORITY,
  TICK_PRIORITY,
  batchJobId,
  createMemoryIdSource,
  createMemoryStateStore,
  createSuperSpreader,
  mergeRanges,
} from "@superspreader/core";
import type { IdRange, JobOutcome, JobProcessor, JobQueue, JobState, QueueJob, ShutdownMode, WatchdogAction } from "@superspreader/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { randomSuffix, waitUntil } from "./util.js";

/**
 * The runner options the suite starts every worker with. Every worker runner of this
 * repository has options of these names with this meaning; a harness passes them on.
 */
export interface WorkerStartOptions {
  /** Jobs the worker runs at once. */
  readonly concurrency: number;
  /** `"drain"`: `close()` lets running jobs finish for up to `shutdownTimeoutMs`, then aborts their signal; `"abort"`: at once. */
  readonly shutdown: ShutdownMode;
  /** Ms of the drain, and then ms `close()` waits for aborted handlers before it gives up on them. */
  readonly shutdownTimeoutMs: number;
  /** Ms between two calls of the processor's `watchdog()`; `0` turns the loop off. */
  readonly watchdogIntervalMs: number;
}

/** A running worker, as the suite drives it. */
export interface ContractWorker {
  /** The runner's own graceful shutdown. Safe to call again, and after `kill()`. */
  close(): Promise<void>;
}

/** A worker the suite can kill. */
export interface KillableContractWorker extends ContractWorker {
  /**
   * A real death, not a shutdown: nothing is aborted or handed back, and whatever the queue
   * uses to notice a dead worker (a lock, a heartbeat) is left to expire. For a Redis queue,
   * SIGKILL a child process running the runner (see {@link serveChildWorker}). Resolves once
   * the worker is dead. Safe to call again, and after `close()`.
   */
  kill(): Promise<void>;
}

/** What a worker-contract factory returns: a fresh queue (own name or prefix) and how to run workers on it. */
export interface WorkerHarness {
  /** The producer side of the queue the workers consume. The suite closes it after each test. */
  queue: JobQueue;
  /** Starts a worker of the runner in this process, handing every job to `processor`. */
  startWorker(processor: JobProcessor, options: WorkerStartOptions): Promise<ContractWorker>;
  /**
   * Starts a worker the suite may {@link KillableContractWorker.kill}. On Redis queues, a child
   * process ({@link serveChildWorker} + {@link runChildWorker}); its processor calls come back
   * to `processor` in this process, so a real runtime with an in-memory store works across it.
   * Set the queue's timings so a dead worker's jobs come back within `redeliveryTimeoutMs`
   * (short locks and stall checks), but keep its default stall limit.
   */
  startKillableWorker(processor: JobProcessor, options: WorkerStartOptions): Promise<KillableContractWorker>;
  cleanup?: () => Promise<void>;
}

/** Opt-outs and facts about the queue, each for a documented trait of it. */
export interface WorkerContractOptions {
  /** The queue has no priorities (Bee-Queue): skip the priority test. */
  skipPriorities?: boolean;
  /**
   * Stalls of one job the queue survives before it fails the job for good without running it
   * (BullMQ: `maxStalledCount`, default 1). The suite then kills `stallLimit + 1` workers under
   * one batch and checks the queue gave it up and reconciliation ran it anyway. Leave it out for
   * a queue that re-runs stalled jobs forever (Bee-Queue, the in-memory queue): the suite kills two.
   */
  stallLimit?: number;
  /**
   * Ms within which a dead worker's job runs again on another worker (lock expiry plus stall
   * detection, with the harness's timings).
   * @default 20000
   */
  redeliveryTimeoutMs?: number;
}

const DEFAULTS: WorkerStartOptions = { concurrency: 1, shutdown: "drain", shutdownTimeoutMs: 1_000, watchdogIntervalMs: 0 };
/** Timer slack: a timer of n ms may fire a millisecond early, and clocks of processes differ by a few. */
const SLACK_MS = 25;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Delivery {
  readonly kind: string;
  readonly beginId: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly signal: AbortSignal;
  readonly at: number;
  /** Rejects with the signal's reason once the delivery is aborted: what a handler that honours shutdown does. */
  readonly aborted: Promise<never>;
  abortedAt?: number;
  settledAt?: number;
}

/** A processor that records every delivery and behaves as `behaviour` says. */
function recorder(behaviour: (d: Delivery) => Promise<JobOutcome> = async () => "done") {
  const deliveries: Delivery[] = [];
  let inFlight = 0;
  let peak = 0;
  const processor: JobProcessor = {
    watchdog: async () => [],
    async perform(data, context) {
      const { signal } = context;
      let onAbort = (): void => {};
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => {
          d.abortedAt = Date.now();
          reject(signal.reason);
        };
      });
      aborted.catch(() => {});
      const d: Delivery = {
        kind: (data as { kind: string }).kind,
        beginId: (data as { beginId?: string }).beginId ?? "",
        attempt: context.attempt,
        maxAttempts: context.maxAttempts,
        signal,
        at: Date.now(),
        aborted,
      };
      // One listener per delivery, removed when it settles: a runner may share one signal between jobs.
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      deliveries.push(d);
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      try {
        return await behaviour(d);
      } finally {
        signal.removeEventListener("abort", onAbort);
        inFlight -= 1;
        d.settledAt = Date.now();
      }
    },
  };
  return {
    processor,
    deliveries,
    get inFlight() {
      return inFlight;
    },
    get peak() {
      return peak;
    },
    of: (beginId: string) => deliveries.filter((d) => d.beginId === beginId),
  };
}

function gate() {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function batch(id: string, beginId: string, extra: Partial<QueueJob> = {}): QueueJob {
  return {
    id,
    runAt: Date.now() - 1_000,
    attempts: 3,
    data: { kind: "batch", backfill: "contract", runId: "r1", cycle: 0, beginId, endId: beginId },
    ...extra,
  };
}

/**
 * The worker-runner conformance suite: concurrency, the `shutdown` modes, hand-back without
 * spending an attempt, a dead worker's job running again, the queue's stall limit never losing
 * a range (with a real runtime and reconciliation), priorities, and the watchdog loop. Call it
 * at the top level of a test file; the factory is called before every test.
 *
 * @example
 * ```ts
 * import { describeWorkerContract, serveChildWorker } from "@superspreader/contract-tests";
 * import { fork } from "node:child_process";
 *
 * describeWorkerContract("bullmq", async () => {
 *   const connection = new Redis(process.env.SUPERSPREADER_REDIS_URL!, { maxRetriesPerRequest: null });
 *   const queueName = `contract-${Math.random().toString(36).slice(2)}`;
 *   const timings = { lockDurationMs: 1_000, stalledIntervalMs: 300 }; // maxStalledCount stays at its default
 *   return {
 *     queue: createBullMQJobQueue({ connection, queueName }),
 *     startWorker: (spreader, options) => runBullMQWorker({ spreader, connection, queueName, ...timings, ...options }),
 *     // test/fixtures/worker.ts calls runChildWorker((spreader, options) => runBullMQWorker({ … }))
 *     startKillableWorker: (spreader, options) =>
 *       serveChildWorker(fork("test/fixtures/worker.ts", [queueName], { execArgv: ["--import", "tsx"] }), spreader, options),
 *     cleanup: async () => void connection.disconnect(),
 *   };
 * }, { stallLimit: 1 });
 * ```
 */
export function describeWorkerContract(name: string, factory: () => Promise<WorkerHarness>, options: WorkerContractOptions = {}): void {
  const redeliveryMs = options.redeliveryTimeoutMs ?? 20_000;
  // Child workers take a second or two to start on a loaded machine, and a dead worker's job a few more to come back.
  describe(`worker contract: ${name}`, { timeout: redeliveryMs + 30_000 }, () => {
    let harness: WorkerHarness;
    let queue: JobQueue;
    let workers: Array<ContractWorker | KillableContractWorker>;
    let prefix: string;

    const start = async (processor: JobProcessor, extra: Partial<WorkerStartOptions> = {}) => {
      const worker = await harness.startWorker(processor, { ...DEFAULTS, ...extra });
      workers.push(worker);
      return worker;
    };
    const startKillable = async (processor: JobProcessor, extra: Partial<WorkerStartOptions> = {}) => {
      const worker = await harness.startKillableWorker(processor, { ...DEFAULTS, ...extra });
      workers.push(worker);
      return worker;
    };
    const stateOf = async (id: string): Promise<JobState> => (await queue.lookup([id]))[0] ?? "missing";
    const completes = (id: string, timeoutMs = 15_000) => waitUntil(`job ${id} to complete`, async () => (await stateOf(id)) === "completed", timeoutMs);

    beforeEach(async () => {
      harness = await factory();
      queue = harness.queue;
      workers = [];
      prefix = `w${randomSuffix()}`;
    });
    afterEach(async () => {
      // Killing is quicker than a drain and leaves nothing behind that matters: the queue is dropped.
      for (const worker of workers.reverse()) await ("kill" in worker ? worker.kill() : worker.close());
      await queue.close();
      await harness.cleanup?.();
    });

    it("runs at most `concurrency` jobs at once, and that many when enough are due", async () => {
      const release = gate();
      const r = recorder(async (d) => {
        await Promise.race([release.promise, d.aborted]);
        return "done";
      });
      const ids = Array.from({ length: 7 }, (_, i) => `${prefix}-c${i}`);
      await queue.enqueue(ids.map((id, i) => batch(id, String(i + 1))));
      await start(r.processor, { concurrency: 3 });
      await waitUntil("three jobs running", () => r.inFlight === 3);
      // Long enough for a worker that ignores its limit to take more.
      await sleep(300);
      expect(r.deliveries).toHaveLength(3);
      release.open();
      await waitUntil("all seven completed", async () => (await queue.lookup(ids)).every((s) => s === "completed"), 15_000);
      expect(r.peak).toBe(3);
      expect(r.deliveries).toHaveLength(7);
    });

    it('shutdown "drain": close() lets running jobs finish within shutdownTimeoutMs, then aborts the rest, which go back unspent and run again', async () => {
      const finishQuick = gate();
      const r = recorder(async (d) => {
        if (d.beginId === "1") {
          await finishQuick.promise;
          return "done";
        }
        return d.aborted;
      });
      const [quick, slow] = [`${prefix}-quick`, `${prefix}-slow`];
      await queue.enqueue([batch(quick, "1"), batch(slow, "2")]);
      const worker = await start(r.processor, { concurrency: 2, shutdown: "drain", shutdownTimeoutMs: 800 });
      await waitUntil("both jobs running", () => r.inFlight === 2);
      const closeAt = Date.now();
      const closing = worker.close();
      setTimeout(finishQuick.open, 200);
      await closing;
      const closedAt = Date.now();

      const [q] = r.of("1");
      const [s] = r.of("2");
      // The quick job finished during the drain, before anything was aborted; it is recorded.
      expect(q?.settledAt).toBeLessThan(s?.abortedAt ?? Number.POSITIVE_INFINITY);
      expect(await stateOf(quick)).toBe("completed");
      // The slow one was aborted only when the drain ran out, and went back to the queue.
      expect((s?.abortedAt ?? 0) - closeAt).toBeGreaterThanOrEqual(800 - SLACK_MS);
      expect(closedAt - closeAt).toBeGreaterThanOrEqual(800 - SLACK_MS);
      // The aborted handler gave up at once: close() does not wait out the grace after the abort.
      expect(closedAt - closeAt).toBeLessThan(800 + 600);
      expect(["waiting", "delayed"]).toContain(await stateOf(slow));

      const again = recorder();
      await start(again.processor);
      await completes(slow);
      expect(again.deliveries.map((d) => [d.beginId, d.attempt])).toEqual([["2", s?.attempt]]);
      expect(s?.attempt).toBe(1);
    });

    it('shutdown "abort": close() aborts running jobs at once; they go back without spending an attempt and run again', async () => {
      const r = recorder((d) => d.aborted);
      const id = `${prefix}-abort`;
      await queue.enqueue([batch(id, "1", { attempts: 2 })]);
      const worker = await start(r.processor, { shutdown: "abort", shutdownTimeoutMs: 10_000 });
      await waitUntil("the job running", () => r.inFlight === 1);
      const closeAt = Date.now();
      await worker.close();
      const [d] = r.deliveries;
      expect((d?.abortedAt ?? Number.POSITIVE_INFINITY) - closeAt).toBeLessThan(1_000);
      expect(Date.now() - closeAt, "close() waited for the timeout instead of handing the job back").toBeLessThan(5_000);
      expect(["waiting", "delayed"]).toContain(await stateOf(id));

      const again = recorder();
      await start(again.processor);
      await completes(id);
      // Attempt 1 again: the aborted run did not count (spending it would make this attempt 2, the last).
      expect(again.deliveries.map((x) => [x.attempt, x.maxAttempts])).toEqual([[1, 2]]);
    });

    it("close() gives up on a handler that ignores the abort after shutdownTimeoutMs; its job runs again later", async () => {
      const r = recorder(() => new Promise<JobOutcome>(() => {}));
      const id = `${prefix}-stubborn`;
      await queue.enqueue([batch(id, "1", { attempts: 2 })]);
      const worker = await start(r.processor, { shutdown: "abort", shutdownTimeoutMs: 300 });
      await waitUntil("the job running", () => r.inFlight === 1);
      const closeAt = Date.now();
      await worker.close();
      expect(Date.now() - closeAt).toBeGreaterThanOrEqual(300 - SLACK_MS);
      expect(Date.now() - closeAt).toBeLessThan(5_000);
      expect(["waiting", "delayed", "active"]).toContain(await stateOf(id));

      const again = recorder();
      await start(again.processor);
      await completes(id, redeliveryMs);
      expect(again.deliveries.map((x) => x.attempt)).toEqual([1]);
    });

    it("a job whose worker died (killed, not closed) runs again on another worker, as the same attempt", async () => {
      const r = recorder(() => new Promise<JobOutcome>(() => {}));
      const id = `${prefix}-orphan`;
      await queue.enqueue([batch(id, "1")]);
      const doomed = await startKillable(r.processor);
      await waitUntil("the job running on the doomed worker", () => r.deliveries.length === 1, 15_000);
      await doomed.kill();
      // A death aborts nothing: that is what tells it from a shutdown.
      expect(r.deliveries[0]?.signal.aborted).toBe(false);
      expect(await stateOf(id)).not.toBe("completed");

      const again = recorder();
      await start(again.processor);
      await completes(id, redeliveryMs);
      expect(again.deliveries.map((x) => [x.attempt, x.maxAttempts])).toEqual([[1, 3]]);
    });

    it(
      "the queue's stall limit cannot lose a killed worker's batch: with a real runtime, reconciliation runs it",
      async () => {
        const kills = (options.stallLimit ?? 1) + 1;
        const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), reconcileAfterMs: 1_000 });
        const backfill = `stall-${randomSuffix()}`;
        const done: IdRange[] = [];
        let victim: { beginId: bigint; endId: bigint; cycle: number } | null = null;
        let victimRuns = 0;
        spreader.define(backfill, {
          source: createMemoryIdSource({ minId: 1n, maxId: 30n }),
          // Three batches in the first one-second cycle; a tick a second reconciles while one is outstanding.
          config: { batchSize: 10, duration: 1, perSecondOnPeak: 3, perSecondOffPeak: 3, hold: false },
          async handle({ beginId, endId, cycle }) {
            victim ??= { beginId, endId, cycle };
            if (victim.beginId === beginId && victimRuns < kills) {
              victimRuns += 1;
              return new Promise<void>(() => {}); // its worker dies under it
            }
            done.push({ beginId, endId });
          },
        });
        // Two slots: ticks keep running beside the hanging batch.
        let worker = await startKillable(spreader, { concurrency: 2 });
        const { runId } = await spreader.start(backfill);
        for (let k = 1; k <= kills; k++) {
          await waitUntil(`run ${k} of the victim batch`, () => victimRuns === k, redeliveryMs);
          await worker.kill();
          if (k < kills) worker = await startKillable(spreader, { concurrency: 2 });
        }
        // The survivor also runs the watchdog, should a tick have died with a worker.
        await start(spreader, { concurrency: 2, watchdogIntervalMs: 500 });
        await waitUntil("the run to complete", async () => (await spreader.status(backfill)).status === "completed", 3 * redeliveryMs);

        const audit = await spreader.audit(backfill);
        expect(audit.gaps).toEqual([]);
        expect(audit.failed).toEqual([]);
        expect(mergeRanges(done)).toEqual([{ beginId: 1n, endId: 30n }]);
        const v = victim as unknown as { beginId: bigint; endId: bigint; cycle: number };
        const victimState = await stateOf(batchJobId(backfill, runId, v.cycle, v));
        const reconciled = (await spreader.status(backfill)).reconciled.ranges;
        if (options.stallLimit === undefined) {
          // The queue ran the stalled job again by itself.
          expect(victimState).toBe("completed");
          expect(reconciled).toBe(0);
        } else {
          // The queue gave the job up after its stall limit; reconciliation enqueued the range again.
          expect(victimState).toBe("failed");
          expect(reconciled).toBeGreaterThanOrEqual(1);
        }
      },
      4 * redeliveryMs + 60_000,
    );

    it.skipIf(options.skipPriorities === true)("runs a due tick (priority 1) before due batches (priority 1000) enqueued before it", async () => {
      const past = Date.now() - 5_000;
      const batches = Array.from({ length: 5 }, (_, i) => batch(`${prefix}-b${i}`, String(i + 1), { runAt: past + i, priority: DEFAULT_BATCH_PRIORITY }));
      const tick: QueueJob = {
        id: `${prefix}-tick`,
        runAt: past + 10,
        attempts: 1,
        priority: TICK_PRIORITY,
        data: { kind: "tick", backfill: "contract", runId: "r1", cycle: 1, epoch: 0, scheduledAt: past + 10 },
      };
      await queue.enqueue([...batches, tick]);
      const r = recorder();
      await start(r.processor);
      await waitUntil("six deliveries", () => r.deliveries.length === 6);
      expect(r.deliveries.map((d) => d.kind)).toEqual(["tick", "batch", "batch", "batch", "batch", "batch"]);
    });

    it("calls the processor's watchdog every watchdogIntervalMs, and no more once closed", async () => {
      const calls: number[] = [];
      const processor: JobProcessor = {
        perform: async () => "done",
        watchdog: async (): Promise<WatchdogAction[]> => {
          calls.push(Date.now());
          return [];
        },
      };
      const startedAt = Date.now();
      const worker = await start(processor, { watchdogIntervalMs: 200 });
      await waitUntil("four watchdog runs", () => calls.length >= 4, 5_000);
      await worker.close();
      const runs = calls.length;
      expect((calls[0] ?? 0) - startedAt).toBeLessThan(1_000);
      for (let i = 1; i < calls.length; i++) {
        const gap = (calls[i] ?? 0) - (calls[i - 1] ?? 0);
        expect(gap).toBeGreaterThanOrEqual(200 - SLACK_MS);
        // Far below the 5 s default: the option was honoured (a loaded machine may delay a timer a little).
        expect(gap).toBeLessThan(200 * 1.1 + 1_500);
      }
      await sleep(500);
      expect(calls).toHaveLength(runs);
    });

    it("watchdogIntervalMs 0 turns the watchdog off", async () => {
      let calls = 0;
      const r = recorder();
      const processor: JobProcessor = {
        perform: r.processor.perform,
        watchdog: async () => {
          calls += 1;
          return [];
        },
      };
      const id = `${prefix}-alive`;
      await start(processor, { watchdogIntervalMs: 0 });
      await queue.enqueue([batch(id, "1")]);
      await completes(id);
      await sleep(500);
      expect(calls).toBe(0);
    });
  });
}

/* ------------------------------------------------------------- child workers */

interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

/** Messages from the parent to a child worker. */
type ToChild =
  | { readonly ss: 1; readonly type: "start"; readonly options: WorkerStartOptions }
  | { readonly ss: 1; readonly type: "resolved"; readonly call: number; readonly value: unknown }
  | { readonly ss: 1; readonly type: "rejected"; readonly call: number; readonly error: SerializedError }
  | { readonly ss: 1; readonly type: "close" };

/** Messages from a child worker to the parent. */
type ToParent =
  | { readonly ss: 1; readonly type: "ready" }
  | { readonly ss: 1; readonly type: "start-failed"; readonly error: SerializedError }
  | { readonly ss: 1; readonly type: "perform"; readonly call: number; readonly data: unknown; readonly attempt: number; readonly maxAttempts: number }
  | { readonly ss: 1; readonly type: "abort"; readonly call: number }
  | { readonly ss: 1; readonly type: "watchdog"; readonly call: number }
  | { readonly ss: 1; readonly type: "closed" };

function serialize(error: unknown): SerializedError {
  const e = error as { name?: unknown; message?: unknown; code?: unknown } | null;
  return {
    name: typeof e?.name === "string" ? e.name : "Error",
    message: typeof e?.message === "string" ? e.message : String(error),
    ...(typeof e?.code === "string" ? { code: e.code } : {}),
  };
}

function deserialize(error: SerializedError): Error {
  return Object.assign(new Error(error.message), error);
}

const isMessage = (m: unknown): m is { ss: 1; type: string } => typeof m === "object" && m !== null && (m as { ss?: unknown }).ss === 1;

/**
 * The parent side of a worker in a child process: serves the child's processor calls with
 * `processor` (so the runtime, its store and the test's handlers stay in this process), starts
 * the child's runner with `options`, and resolves once it runs. `kill()` SIGKILLs the child — a
 * real death, locks and all. Pair it with {@link runChildWorker} in the child, which must be
 * forked with an IPC channel (`child_process.fork`).
 *
 * @example
 * ```ts
 * const child = fork(fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url)), [queueName], { execArgv: ["--import", "tsx"] });
 * const worker = await serveChildWorker(child, spreader, { concurrency: 2, shutdown: "drain", shutdownTimeoutMs: 1_000, watchdogIntervalMs: 0 });
 * await worker.kill();
 * ```
 */
export async function serveChildWorker(child: ChildProcess, processor: JobProcessor, options: WorkerStartOptions): Promise<KillableContractWorker> {
  const aborts = new Map<number, AbortController>();
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<void>((resolve) => {
    if (gone()) resolve();
    else child.once("exit", () => resolve());
  });
  const send = (message: ToChild) => {
    // A child that died meanwhile cannot be told; the callback swallows the closed-channel error.
    if (child.connected) child.send(message, () => {});
  };
  const answer = (call: number, work: () => Promise<unknown>) => {
    work().then(
      (value) => send({ ss: 1, type: "resolved", call, value }),
      (error: unknown) => send({ ss: 1, type: "rejected", call, error: serialize(error) }),
    );
  };
  let ready: { resolve: () => void; reject: (error: Error) => void } | null = null;
  const started = new Promise<void>((resolve, reject) => {
    ready = { resolve, reject };
  });
  child.on("message", (message: unknown) => {
    if (!isMessage(message)) return;
    const m = message as ToParent;
    switch (m.type) {
      case "ready":
        ready?.resolve();
        break;
      case "start-failed":
        ready?.reject(deserialize(m.error));
        break;
      case "perform": {
        const controller = new AbortController();
        aborts.set(m.call, controller);
        answer(m.call, async () => {
          try {
            return await processor.perform(m.data, { attempt: m.attempt, maxAttempts: m.maxAttempts, signal: controller.signal });
          } finally {
            aborts.delete(m.call);
          }
        });
        break;
      }
      case "abort":
        aborts.get(m.call)?.abort(new DOMException("the worker is shutting down", "AbortError"));
        break;
      case "watchdog":
        answer(m.call, () => processor.watchdog());
        break;
      case "closed":
        break;
    }
  });
  void exited.then(() => ready?.reject(new Error(`the child worker exited (${child.exitCode ?? child.signalCode}) before it was ready`)));
  send({ ss: 1, type: "start", options });
  await started;
  return {
    async close() {
      send({ ss: 1, type: "close" });
      await exited;
    },
    async kill() {
      if (!gone()) child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * The child side of {@link serveChildWorker}: waits for the parent's options, starts the runner
 * with `start` and a processor whose calls are served by the parent, and exits once the runner
 * closed. Call it at the top level of the child's module.
 *
 * @example
 * ```ts
 * // test/fixtures/worker.ts
 * runChildWorker(async (spreader, options) => {
 *   const connection = new Redis(process.env.SUPERSPREADER_REDIS_URL!, { maxRetriesPerRequest: null });
 *   const worker = await runBullMQWorker({ spreader, connection, queueName: process.argv[2]!, ...options });
 *   return { close: async () => { await worker.close(); connection.disconnect(); } };
 * });
 * ```
 */
export function runChildWorker(start: (processor: JobProcessor, options: WorkerStartOptions) => Promise<ContractWorker>): void {
  const channel = process.send?.bind(process);
  if (!channel) throw new Error("[superspreader] runChildWorker must run in a process forked with an IPC channel (child_process.fork)");
  const send = (message: ToParent, then?: () => void) => channel(message, undefined, {}, () => then?.());
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let calls = 0;
  const call = <T>(message: (call: number) => ToParent, signal?: AbortSignal): Promise<T> => {
    const id = ++calls;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => send({ ss: 1, type: "abort", call: id });
      pending.set(id, {
        resolve: (value) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(value as T);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      });
      send(message(id));
      // After the call, so the parent knows the call it aborts.
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  };
  const processor: JobProcessor = {
    perform: (data, context) =>
      call<JobOutcome>((id) => ({ ss: 1, type: "perform", call: id, data, attempt: context.attempt, maxAttempts: context.maxAttempts }), context.signal),
    watchdog: () => call<WatchdogAction[]>((id) => ({ ss: 1, type: "watchdog", call: id })),
  };
  let worker: ContractWorker | null = null;
  process.on("message", (message: unknown) => {
    if (!isMessage(message)) return;
    const m = message as ToChild;
    switch (m.type) {
      case "start":
        start(processor, m.options).then(
          (started) => {
            worker = started;
            send({ ss: 1, type: "ready" });
          },
          (error: unknown) => send({ ss: 1, type: "start-failed", error: serialize(error) }, () => process.exit(1)),
        );
        break;
      case "resolved":
        pending.get(m.call)?.resolve(m.value);
        pending.delete(m.call);
        break;
      case "rejected":
        pending.get(m.call)?.reject(deserialize(m.error));
        pending.delete(m.call);
        break;
      case "close":
        void (worker?.close() ?? Promise.resolve()).finally(() => send({ ss: 1, type: "closed" }, () => process.exit(0)));
        break;
    }
  });
  // The parent went away (its test ended or crashed): nobody can serve this worker any more.
  process.on("disconnect", () => process.exit(1));
}
