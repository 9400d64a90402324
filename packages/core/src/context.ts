import type { Clock } from "./clock.js";
import type { BackfillConfig } from "./config.js";
import { tickJob } from "./cycle.js";
import { parseDoc, type BackfillDoc } from "./doc.js";
import { SuperSpreaderError } from "./errors.js";
import type { EventHub } from "./events.js";
import { HealthMonitor } from "./loop.js";
import type { ConfigChange, JobQueue, StateStore } from "./ports.js";
import type { BackfillDefinition, BatchContext, ChangeOptions } from "./runtime.js";
import { checkName } from "./validate-args.js";

/** Compare-and-set retries before giving up with CONFLICT. */
export const MAX_CAS_ROUNDS = 50;
/** Failed ranges read when deciding whether a finished run failed, and by audits. */
export const SCAN_LIMIT = 100_000;
/**
 * How long a batch may go by the document this process read or wrote last, instead of reading it
 * again (ms): a pause, a hold or a cancel written by another process stops new batches here within this.
 */
export const DOC_CACHE_MS = 250;

/** A defined backfill with its validated config. */
export type Definition = Omit<BackfillDefinition, "handle"> & {
  /** `tx` is given exactly when `transactional` is true. */
  handle(context: BatchContext & { readonly tx?: unknown }): Promise<unknown>;
  readonly transactional?: boolean;
  readonly validConfig: BackfillConfig;
};

/** What every part of the runtime shares: the ports, the clock, events, definitions and the read/write helpers. */
export interface Core {
  readonly queue: JobQueue | null;
  readonly store: StateStore;
  readonly clock: Clock;
  readonly events: EventHub;
  readonly registry: Map<string, Definition>;
  readonly tickAttempts: number;
  readonly reconcileAfterMs: number;
  /** Polls the backfills' health indicators (cached per interval, one poll at a time). */
  readonly health: HealthMonitor;
  read(name: string): Promise<{ version: number; doc: BackfillDoc } | null>;
  /** The document as this process read or wrote it less than {@link DOC_CACHE_MS} ago, or null. No round trip. */
  cachedRead(name: string): { version: number; doc: BackfillDoc } | null;
  /** A batch's read: the document and a start token of the run's rate limit (see `StateStore.readForStart`). */
  readForStart(name: string, runId: string, at: number): Promise<{ current: { version: number; doc: BackfillDoc } | null; waitMs: number }>;
  readOrThrow(name: string): Promise<{ version: number; doc: BackfillDoc }>;
  /**
   * Read-modify-write with compare-and-set. `change` returns the new document, or null to
   * leave it as it is. Retried when another writer got there first.
   */
  mutate(name: string, change: (doc: BackfillDoc) => BackfillDoc | null): Promise<{ before: BackfillDoc; after: BackfillDoc; version: number; changed: boolean }>;
  /** Writes a document read at `version`; null when another writer got there first. */
  write(name: string, version: number, doc: BackfillDoc): Promise<number | null>;
  /**
   * Moves a run to `to` with a new epoch (older ticks turn stale) and enqueues the tick of
   * its current cycle, so the chain lives again; without a queue (the CLI), the workers'
   * watchdog enqueues it. Every revival goes through here, so there is never a second chain.
   */
  kick(name: string, change: (doc: BackfillDoc) => Partial<BackfillDoc> | null): Promise<{ after: BackfillDoc; kicked: boolean }>;
  /** Appends to the audit trail. */
  recordChange(name: string, changes: ConfigChange["changes"], options?: ChangeOptions): Promise<void>;
  base(doc: BackfillDoc): { backfill: string; runId: string; at: number };
  /** The queue, or an error saying this process has none. */
  needQueue(what: string): JobQueue;
}

export interface CoreOptions {
  readonly queue: JobQueue | null;
  readonly store: StateStore;
  readonly clock: Clock;
  readonly events: EventHub;
  readonly tickAttempts: number;
  readonly reconcileAfterMs: number;
}

