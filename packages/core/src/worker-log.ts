import { describeError } from "./batch.js";
import { systemClock, type Clock } from "./clock.js";
import type { BackfillStatusName } from "./doc.js";
import { invalidOption } from "./options.js";
import type { JobProcessor } from "./ports.js";
import type { SuperSpreader } from "./runtime.js";
import type { BackfillStatus } from "./status.js";

/**
 * A logger a worker talks to: pino's, or `console`. Pino-style calls (`info(object, message)`) and
 * console-style calls (`info(message)`) both work: the reporter calls `info(fields, message)`.
 */
export interface WorkerLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** How a worker reports (the `log` option of every worker runner). */
export type WorkerLogOption =
  /** One line per event on stderr, for people (the default). */
  | "text"
  /** One JSON object per line on stderr, for log pipelines. */
  | "json"
  /** Nothing. */
  | "quiet"
  /** Your logger (pino, winston, console): `info/warn/error(fields, message)`. */
  | WorkerLogger;

/** Options of {@link createWorkerReporter}. */
export interface WorkerReporterOptions {
  /**
   * What the worker runs. A `SuperSpreader` is watched for the backfills it defines; another
   * processor only gets the start, connection and error lines.
   */
  readonly spreader: JobProcessor | SuperSpreader;
  /** @default "text" */
  readonly log?: WorkerLogOption;
  /** What the worker consumes, for the start line: `"BullMQ queue superspreader at redis://…"`. */
  readonly queue: string;
  readonly concurrency: number;
  /**
   * What the worker connects to, for the connection lines: `"Redis at redis://127.0.0.1:6379"` (no password).
   * @default "the queue's server"
   */
  readonly connection?: string;
  /**
   * How often the backfills this worker defines are looked at for changes of state (ms); the summary
   * line comes once a minute at most.
   * @default 5000
   */
  readonly intervalMs?: number;
  /**
   * The clock of the summary line's minute.
   * @default systemClock
   */
  readonly clock?: Clock;
}

/** What a worker runner tells the reporter about; the rest the reporter finds out itself. */
export interface WorkerReporter {
  /** The runner connected and takes jobs. */
  started(): void;
  /** The connection failed (called on every failed retry; only the first of a streak is printed). */
  connectionLost(error: unknown): void;
  /** The connection works again (printed only after a loss). */
  connectionBack(): void;
  /** A failure of the worker itself (not of a batch), once per distinct message a minute. */
  workerError(error: unknown): void;
  /** Stops looking and says the worker stopped. */
  stop(): Promise<void>;
}

const SUMMARY_MS = 60_000;

function stderrLogger(json: boolean): WorkerLogger {
  const line = (level: string) => (fields: Record<string, unknown>, message: string) => {
    const text = json
      ? JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))
      : `[superspreader] ${message}`;
    process.stderr.write(`${text}\n`);
  };
  return { info: line("info"), warn: line("warn"), error: line("error") };
}

function loggerOf(option: WorkerLogOption | undefined): WorkerLogger | null {
  if (option === undefined || option === "text") return stderrLogger(false);
  if (option === "json") return stderrLogger(true);
  if (option === "quiet") return null;
  if (typeof option === "object" && option !== null && typeof option.info === "function" && typeof option.warn === "function" && typeof option.error === "function") {
    return option;
  }
  throw invalidOption("log", `must be "text", "json", "quiet" or a logger with info, warn and error methods, got ${typeof option}`);
}

const int = (n: bigint | number) => n.toLocaleString("en-US");

/** The line for a change of a backfill's state, or null when there is nothing to say. */
function transition(before: BackfillStatus | undefined, now: BackfillStatus): { level: "info" | "warn" | "error"; message: string } | null {
  const name = now.name;
  if (before !== undefined && before.runId !== now.runId) return { level: "info", message: `${name}: run ${now.runId} started (${int(now.progress.idsTotal)} ids)` };
  // First seen while running or paused: where it stands. First seen ended or held: say so as a change would.
  if (before === undefined && (now.status === "running" || now.status === "paused" || now.status === "starting")) {
    return { level: "info", message: `${name}: ${describeState(now)}` };
  }
  if (before !== undefined && before.status === now.status) return null;
  const to: Record<BackfillStatusName, string> = {
    running: before?.status === "held" ? "resumed after its hold" : before?.status === "paused" ? "resumed" : "running",
    paused: "paused",
    held: `held: ${now.hold?.reason ?? "a burst of failures"}${now.hold?.lastError ? ` — last error: ${firstLine(now.hold.lastError)}` : ""}`,
    cancelled: "cancelled",
    completed: `completed: ${int(now.progress.idsDone)} ids in ${span((now.finishedAt ?? now.startedAt) - now.startedAt)}`,
    failed: `failed: ${int(now.progress.batchesFailed)} ranges failed for good (superspreader retry-failed ${name})`,
    starting: "starting",
  };
  const level = now.status === "failed" ? "error" : now.status === "held" ? "warn" : "info";
  return { level, message: `${name}: ${to[now.status]}` };
}

function describeState(s: BackfillStatus): string {
  const done = `${int(s.progress.idsDone)}/${int(s.progress.idsTotal)} ids`;
  return s.status === "held" ? `held (${s.hold?.reason ?? "failures"}), ${done}` : `${s.status}, ${done}`;
}

const firstLine = (text: string) => text.split("\n")[0] ?? text;

