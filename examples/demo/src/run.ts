import type { BackfillStatus, SuperSpreader } from "@superspreader/core";
import { BACKFILL_NAME, verifyAccounts } from "./accounts.js";
import type { AccountsTable, AnyPgDatabase, BatchWork } from "./accounts.js";
import type { ExampleSettings } from "./settings.js";
import { formatCount, watchBackfill } from "./report.js";
import type { BackfillSummary, Output, ProgressMode } from "./report.js";

/** Runs `step`, adding its duration to `phases[name]`. */
export async function timed<T>(phases: Record<string, number>, name: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await step();
  } finally {
    phases[name] = (phases[name] ?? 0) + Date.now() - started;
  }
}

/** The plan line printed when a run starts. */
export function describePlan(settings: ExampleSettings, status: BackfillStatus): string {
  const batches = Math.ceil(settings.rows / settings.batchSize);
  const perSecond = status.rate.perSecond;
  const paced = perSecond > 0 ? ` (≥ ${(batches / perSecond).toFixed(1)} s at this pace)` : " (nothing runs until the rate changes)";
  return (
    `Backfill "${status.name}": ${formatCount(batches)} batches of ${formatCount(settings.batchSize)} ids, ` +
    `${status.rate.onPeak ? "on-peak" : "off-peak"} now at ${perSecond} batches/s${paced}, a cycle every ${settings.duration} s\n`
  );
}

/** Options of {@link startAndVerify}. */
export interface StartAndVerifyOptions {
  /** A runtime on which the backfill is defined; its workers are already running. */
  spreader: SuperSpreader;
  /** The database and table the backfill writes, for the SQL verification. */
  db: AnyPgDatabase;
  table: AccountsTable;
  /** The run's settings (rows and batch size are reported). */
  settings: ExampleSettings;
  output: Output;
  mode: ProgressMode;
  /** Prefix of progress lines. */
  label: string;
  /** Time per phase, filled in with "backfill" and "verify". */
  phases: Record<string, number>;
  /** @default 2000 */
  logEveryMs?: number | undefined;
  /** Stops watching early; the run is then cancelled (or paused, see `onInterrupt`) and its partial work verified. */
  signal?: AbortSignal | undefined;
  /** What `signal` does to the run: cancel it, or pause it so that a later process can resume it. @default "cancel" */
  onInterrupt?: "cancel" | "pause";
  /**
   * Continue the run already stored instead of starting one: a paused run is resumed, ranges whose jobs
   * were lost with a previous process's queue are found by `repair()` and queued again, and the tick
   * chain is revived by `start()`. A completed run is only verified. @default false
   */
  resume?: boolean;
}

/** A run's outcome before the caller adds what only it knows (wall time, per-worker counts). */
export type RunOutcome = Omit<BackfillSummary, "wallMs" | "rowsWritten" | "repeatedBatches">;

/**
 * Starts the backfill, shows its progress until it ends (or `signal` aborts, which
 * cancels it), then checks the ledger with `audit()` and every row with SQL.
 *
 * @example
 * ```ts
 * const outcome = await startAndVerify({ spreader, db, table, settings, output: process.stdout, mode: "bar", label: "demo", phases: {} });
 * ```
 */