export function createCore(options: CoreOptions): Core {
  const { queue, store, clock, events } = options;
  const registry = new Map<string, Definition>();

  // Every batch reads the document. Validating its config (time zone included) is the costly
  // part, so the last config seen valid is remembered per backfill, with its JSON.
  const validConfigs = new Map<string, { json: string; config: BackfillConfig }>();
  const parse = (name: string, stored: { version: number; value: unknown }) => {
    const raw = (stored.value as { config?: unknown } | null)?.config;
    const json = JSON.stringify(raw);
    const known = validConfigs.get(name);
    const doc = parseDoc(name, stored.value, () => (known?.json === json ? known.config : undefined));
    if (known?.json !== json) validConfigs.set(name, { json, config: doc.config });
    return { version: stored.version, doc };
  };
  // The last document this process read or wrote, per backfill, and when (clock ms).
  const recent = new Map<string, { at: number; current: { version: number; doc: BackfillDoc } | null }>();
  const remember = (name: string, current: { version: number; doc: BackfillDoc } | null) => {
    recent.set(name, { at: clock.now(), current });
    return current;
  };
  const read: Core["read"] = async (name) => {
    const stored = await store.get(name);
    return remember(name, stored ? parse(name, stored) : null);
  };
  const readForStart: Core["readForStart"] = async (name, runId, at) => {
    const { doc, waitMs } = await store.readForStart(name, runId, at);
    return { current: remember(name, doc ? parse(name, doc) : null), waitMs };
  };
  const cachedRead: Core["cachedRead"] = (name) => {
    const seen = recent.get(name);
    if (!seen || seen.current === null) return null;
    const age = clock.now() - seen.at;
    return age >= 0 && age <= DOC_CACHE_MS ? seen.current : null;
  };

  const readOrThrow: Core["readOrThrow"] = async (name) => {
    checkName(name);
    const current = await read(name);
    if (!current) {
      const hint = registry.has(name) ? "it is defined but was never started: call start() first" : "no backfill of that name is stored";
      throw new SuperSpreaderError("UNKNOWN_BACKFILL", `backfill "${name}" not found: ${hint}`);
    }
    return current;
  };

  const write: Core["write"] = async (name, version, doc) => {
    const next = { ...doc, updatedAt: clock.now() };
    const written = await store.compareAndSet(name, version, next);
    // Ours is the newest; a write that lost to another writer says ours is stale.
    if (written === null) recent.delete(name);
    else remember(name, { version: written, doc: next });
    return written;
  };

  const mutate: Core["mutate"] = async (name, change) => {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const { version, doc } = await readOrThrow(name);
      const next = change(doc);
      if (next === null) return { before: doc, after: doc, version, changed: false };
      const written = await write(name, version, next);
      if (written !== null) return { before: doc, after: next, version: written, changed: true };
    }
    throw new SuperSpreaderError("CONFLICT", `backfill "${name}": the state kept changing under ${MAX_CAS_ROUNDS} attempts to update it; try again`);
  };

  const kick: Core["kick"] = async (name, change) => {
    const { after, changed } = await mutate(name, (doc) => {
      const patch = change(doc);
      // Without a queue the tick is left to the workers' watchdog, which looks at once for a run marked so.
      return patch === null ? null : { ...doc, epoch: doc.epoch + 1, needsTick: queue === null, ...patch };
    });
    if (changed && queue !== null) {
      const at = Math.max(clock.now(), after.pending?.beginAt ?? after.nextTickAt);
      await queue.enqueue([tickJob(after, after.cycle, after.epoch, at, options.tickAttempts)]);
    }
    return { after, kicked: changed };
  };

  return {
    queue,
    store,
    clock,
    events,
    registry,
    tickAttempts: options.tickAttempts,
    reconcileAfterMs: options.reconcileAfterMs,
    health: new HealthMonitor(() => clock.now()),
    read,
    cachedRead,
    readForStart,
    readOrThrow,
    mutate,
    write,
    kick,
    async recordChange(name, changes, opts = {}) {
      await store.appendConfigChange(name, {
        at: clock.now(),
        actor: opts.actor ?? "api",
        ...(opts.reason === undefined ? {} : { reason: opts.reason }),
        changes,
      });
    },
    base: (doc) => ({ backfill: doc.name, runId: doc.runId, at: clock.now() }),
    needQueue(what) {
      if (queue === null) {
        throw new SuperSpreaderError("INVALID_STATE", `${what} needs a queue, and this spreader was created without one`);
      }
      return queue;
    },
  };
}