function span(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/**
 * Makes a worker talk: one line when it starts (what it consumes, the backfills it defines,
 * its concurrency), one when a backfill it defines starts a run, pauses, resumes, holds, fails or
 * completes (found by looking at their state every few seconds, so changes made from the CLI show
 * too), one summary line a minute at most while batches run here, and one line when the connection
 * is lost and one when it is back — instead of a stack trace per retry. Every worker runner of this
 * repository creates one from its `log` option.
 *
 * @example
 * ```ts
 * const reporter = createWorkerReporter({ spreader, log: pino(), queue: "BullMQ queue superspreader", concurrency: 10 });
 * reporter.started();
 * // … on shutdown:
 * await reporter.stop();
 * ```
 */
export function createWorkerReporter(options: WorkerReporterOptions): WorkerReporter {
  const logger = loggerOf(options.log);
  const candidate = options.spreader as Partial<SuperSpreader>;
  // A bare processor (a wrapper of the runtime, a test's) cannot be watched; it still talks.
  const spreader: SuperSpreader | null =
    typeof candidate.defined === "function" && typeof candidate.status === "function" && typeof candidate.on === "function" ? (options.spreader as SuperSpreader) : null;
  const intervalMs = options.intervalMs ?? 5_000;
  const clock = options.clock ?? systemClock;
  const seen = new Map<string, BackfillStatus>();
  let lost = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let looking: Promise<void> = Promise.resolve();
  const counts = { batches: 0, ids: 0n, failed: 0, deferred: 0 };
  let lastSummary = clock.now();
  const errorsSeen = new Map<string, number>();
  const offs: Array<() => void> = [];

  if (logger !== null && spreader !== null) {
    offs.push(
      spreader.on("batchFinished", (e) => {
        counts.batches++;
        counts.ids += e.endId - e.beginId + 1n;
      }),
      spreader.on("batchFailed", () => {
        counts.failed++;
      }),
      spreader.on("batchDeferred", () => {
        counts.deferred++;
      }),
      spreader.on("revived", (e) => logger.warn({ backfill: e.backfill, action: e.action }, `${e.backfill}: watchdog ${e.action === "started" ? "started a requested run" : "revived the tick chain"} (${e.reason})`)),
      spreader.on("rangesLost", (e) =>
        logger.warn({ backfill: e.backfill, ranges: e.ranges.length }, `${e.backfill}: ${e.ranges.length} lost range${e.ranges.length === 1 ? "" : "s"} found and queued again (${e.source})`),
      ),
    );
  }

  const summary = () => {
    const now = clock.now();
    if (logger === null || now - lastSummary < SUMMARY_MS || counts.batches + counts.failed + counts.deferred === 0) return;
    const seconds = (now - lastSummary) / 1000;
    const parts = [`${int(counts.batches)} batches (${int(counts.ids)} ids, ${(Number(counts.ids) / seconds).toFixed(0)} ids/s)`];
    if (counts.failed > 0) parts.push(`${int(counts.failed)} failed attempts`);
    if (counts.deferred > 0) parts.push(`${int(counts.deferred)} deferred`);
    logger.info({ ...counts, seconds: Math.round(seconds) }, `last ${span(now - lastSummary)}: ${parts.join(", ")}`);
    counts.batches = 0;
    counts.ids = 0n;
    counts.failed = 0;
    counts.deferred = 0;
    lastSummary = now;
  };

  const look = async () => {
    for (const name of spreader?.defined() ?? []) {
      let now: BackfillStatus;
      try {
        now = await (spreader as SuperSpreader).status(name);
      } catch {
        continue; // not started yet, or the store is down: the connection line says so
      }
      const line = transition(seen.get(name), now);
      seen.set(name, now);
      if (line && logger) logger[line.level]({ backfill: name, status: now.status, runId: now.runId }, line.message);
    }
    summary();
  };

  const schedule = () => {
    if (stopped || logger === null || spreader === null) return;
    timer = setTimeout(() => {
      looking = look().finally(schedule);
    }, intervalMs);
    timer.unref?.();
  };

  return {
    started() {
      if (logger === null) return;
      const names = spreader?.defined() ?? [];
      const defined = spreader === null ? "" : `, ${names.length === 0 ? "no backfills defined" : `backfills: ${names.join(", ")}`}`;
      logger.info({ queue: options.queue, backfills: names, concurrency: options.concurrency }, `worker started on ${options.queue}, concurrency ${options.concurrency}${defined}`);
      looking = look().finally(schedule);
    },
    connectionLost(error) {
      if (logger === null || lost) return;
      lost = true;
      const reason = firstLine(describeError(error));
      logger.warn({ error: reason }, `waiting for ${options.connection ?? "the queue's server"} (${reason}), retrying`);
    },
    connectionBack() {
      if (logger === null || !lost) return;
      lost = false;
      logger.info({}, `${options.connection ?? "the queue's server"} is back`);
    },
    workerError(error) {
      if (logger === null) return;
      const message = firstLine(describeError(error));
      const last = errorsSeen.get(message);
      if (last !== undefined && clock.now() - last < SUMMARY_MS) return;
      errorsSeen.set(message, clock.now());
      logger.error({ error: message }, `worker error: ${message}`);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await looking.catch(() => {});
      for (const off of offs) off();
      summary();
      logger?.info({}, "worker stopped");
    },
  };
}
