import { SpanStatusCode, metrics, trace } from "@opentelemetry/api";
import type { Attributes, Exception, Meter, MeterProvider, Span, Tracer, TracerProvider } from "@opentelemetry/api";
import { SuperSpreaderError, describeValue } from "@superspreader/core";
import type { SuperSpreaderEvents } from "@superspreader/core";
import { checkSpreader, errorMessage, errorType, queueLagMs, subscribe, type SuperSpreaderEventSource } from "./subscribe.js";

/** Instrumentation scope name of the tracer and meter this package creates. */
export const INSTRUMENTATION_SCOPE = "@superspreader/telemetry";

/** Batch durations are minutes at worst; queue lag can reach hours when workers are down. */
const DURATION_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000];
const LAG_BUCKETS_MS = [10, 100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];

/** Options of {@link instrumentOpenTelemetry}. */
export interface InstrumentOpenTelemetryOptions {
  /**
   * Tracer for the `superspreader.batch` and `superspreader.tick` spans.
   * @default tracerProvider.getTracer("@superspreader/telemetry")
   */
  tracer?: Tracer;
  /**
   * Where the tracer comes from when `tracer` is not given.
   * @default the global provider (`trace.getTracerProvider()`), a no-op until an SDK registers one
   */
  tracerProvider?: TracerProvider;
  /**
   * Meter for the `superspreader.*` instruments.
   * @default meterProvider.getMeter("@superspreader/telemetry")
   */
  meter?: Meter;
  /**
   * Where the meter comes from when `meter` is not given.
   * @default the global provider (`metrics.getMeterProvider()`), read once, when this function runs
   */
  meterProvider?: MeterProvider;
  /**
   * Batch spans kept open at most. A batch whose end is never reported (the process stops
   * listening, or recording the range as done threw) would otherwise stay in memory; past this
   * many, the oldest open span is ended with `superspreader.batch.abandoned = true`.
   * @default 10_000
   */
  maxOpenSpans?: number;
}

/** Attributes every span of an event carries. */
const base = (e: { backfill: string; runId: string; cycle: number }): Attributes => ({
  "superspreader.backfill": e.backfill,
  "superspreader.run_id": e.runId,
  "superspreader.cycle.number": e.cycle,
});

type BatchEvent = SuperSpreaderEvents["batchStarted"];
/** Attributes of a batch span: where it belongs, and its range as decimal strings (ids can exceed 2^53). */
const batchAttributes = (e: Omit<BatchEvent, "attempt">): Attributes => ({
  ...base(e),
  "superspreader.batch.begin_id": e.beginId.toString(),
  "superspreader.batch.end_id": e.endId.toString(),
});
/**
 * A started batch span. Its end is computed as start + `durationMs` because core's batchFinished
 * and batchFailed carry the batch's start time in `at`, not the time they happened.
 */
interface OpenSpan {
  readonly span: Span;
  readonly startedAt: number;
}
const batchKey = (e: Omit<BatchEvent, "attempt" | "at">, attempt: number): string =>
  `${e.backfill}\u0000${e.runId}\u0000${e.cycle}\u0000${e.beginId}\u0000${e.endId}\u0000${attempt}`;

const toException = (error: unknown): Exception =>
  typeof error === "object" && error !== null ? (error as Exception) : String(error);

/**
 * Reports the runtime's events to OpenTelemetry through `@opentelemetry/api` only (bring
 * your own SDK): a span per batch attempt and per planned cycle, and the `superspreader.*`
 * counters and histograms. Returns a function that stops listening and ends open spans.
 *
 * @example
 * ```ts
 * import { NodeSDK } from "@opentelemetry/sdk-node";
 * import { instrumentOpenTelemetry } from "@superspreader/telemetry";
 *
 * new NodeSDK({ traceExporter, metricReader }).start(); // before instrumenting: metrics bind now
 * const stop = instrumentOpenTelemetry(spreader);
 * // on shutdown:
 * stop();
 * ```
 */
