import { SuperSpreaderError, describeValue } from "@superspreader/core";
import type { BackfillStatus, BackfillStatusName, SuperSpreader } from "@superspreader/core";
import { CounterFamily, GaugeFamily, HistogramFamily, renderFamilies } from "./exposition.js";
import { checkSpreader, errorType, queueLagMs, subscribe } from "./subscribe.js";

/** The `Content-Type` of {@link PrometheusMetrics.collect}'s text (exposition format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const STATUSES: readonly BackfillStatusName[] = ["running", "paused", "held", "cancelled", "completed", "failed", "starting"];
const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /**
   * Start of every metric name (`<prefix>_batches_total`, …).
   * @default "superspreader"
   */
  prefix?: string;
  /**
   * Backfills whose stored status is read on every scrape for the `<prefix>_backfill_*` gauges:
   * every stored backfill, a fixed list, or `[]` for none (for worker processes, so that a fleet
   * does not report the same stored state once per worker).
   * @default "all"
   */
  backfills?: "all" | readonly string[];
  /**
   * Upper bounds (seconds) of the `<prefix>_batch_duration_seconds` histogram buckets.
   * @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
   */
  durationBuckets?: readonly number[];
  /**
   * Upper bounds (seconds) of the `<prefix>_queue_lag_seconds` histogram buckets.
   * @default [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]
   */
  lagBuckets?: readonly number[];
}

/** A Prometheus exposition of one runtime: counters from its events, gauges from the store. */
export interface PrometheusMetrics {
  /** {@link PROMETHEUS_CONTENT_TYPE}, for the HTTP response. */
  readonly contentType: string;
  /**
   * The current text. Reads `status()` of the configured backfills; rejects only when listing
   * them fails (a backfill whose status cannot be read gets `<prefix>_backfill_up 0`).
   */
  collect(): Promise<string>;
  /** Stops counting events (gauges are still read by `collect`). Idempotent. */
  close(): void;
}

