import type { Core } from "./context.js";
import { tickJob } from "./cycle.js";
import type { BackfillDoc, BackfillStatusName, ExtendSummary } from "./doc.js";
import { SuperSpreaderError } from "./errors.js";
import type { IdRange } from "./ports.js";

/** What {@link SuperSpreader.extend} found and did. */
export interface ExtendReport {
  readonly name: string;
  readonly runId: string;
  /** True when the run's id space grew; false when the source has nothing above it (a no-op). */
  readonly extended: boolean;
  /** The run's highest id before and after (`initialId`). */
  readonly fromId: bigint;
  readonly toId: bigint;
  /** The ids added, `(fromId, toId]`, or null when nothing was. */
  readonly added: IdRange | null;
  /** What the source's `maxId()` answered (null: no rows, or not read because the extension was requested). */
  readonly sourceMaxId: bigint | null;
  /** True when a completed or failed run was set running again to plan the new ids. */
  readonly revived: boolean;
  /**
   * True when this process does not define the backfill (the CLI without `--config`): the extension was
   * written as a request that a worker defining it carries out; read `lastExtend` of the stored run after.
   */
  readonly requested: boolean;
  /** The run's status after the call. */
  readonly status: BackfillStatusName;
}

/** Options of an extension, as {@link ChangeOptions} without `expectedRevision` checks at the store. */
export interface ExtendCall {
  readonly actor?: string;
  readonly reason?: string;
  readonly expectedRevision?: number;
  /** Checks the revision (runtime.ts's checkRevision), before anything is read from the source. */
  readonly check?: (doc: BackfillDoc) => void;
}

const ended = (status: BackfillStatusName): boolean => status === "completed" || status === "failed";

/**
 * Extends a run to the ids its source holds above the run's id space: reads `maxId()`, then, in one
 * compare-and-set of the run's document, raises `initialId` to it and appends the span
 * `(initialId, maxId]` to the spans the cycles plan after the current one (a completed or failed run
 * becomes running again, with a new epoch, and its tick is enqueued, or left to the workers' watchdog
 * without a queue). Nothing is enqueued here: the next ticks plan the span like any other, storing each
 * plan before enqueueing it. A crash before the write changes nothing; after it, the span is stored
 * once, and a repeat finds the source's max at or below `initialId` and does nothing.
 *
 * In a process that does not define the backfill (no source to read), the extension is written as a
 * request (`extendRequest`) that the watchdog of a worker defining it carries out.
 */
export async function extendRun(core: Core, name: string, options: ExtendCall = {}): Promise<ExtendReport> {
  const { doc } = await core.readOrThrow(name);
  options.check?.(doc);
  if (doc.status === "cancelled" || doc.status === "starting") {
    throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}: there is no run to extend (start one with start(name, { restart: true }))`);
  }
  const actor = options.actor ?? "api";
  const report = (after: BackfillDoc, fields: Partial<ExtendReport>): ExtendReport => ({
    name,
    runId: after.runId,
    extended: false,
    fromId: BigInt(doc.initialId),
    toId: BigInt(after.initialId),
    added: null,
    sourceMaxId: null,
    revived: false,
    requested: false,
    status: after.status,
    ...fields,
  });
  const definition = core.registry.get(name);
  if (!definition) {
    const { after } = await core.mutate(name, (d) =>
      d.runId === doc.runId ? { ...d, extendRequest: { at: core.clock.now(), actor, reason: options.reason ?? null } } : null,
    );
    return report(after, { requested: true });
  }
  const max = await definition.source.maxId();
  let summary: ExtendSummary | null = null;
  let revived = false;
  const { after, changed } = await core.mutate(name, (d) => {
    if (d.runId !== doc.runId) {
      throw new SuperSpreaderError("CONFLICT", `backfill "${name}" started a new run (${d.runId}) while run ${doc.runId} was being extended: look at it again`);
    }
    if (d.status === "cancelled") throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" was cancelled while it was being extended`);
    const now = core.clock.now();
    const top = BigInt(d.initialId);
    const grows = max !== null && max > top;
    summary = { at: now, actor, extended: grows, fromId: d.initialId, toId: grows ? max.toString() : d.initialId, sourceMaxId: max === null ? null : max.toString() };
    if (!grows) return d.extendRequest !== null ? { ...d, extendRequest: null, lastExtend: summary } : null;
    const minId = BigInt(d.minId);
    // A run that started on an empty source has the id space [1, 0]: its first span starts at minId.
    const begin = top + 1n > minId ? top + 1n : minId;
    revived = ended(d.status);
    return {
      ...d,
      initialId: max.toString(),
      spans: [...d.spans, { beginId: begin.toString(), endId: max.toString() }],
      extendRequest: null,
      lastExtend: summary,
      revision: d.revision + 1,
      // A finished run has no tick: it runs again on a new epoch (as repair revives one).
      ...(revived ? { status: "running" as const, finishedAt: null, nextTickAt: now, pace: null, epoch: d.epoch + 1, needsTick: core.queue === null } : {}),
    };
  });
  const done = summary as ExtendSummary | null;
  if (!changed || done === null || !done.extended) return report(after, { sourceMaxId: max });
  if (revived && core.queue !== null) {
    // A crash before this enqueue leaves a running run without its tick: the watchdog enqueues it.
    await core.queue.enqueue([tickJob(after, after.cycle, after.epoch, Math.max(core.clock.now(), after.nextTickAt), core.tickAttempts)]);
  }
  // Recorded and reported like a config change (the telemetry's event list is closed): the id space grew.
  const changes = { initialId: { from: done.fromId, to: done.toId } };
  await core.recordChange(name, changes, { actor, reason: options.reason ?? (revived ? `extend (the ${doc.status} run runs again)` : "extend") });
  core.events.emit("configChanged", { ...core.base(after), changes });
  return report(after, {
    extended: true,
    fromId: BigInt(done.fromId),
    added: { beginId: BigInt(after.spans[after.spans.length - 1]?.beginId ?? done.fromId), endId: BigInt(done.toId) },
    sourceMaxId: max,
    revived,
  });
}