export function instrumentOpenTelemetry(spreader: SuperSpreaderEventSource, options: InstrumentOpenTelemetryOptions = {}): () => void {
  checkSpreader(spreader, ["on"]);
  if (options.tracer !== undefined && typeof options.tracer?.startSpan !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `tracer must be an OpenTelemetry Tracer, got ${describeValue(options.tracer)}`, {
      field: "tracer",
    });
  }
  if (options.meter !== undefined && typeof options.meter?.createCounter !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `meter must be an OpenTelemetry Meter, got ${describeValue(options.meter)}`, {
      field: "meter",
    });
  }
  const maxOpenSpans = options.maxOpenSpans ?? 10_000;
  if (!Number.isSafeInteger(maxOpenSpans) || maxOpenSpans < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `maxOpenSpans must be a whole number ≥ 1, got ${describeValue(maxOpenSpans)}`, {
      field: "maxOpenSpans",
    });
  }

  const tracer = options.tracer ?? (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE);
  const meter = options.meter ?? (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE);

  const batches = meter.createCounter("superspreader.batches", {
    description: "Batches disposed of: done, failed for good (retries spent), or deferred while paused.",
    unit: "{batch}",
  });
  const ids = meter.createCounter("superspreader.ids", {
    description: "Ids recorded done (first completion of a range; repeated deliveries are not counted again).",
    unit: "{id}",
  });
  const failures = meter.createCounter("superspreader.failures", {
    description: "Failed batch attempts, retried or not (attribute superspreader.batch.final).",
    unit: "{attempt}",
  });
  const duration = meter.createHistogram("superspreader.batch.duration", {
    description: "Time a batch handler ran, done or failed.",
    unit: "ms",
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_MS },
  });
  const lag = meter.createHistogram("superspreader.queue.lag", {
    description: "Time between a batch's planned run time and its start.",
    unit: "ms",
    advice: { explicitBucketBoundaries: LAG_BUCKETS_MS },
  });
  const cycles = meter.createCounter("superspreader.cycles", { description: "Scheduler cycles planned.", unit: "{cycle}" });
  const rate = meter.createGauge("superspreader.rate", { description: "Batches per second of the last planned cycle.", unit: "{batch}/s" });
  const batchSize = meter.createGauge("superspreader.batch.size", { description: "Ids per batch of the last planned cycle.", unit: "{id}" });
  const tuned = meter.createCounter("superspreader.tuned", {
    description: "Changes the closed loop made (attributes superspreader.tuned.field and superspreader.tuned.direction).",
    unit: "{change}",
  });

  // Same key for two deliveries of one attempt (a stalled job run twice): ended first in, first out.
  const open = new Map<string, OpenSpan[]>();
  let openCount = 0;

  const take = (key: string): OpenSpan | undefined => {
    const spans = open.get(key);
    const taken = spans?.shift();
    if (taken) openCount -= 1;
    if (spans?.length === 0) open.delete(key);
    return taken;
  };
  const abandon = ({ span }: OpenSpan) => {
    span.setAttribute("superspreader.batch.abandoned", true);
    span.end();
  };

  const off = subscribe(spreader, {
    batchStarted(e) {
      const span = tracer.startSpan("superspreader.batch", {
        startTime: new Date(e.at),
        attributes: { ...batchAttributes(e), "superspreader.batch.attempt": e.attempt },
      });
      const key = batchKey(e, e.attempt);
      const spans = open.get(key);
      if (spans) spans.push({ span, startedAt: e.at });
      else open.set(key, [{ span, startedAt: e.at }]);
      openCount += 1;
      if (openCount > maxOpenSpans) {
        const oldest = open.keys().next().value;
        const evicted = oldest === undefined ? undefined : take(oldest);
        if (evicted) abandon(evicted);
      }
      const lagMs = queueLagMs(e);
      if (lagMs !== undefined) {
        span.setAttribute("superspreader.batch.queue_lag_ms", lagMs);
        lag.record(lagMs, { "superspreader.backfill": e.backfill });
      }
    },

    batchFinished(e) {
      const outcome = { "superspreader.backfill": e.backfill, "superspreader.batch.outcome": "done" };
      batches.add(1, outcome);
      duration.record(e.durationMs, outcome);
      if (e.firstCompletion) ids.add(Number(e.endId - e.beginId + 1n), { "superspreader.backfill": e.backfill });
      const taken = take(batchKey(e, e.attempt));
      if (!taken) return;
      const { span, startedAt } = taken;
      span.setAttributes({ "superspreader.batch.outcome": "done", "superspreader.batch.first_completion": e.firstCompletion });
      span.setStatus({ code: SpanStatusCode.OK });
      span.end(new Date(startedAt + e.durationMs));
    },

    batchFailed(e) {
      const type = errorType(e.error);
      failures.add(1, { "superspreader.backfill": e.backfill, "superspreader.batch.final": e.final, "error.type": type });
      const outcome = { "superspreader.backfill": e.backfill, "superspreader.batch.outcome": "failed" };
      if (e.final) batches.add(1, outcome);
      duration.record(e.durationMs, outcome);
      const taken = take(batchKey(e, e.attempt));
      if (!taken) return;
      const { span, startedAt } = taken;
      const end = new Date(startedAt + e.durationMs);
      span.setAttributes({
        "superspreader.batch.outcome": "failed",
        "superspreader.batch.final": e.final,
        "superspreader.batch.max_attempts": e.maxAttempts,
        "error.type": type,
      });
      span.recordException(toException(e.error), end);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(e.error) });
      span.end(end);
    },

    batchDeferred(e) {
      batches.add(1, { "superspreader.backfill": e.backfill, "superspreader.batch.outcome": "deferred" });
      // A deferred batch never starts its handler, so its span only marks the moment it was set aside.
      tracer
        .startSpan("superspreader.batch", {
          startTime: new Date(e.at),
          attributes: { ...batchAttributes(e), "superspreader.batch.outcome": "deferred" },
        })
        .end(new Date(e.at));
    },

    tuned(e) {
      tuned.add(1, { "superspreader.backfill": e.backfill, "superspreader.tuned.field": e.field, "superspreader.tuned.direction": e.to > e.from ? "up" : "down" });
      batchSize.record(e.batchSize, { "superspreader.backfill": e.backfill });
    },

    cyclePlanned(e) {
      cycles.add(1, { "superspreader.backfill": e.backfill, "superspreader.cycle.on_peak": e.onPeak });
      rate.record(e.perSecond, { "superspreader.backfill": e.backfill });
      // Core reports a tick only once its plan is committed; with no start event the span has
      // zero duration, at the commit. The cycle's nominal start is an attribute instead.
      tracer
        .startSpan("superspreader.tick", {
          startTime: new Date(e.at),
          attributes: {
            ...base(e),
            "superspreader.cycle.batches": e.batches,
            "superspreader.cycle.requeued": e.requeued,
            "superspreader.cycle.rate": e.perSecond,
            "superspreader.cycle.on_peak": e.onPeak,
            "superspreader.cycle.begin_at": new Date(e.beginAt).toISOString(),
            "superspreader.cycle.next_tick_at": new Date(e.nextTickAt).toISOString(),
          },
        })
        .end(new Date(e.at));
    },
  });

  return () => {
    off();
    for (const spans of open.values()) for (const span of spans) abandon(span);
    open.clear();
    openCount = 0;
  };
}
