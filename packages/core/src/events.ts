/** Fields every event carries. */
interface BaseEvent {
  /** The backfill's name. */
  readonly backfill: string;
  readonly runId: string;
  /** When the event happened (epoch ms, from the runtime's clock). */
  readonly at: number;
}

/** Fields of events about one batch. */
interface BatchEvent extends BaseEvent {
  readonly cycle: number;
  readonly beginId: bigint;
  readonly endId: bigint;
}

/**
 * Everything the runtime reports, by event name. Events are emitted in the
 * process where the thing happened (a worker for batches and ticks, the caller
 * for start/pause/resume/cancel).
 */
export interface SuperSpreaderEvents {
  started: BaseEvent & { readonly minId: bigint; readonly initialId: bigint };
  cyclePlanned: BaseEvent & {
    readonly cycle: number;
    /** Batches enqueued by this cycle, including re-enqueued deferred ones. */
    readonly batches: number;
    /** Of those, deferred or failed ranges enqueued again. */
    readonly requeued: number;
    readonly perSecond: number;
    readonly onPeak: boolean;
    /** `work`, or `probe` for a held run's probe cycle. */
    readonly kind: "work" | "probe";
    /** The tick ran late: the cycle started when it ran, on a new grid, without catching up. */
    readonly late: boolean;
    /** The cycle's start and the next tick's run time (epoch ms). */
    readonly beginAt: number;
    readonly nextTickAt: number;
  };
  batchStarted: BatchEvent & {
    readonly attempt: number;
    /** The batch's planned run time (epoch ms); `at - scheduledAt` is the queue lag. Absent for jobs of older versions. */
    readonly scheduledAt?: number;
    /** A held run's probe batch. */
    readonly probe?: boolean;
  };
  batchFinished: BatchEvent & {
    readonly attempt: number;
    readonly durationMs: number;
    /** False when the range had already been recorded (a repeated delivery). */
    readonly firstCompletion: boolean;
  };
  /** The handler threw, or the range could not be recorded done (then `final` is false and the job is retried). */
  batchFailed: BatchEvent & {
    readonly attempt: number;
    readonly maxAttempts: number;
    readonly durationMs: number;
    readonly error: unknown;
    /** True when no retry follows: the range was recorded as failed. */
    readonly final: boolean;
  };
  /** A batch was recorded for re-enqueueing instead of running: its run was paused or held, it came too late, or it failed while the run was held. */
  batchDeferred: BatchEvent & { readonly reason: "paused" | "held" | "late" | "failed while held" };
  paused: BaseEvent;
  /**
   * The run goes on again: after `resume` (`by: "operator"`), by itself after a successful probe (`by: "probe"`),
   * or once its health indicators no longer say stop (`by: "health"`), with how long it was held.
   */
  resumed: BaseEvent & { readonly by?: "operator" | "probe" | "health"; readonly heldForMs?: number };
  /**
   * The run is held: no attempts are spent and batches are deferred. `cause: "failures"`: a burst of
   * failures, until a probe succeeds; `cause: "health"`: a health indicator said stop, until it no longer does.
   */
  held: BaseEvent & { readonly reason: string; readonly lastError: string | null; readonly nextProbeAt: number; readonly cause: "failures" | "health" };
  /**
   * The closed loop changed the batch size or the rate in force (autotune, the deadline, the shared
   * budget): old → new (ids per batch, or batches per second) and why, as recorded in the audit trail
   * with actor `"autotune"`; `perSecond` and `batchSize` are what the next cycle runs with.
   */
  tuned: BaseEvent & { readonly field: "batchSize" | "rate"; readonly from: number; readonly to: number; readonly reason: string; readonly perSecond: number; readonly batchSize: number };
  /** A held run's probe batch failed; the next one waits longer. */
  probeFailed: BaseEvent & { readonly error: unknown };
  /**
   * Ranges found lost and moved to the deferred entries, to be enqueued again: `queue`: their jobs were gone
   * or given up by the queue without the runtime seeing it (`state` says which); `ledger`: nothing accounted
   * for them at all.
   */
  rangesLost: BaseEvent & {
    readonly source: "queue" | "ledger";
    readonly ranges: ReadonlyArray<{ readonly beginId: bigint; readonly endId: bigint; readonly cycle: number; readonly state: string }>;
  };
  /** The watchdog revived a tick chain that had no live tick, or carried out a start requested from outside. */
  revived: BaseEvent & { readonly action: "revived" | "started"; readonly reason: string };
  cancelled: BaseEvent;
  /** The run ended: every id done (`completed`), or every remaining range failed (`failed`). */
  completed: BaseEvent & { readonly status: "completed" | "failed" };
  configChanged: BaseEvent & { readonly changes: Readonly<Record<string, { readonly from: unknown; readonly to: unknown }>> };
}

/** Name of an event. */
export type SuperSpreaderEventName = keyof SuperSpreaderEvents;

/** A listener for event `E`. */
export type SuperSpreaderListener<E extends SuperSpreaderEventName> = (event: SuperSpreaderEvents[E]) => void;

/** Minimal typed emitter; a throwing listener is isolated and reported to `onListenerError`. */
export class EventHub {
  private readonly listeners = new Map<SuperSpreaderEventName, Set<(event: never) => void>>();

  constructor(private readonly onListenerError: (error: unknown, event: SuperSpreaderEventName) => void) {}

  on<E extends SuperSpreaderEventName>(name: E, listener: SuperSpreaderListener<E>): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  emit<E extends SuperSpreaderEventName>(name: E, event: SuperSpreaderEvents[E]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as SuperSpreaderListener<E>)(event);
      } catch (error) {
        this.onListenerError(error, name);
      }
    }
  }
}