export async function startAndVerify(options: StartAndVerifyOptions): Promise<RunOutcome> {
  const { spreader, db, table, settings, output, phases, signal } = options;
  const { begun, final } = await timed(phases, "backfill", async () => {
    let begun: BackfillStatus;
    if (options.resume === true) {
      const stored = await spreader.status(BACKFILL_NAME);
      if (stored.status === "completed") {
        output.write(`Backfill "${stored.name}" had already completed; verifying it\n`);
        return { begun: stored, final: stored };
      }
      if (stored.status === "paused") await spreader.resume(BACKFILL_NAME, { actor: "example", reason: "demo resumed" });
      const repaired = await spreader.repair(BACKFILL_NAME, { actor: "example", reason: "demo resumed: its queue was in memory" });
      begun = await spreader.start(BACKFILL_NAME);
      output.write(
        `Resuming "${begun.name}" at ${formatCount(Number(begun.progress.idsDone))} of ${formatCount(Number(begun.progress.idsTotal))} ids; ` +
          `${formatCount(repaired.requeued)} range${repaired.requeued === 1 ? "" : "s"} lost with the previous queue queued again\n`,
      );
    } else begun = await spreader.start(BACKFILL_NAME);
    output.write(describePlan(settings, begun));
    const watched = await watchBackfill({
      spreader,
      name: BACKFILL_NAME,
      output,
      mode: options.mode,
      label: options.label,
      ...(options.logEveryMs === undefined ? {} : { logEveryMs: options.logEveryMs }),
      ...(signal === undefined ? {} : { signal }),
    });
    const running = watched.status === "running" || watched.status === "paused";
    const interrupted = { actor: "example", reason: "interrupted" };
    const final = !running
      ? watched
      : options.onInterrupt === "pause" && watched.status === "running"
        ? await spreader.pause(BACKFILL_NAME, interrupted)
        : options.onInterrupt === "pause"
          ? watched
          : await spreader.cancel(BACKFILL_NAME, interrupted);
    return { begun, final };
  });
  const { audit, check } = await timed(phases, "verify", async () => ({
    audit: await spreader.audit(BACKFILL_NAME),
    check: await verifyAccounts(db, table),
  }));
  // To the last batch, not to the tick that noticed nothing was left (up to a cycle later).
  const backfillMs = Math.max(1, (final.progress.lastDoneAt ?? final.finishedAt ?? Date.now()) - begun.startedAt);
  return {
    verified: final.status === "completed" && audit.complete && check.wrongRows === 0 && check.rows === settings.rows,
    status: final.status,
    interrupted: signal?.aborted === true,
    rows: check.rows,
    wrongRows: check.wrongRows,
    batches: final.progress.batchesDone,
    batchSize: settings.batchSize,
    batchesFailed: final.progress.batchesFailed,
    gaps: audit.gaps,
    backfillMs,
    phases,
    rowsPerSecond: (Number(final.progress.idsDone) * 1000) / backfillMs,
    configuredRowsPerSecond: begun.rate.perSecond * settings.batchSize,
  };
}

/**
 * Logs failed attempts as they happen (in the process where the batch ran).
 *
 * @example
 * ```ts
 * reportFailures(spreader, process.stderr);
 * ```
 */
export function reportFailures(spreader: SuperSpreader, output: Output): void {
  spreader.on("batchFailed", (event) => {
    const message = event.error instanceof Error ? event.error.message : String(event.error);
    output.write(`\nbatch ${event.beginId}..${event.endId} failed (attempt ${event.attempt}/${event.maxAttempts}): ${message}\n`);
  });
}

/** Work counted in one process. */
export interface WorkStats {
  /** Batches the handler ran (repeated deliveries included). */
  batches: number;
  /** Rows the handler's UPDATEs changed. */
  rowsWritten: number;
  /** Deliveries of ranges the ledger already had (at-least-once delivery at work). */
  repeatedBatches: number;
}

/**
 * Counts this process's work: pass `onBatch` to {@link defineNormaliseEmails}; `stats` fills in as batches finish.
 *
 * @example
 * ```ts
 * const { onBatch, stats } = trackWork(spreader);
 * defineNormaliseEmails(spreader, { db, table, config, onBatch });
 * ```
 */
export function trackWork(spreader: SuperSpreader): { onBatch: (work: BatchWork) => void; stats: WorkStats } {
  const stats: WorkStats = { batches: 0, rowsWritten: 0, repeatedBatches: 0 };
  spreader.on("batchFinished", (event) => {
    if (!event.firstCompletion) stats.repeatedBatches += 1;
  });
  const onBatch = (work: BatchWork) => {
    stats.batches += 1;
    stats.rowsWritten += work.written;
  };
  return { onBatch, stats };
}