function checkBuckets(value: unknown, field: string): readonly number[] {
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((b, i) => typeof b === "number" && Number.isFinite(b) && b > 0 && (i === 0 || b > (value[i - 1] as number)));
  if (!ok) {
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${field} must be a non-empty list of finite bounds in seconds, > 0 and increasing, got ${describeValue(value)}`,
      { field },
    );
  }
  return value as readonly number[];
}

/**
 * Counts the runtime's events since this call and reads every stored backfill's status,
 * and renders both as Prometheus text any HTTP server can serve.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { prometheusMetrics } from "@superspreader/telemetry";
 *
 * const exposition = prometheusMetrics(spreader);
 * createServer(async (req, res) => {
 *   if (req.url !== "/metrics") return void res.writeHead(404).end();
 *   try {
 *     const text = await exposition.collect();
 *     res.writeHead(200, { "content-type": exposition.contentType }).end(text);
 *   } catch (error) {
 *     res.writeHead(500).end(String(error));
 *   }
 * }).listen(9464);
 * ```
 */
export function prometheusMetrics(
  spreader: Pick<SuperSpreader, "on" | "status" | "list">,
  options: PrometheusMetricsOptions = {},
): PrometheusMetrics {
  checkSpreader(spreader, ["on", "status", "list"]);
  const prefix = options.prefix ?? "superspreader";
  if (typeof prefix !== "string" || !METRIC_NAME.test(prefix)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `prefix must match ${METRIC_NAME} (a Prometheus metric name), got ${describeValue(prefix)}`, {
      field: "prefix",
    });
  }
  const backfills = options.backfills ?? "all";
  if (backfills !== "all" && !(Array.isArray(backfills) && backfills.every((n) => typeof n === "string"))) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `backfills must be "all" or a list of backfill names, got ${describeValue(backfills)}`, {
      field: "backfills",
    });
  }
  const durationBuckets = checkBuckets(options.durationBuckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], "durationBuckets");
  const lagBuckets = checkBuckets(options.lagBuckets ?? [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600], "lagBuckets");

  const m = (name: string) => `${prefix}_${name}`;
  const batches = new CounterFamily(m("batches_total"), "Batches disposed of by this process: done, failed for good (retries spent), or deferred while paused.");
  const ids = new CounterFamily(m("ids_total"), "Ids recorded done by this process (first completion of a range only).");
  const failures = new CounterFamily(m("failures_total"), "Failed batch attempts in this process; final=\"true\" when no retry follows.");
  const cycles = new CounterFamily(m("cycles_total"), "Scheduler cycles planned by this process.");
  const healed = new CounterFamily(
    m("healed_total"),
    'What the runtime healed in this process: kind="lost_range" (a range the queue lost, enqueued again), "revival" (a dead tick chain revived), "hold" (a burst of failures held the run), "health_hold" (a health indicator said stop).',
  );
  const tuned = new CounterFamily(m("tuned_total"), 'Changes the closed loop made in this process: field="batch_size" or "rate", direction="up" or "down".');
  const duration = new HistogramFamily(m("batch_duration_seconds"), "Time a batch handler ran, done or failed.", durationBuckets);
  const lag = new HistogramFamily(m("queue_lag_seconds"), "Time between a batch's planned run time and its start.", lagBuckets);

  const close = subscribe(spreader, {
    batchStarted(e) {
      const lagMs = queueLagMs(e);
      if (lagMs !== undefined) lag.observe({ backfill: e.backfill }, lagMs / 1000);
    },
    batchFinished(e) {
      batches.inc({ backfill: e.backfill, outcome: "done" });
      duration.observe({ backfill: e.backfill, outcome: "done" }, e.durationMs / 1000);
      if (e.firstCompletion) ids.inc({ backfill: e.backfill }, e.endId - e.beginId + 1n);
    },
    batchFailed(e) {
      failures.inc({ backfill: e.backfill, final: String(e.final), error_type: errorType(e.error) });
      if (e.final) batches.inc({ backfill: e.backfill, outcome: "failed" });
      duration.observe({ backfill: e.backfill, outcome: "failed" }, e.durationMs / 1000);
    },
    batchDeferred(e) {
      batches.inc({ backfill: e.backfill, outcome: "deferred" });
    },
    cyclePlanned(e) {
      cycles.inc({ backfill: e.backfill, on_peak: String(e.onPeak) });
    },
    rangesLost(e) {
      healed.inc({ backfill: e.backfill, kind: "lost_range" }, BigInt(e.ranges.length));
    },
    revived(e) {
      healed.inc({ backfill: e.backfill, kind: "revival" });
    },
    held(e) {
      healed.inc({ backfill: e.backfill, kind: e.cause === "health" ? "health_hold" : "hold" });
    },
    tuned(e) {
      tuned.inc({ backfill: e.backfill, field: e.field === "batchSize" ? "batch_size" : "rate", direction: e.to > e.from ? "up" : "down" });
    },
  });

  const statusGauges = (read: readonly { name: string; status: BackfillStatus | null }[]) => {
    const g = (name: string, help: string) => new GaugeFamily(m(`backfill_${name}`), help);
    const up = g("up", "1 when the backfill's status could be read during this scrape, else 0.");
    const info = g("info", "The backfill's current run, as labels; always 1.");
    const status = g("status", "1 for the backfill's current status, 0 for the others.");
    const idsTotal = g("ids", "Ids in the current run's id space (maxId - minId + 1 at start).");
    const idsDone = g("ids_done", "Ids of the current run recorded done.");
    const progress = g("progress_ratio", "Ids done / ids in the id space, 0 to 1.");
    const stored = g("batches", "Batches recorded by the current run in the store: done, failed, deferred.");
    const rate = g("rate_batches_per_second", "The rate in force now, in batches per second.");
    const onPeak = g("on_peak", "1 while the backfill's peak window is in force, else 0.");
    const cycle = g("cycle", "The next cycle to plan.");
    const overdue = g("tick_overdue_seconds", "How late the next tick is; well past one cycle means the tick chain died (start() revives it).");
    const started = g("started_timestamp_seconds", "When the current run started (Unix time).");
    const lastDone = g("last_done_timestamp_seconds", "When a batch of the current run was last recorded done (Unix time).");
    const reconciled = g("reconciled_ranges", "Ranges of the current run found lost (gone from the queue or given up by it) and enqueued again.");
    const revivals = g("watchdog_revivals", "Times the watchdog revived the current run's tick chain.");
    const held = g("held_probes", "Probes sent since the run held itself (0 unless held).");
    const ceiling = g("ceiling_batches_per_second", "The configured rate now, which the closed loop keeps the rate in force under.");
    const batchSize = g("batch_size", "Ids per batch the next cycle plans (the closed loop's or a pinned one, else the config's).");
    const share = g("autotune_share", "Autotune's share of the configured rate, 0 to 1 (1 without autotune).");
    for (const { name, status: s } of read) {
      const backfill = { backfill: name };
      up.set(backfill, s ? 1 : 0);
      if (!s) continue;
      info.set({ backfill: name, run_id: s.runId }, 1);
      for (const candidate of STATUSES) status.set({ backfill: name, status: candidate }, candidate === s.status ? 1 : 0);
      idsTotal.set(backfill, s.progress.idsTotal);
      idsDone.set(backfill, s.progress.idsDone);
      progress.set(backfill, s.progress.fraction);
      stored.set({ backfill: name, outcome: "done" }, s.progress.batchesDone);
      stored.set({ backfill: name, outcome: "failed" }, s.progress.batchesFailed);
      stored.set({ backfill: name, outcome: "deferred" }, s.progress.batchesDeferred);
      rate.set(backfill, s.rate.perSecond);
      onPeak.set(backfill, s.rate.onPeak ? 1 : 0);
      cycle.set(backfill, s.cycle);
      overdue.set(backfill, s.tickOverdueMs / 1000);
      started.set(backfill, s.startedAt / 1000);
      if (s.progress.lastDoneAt !== null) lastDone.set(backfill, s.progress.lastDoneAt / 1000);
      reconciled.set(backfill, s.reconciled.ranges);
      revivals.set(backfill, s.watchdog.revivals);
      held.set(backfill, s.hold?.probes ?? 0);
      ceiling.set(backfill, s.control?.ceiling ?? s.rate.perSecond);
      batchSize.set(backfill, s.control?.batchSize ?? s.config.batchSize);
      share.set(backfill, s.control?.share ?? 1);
    }
    return [up, info, status, idsTotal, idsDone, progress, stored, rate, onPeak, cycle, overdue, started, lastDone, reconciled, revivals, held, ceiling, batchSize, share];
  };

  return {
    contentType: PROMETHEUS_CONTENT_TYPE,
    async collect() {
      const names = backfills === "all" ? await spreader.list() : backfills;
      // One unreadable backfill (a corrupt document, a name listed just before its document exists)
      // must not take the whole scrape down: it is reported as up 0.
      const read = await Promise.all(
        names.map(async (name) => ({ name, status: await spreader.status(name).catch(() => null) })),
      );
      return renderFamilies([batches, ids, failures, cycles, healed, tuned, duration, lag, ...statusGauges(read)]);
    },
    close,
  };
}
