import { SpanStatusCode, metrics, trace, type Attributes } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type HistogramMetricData,
  type MetricData,
} from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { INSTRUMENTATION_SCOPE, instrumentOpenTelemetry } from "../src/index.js";
import { createMemoryIdSource } from "@superspreader/core";
import { HANDLER_MS, T0, eventsOf, runWithPause, scheduledEventSource, waitForEvents, world, type World } from "./helpers.js";

/** An SDK wired to in-memory exporters, as a user's app would wire a real one. */
function sdk() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval never fires during a test: metrics are pulled with forceFlush().
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracerProvider,
    meterProvider,
    spans: () => spans.getFinishedSpans(),
    async metrics(): Promise<MetricData[]> {
      await reader.forceFlush();
      const last = exporter.getMetrics().at(-1);
      return (last?.scopeMetrics ?? []).filter((s) => s.scope.name === INSTRUMENTATION_SCOPE).flatMap((s) => s.metrics);
    },
    shutdown: () => Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]),
  };
}

type Sdk = ReturnType<typeof sdk>;
const sdks: Sdk[] = [];
afterEach(async () => {
  trace.disable();
  metrics.disable();
  await Promise.all(sdks.splice(0).map((s) => s.shutdown()));
});
function newSdk(): Sdk {
  const s = sdk();
  sdks.push(s);
  return s;
}

const hrToMs = ([s, ns]: [number, number]) => s * 1000 + ns / 1e6;
const find = (data: MetricData[], name: string): MetricData => {
  const metric = data.find((m) => m.descriptor.name === name);
  if (!metric) throw new Error(`no metric ${name} in ${data.map((m) => m.descriptor.name).join(", ")}`);
  return metric;
};
/** Data points of a sum or gauge as "attr=value,…" → value, for exact comparison. */
const points = (metric: MetricData): Record<string, unknown> =>
  Object.fromEntries(
    metric.dataPoints.map((p) => [
      Object.entries(p.attributes as Attributes)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(","),
      p.value,
    ]),
  );
/** Defines a backfill of `batches` batches of 10 ids, all due at once, whose handlers wait for the returned release. */
function gatedBackfill(w: World, name: string, batches: number): () => void {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  w.spreader.define(name, {
    source: createMemoryIdSource({ minId: 1, maxId: 10 * batches }),
    config: { batchSize: 10, duration: 1, perSecondOnPeak: batches, perSecondOffPeak: batches },
    handle: () => gate,
  });
  return release;
}

const batchSpans = (spans: readonly ReadableSpan[]) => spans.filter((s) => s.name === "superspreader.batch");
const range = (s: ReadableSpan) => `${String(s.attributes["superspreader.batch.begin_id"])}-${String(s.attributes["superspreader.batch.end_id"])}`;

describe("instrumentOpenTelemetry", () => {
  it("sees the spans and metrics of a small backfill", async () => {
    const otel = newSdk();
    const w = world();
    const stop = instrumentOpenTelemetry(w.spreader, { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider });
    await w.spreader.start("reindex");
    await w.run();
    stop();
    expect((await w.spreader.status("reindex")).status).toBe("failed");
    const runId = eventsOf(w, "started")[0]!.runId;

    const spans = otel.spans();
    // 10 ranges; 901-1000 and 1-100 ran twice.
    const batches = batchSpans(spans);
    expect(batches).toHaveLength(12);
    expect(batches.filter((s) => s.status.code === SpanStatusCode.OK)).toHaveLength(9);
    for (const span of batches) {
      // Times come from the runtime's clock, so a manual clock gives exact durations.
      expect(hrToMs(span.duration)).toBe(HANDLER_MS);
      expect(hrToMs(span.startTime)).toBeGreaterThanOrEqual(T0);
      expect(span.attributes).toMatchObject({ "superspreader.backfill": "reindex", "superspreader.run_id": runId, "superspreader.cycle.number": 0 });
    }
    const done = batches.find((s) => range(s) === "801-900")!;
    expect(done.attributes).toEqual({
      "superspreader.backfill": "reindex",
      "superspreader.run_id": runId,
      "superspreader.cycle.number": 0,
      "superspreader.batch.begin_id": "801",
      "superspreader.batch.end_id": "900",
      "superspreader.batch.attempt": 1,
      "superspreader.batch.outcome": "done",
      "superspreader.batch.first_completion": true,
      // The runtime sends each batch's planned run time; with one worker on a manual clock, later batches wait.
      "superspreader.batch.queue_lag_ms": expect.any(Number),
    });
    const lags = batches.map((s) => s.attributes["superspreader.batch.queue_lag_ms"]).filter((v) => typeof v === "number");
    expect(lags.length).toBeGreaterThan(0);

    const retried = batches.filter((s) => range(s) === "901-1000").sort((a, b) => hrToMs(a.startTime) - hrToMs(b.startTime));
    expect(retried.map((s) => [s.attributes["superspreader.batch.attempt"], s.status.code])).toEqual([
      [1, SpanStatusCode.ERROR],
      [2, SpanStatusCode.OK],
    ]);
    expect(retried[0]!.attributes).toMatchObject({ "superspreader.batch.final": false, "error.type": "Error" });
    expect(retried[0]!.status.message).toBe("connection reset");

    const final = batches.find((s) => range(s) === "1-100" && s.attributes["superspreader.batch.attempt"] === 2)!;
    expect(final.status).toEqual({ code: SpanStatusCode.ERROR, message: "deadlock found when trying to get lock" });
    expect(final.attributes).toMatchObject({
      "superspreader.batch.outcome": "failed",
      "superspreader.batch.final": true,
      "superspreader.batch.max_attempts": 2,
      "error.type": "ER_LOCK_DEADLOCK",
    });
    expect(final.events.map((e) => [e.name, e.attributes?.["exception.message"], e.attributes?.["exception.type"]])).toEqual([
      ["exception", "deadlock found when trying to get lock", "ER_LOCK_DEADLOCK"],
    ]);

    const ticks = spans.filter((s) => s.name === "superspreader.tick");
    expect(ticks).toHaveLength(1);
    expect(hrToMs(ticks[0]!.duration)).toBe(0);
    expect(ticks[0]!.attributes).toEqual({
      "superspreader.backfill": "reindex",
      "superspreader.run_id": runId,
      "superspreader.cycle.number": 0,
      "superspreader.cycle.batches": 10,
      "superspreader.cycle.requeued": 0,
      "superspreader.cycle.rate": 5,
      "superspreader.cycle.on_peak": false,
      "superspreader.cycle.begin_at": new Date(T0).toISOString(),
      "superspreader.cycle.next_tick_at": new Date(T0 + 10_000).toISOString(),
    });

    const data = await otel.metrics();
    expect(points(find(data, "superspreader.batches"))).toEqual({
      "superspreader.backfill=reindex,superspreader.batch.outcome=done": 9,
      "superspreader.backfill=reindex,superspreader.batch.outcome=failed": 1,
    });
    expect(points(find(data, "superspreader.ids"))).toEqual({ "superspreader.backfill=reindex": 900 });
    expect(points(find(data, "superspreader.failures"))).toEqual({
      "superspreader.backfill=reindex,superspreader.batch.final=false,error.type=Error": 1,
      "superspreader.backfill=reindex,superspreader.batch.final=false,error.type=ER_LOCK_DEADLOCK": 1,
      "superspreader.backfill=reindex,superspreader.batch.final=true,error.type=ER_LOCK_DEADLOCK": 1,
    });
    expect(points(find(data, "superspreader.cycles"))).toEqual({ "superspreader.backfill=reindex,superspreader.cycle.on_peak=false": 1 });
    expect(points(find(data, "superspreader.rate"))).toEqual({ "superspreader.backfill=reindex": 5 });

    const duration = find(data, "superspreader.batch.duration") as HistogramMetricData;
    expect(duration.descriptor.unit).toBe("ms");
    const byOutcome = Object.fromEntries(
      duration.dataPoints.map((p) => [String(p.attributes["superspreader.batch.outcome"]), { count: p.value.count, sum: p.value.sum }]),
    );
    expect(byOutcome).toEqual({ done: { count: 9, sum: 9 * HANDLER_MS }, failed: { count: 3, sum: 3 * HANDLER_MS } });
    // The advised bucket boundaries reach the SDK's default histogram view.
    expect(duration.dataPoints[0]!.value.buckets.boundaries).toContain(300_000);
  });

  it("marks deferred batches and counts them", async () => {
    const otel = newSdk();
    const w = world();
    instrumentOpenTelemetry(w.spreader, { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider });
    await runWithPause(w);
    const deferred = eventsOf(w, "batchDeferred");
    expect(deferred.length).toBeGreaterThan(0);
    const spans = batchSpans(otel.spans()).filter((s) => s.attributes["superspreader.batch.outcome"] === "deferred");
    expect(spans.map(range).sort()).toEqual(deferred.map((e) => `${e.beginId}-${e.endId}`).sort());
    for (const span of spans) expect(hrToMs(span.duration)).toBe(0);
    expect(points(find(await otel.metrics(), "superspreader.batches"))).toMatchObject({
      "superspreader.backfill=reindex,superspreader.batch.outcome=deferred": deferred.length,
    });
    // The deferred ranges were planned again by a later cycle.
    expect(otel.spans().filter((s) => s.name === "superspreader.tick").map((s) => s.attributes["superspreader.cycle.requeued"])).toEqual([0, deferred.length]);
  });

  it("falls back to the global providers registered before it is called", async () => {
    const otel = newSdk();
    trace.setGlobalTracerProvider(otel.tracerProvider);
    metrics.setGlobalMeterProvider(otel.meterProvider);
    const w = world();
    instrumentOpenTelemetry(w.spreader);
    await w.spreader.start("reindex");
    await w.run();
    expect(batchSpans(otel.spans())).toHaveLength(12);
    expect(points(find(await otel.metrics(), "superspreader.ids"))).toEqual({ "superspreader.backfill=reindex": 900 });
  });

  it("stops on unsubscribe, ending spans left open", async () => {
    const otel = newSdk();
    const w = world();
    const stop = instrumentOpenTelemetry(w.spreader, { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider });
    const release = gatedBackfill(w, "slow", 1);
    await w.spreader.start("slow");
    await w.run(1); // the tick
    const running = w.run(1); // the batch, blocked in its handler
    await waitForEvents(w, "batchStarted", 1);
    stop();
    const abandoned = batchSpans(otel.spans());
    expect(abandoned).toHaveLength(1);
    expect(abandoned[0]!.attributes["superspreader.batch.abandoned"]).toBe(true);
    release();
    await running;
    // Nothing more is recorded after stop().
    expect(batchSpans(otel.spans())).toHaveLength(1);
    // The SDK exports only instruments that recorded something.
    expect((await otel.metrics()).map((m) => m.descriptor.name)).not.toContain("superspreader.batches");
  });

  it("evicts the oldest open span past maxOpenSpans", async () => {
    const otel = newSdk();
    const w = world();
    instrumentOpenTelemetry(w.spreader, { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider, maxOpenSpans: 1 });
    const release = gatedBackfill(w, "wide", 2);
    await w.spreader.start("wide");
    await w.run(1);
    const first = w.run(1);
    const second = w.run(1);
    await waitForEvents(w, "batchStarted", 2);
    release();
    await Promise.all([first, second]);
    const spans = batchSpans(otel.spans());
    expect(spans.map((s) => s.attributes["superspreader.batch.abandoned"] ?? s.attributes["superspreader.batch.outcome"])).toEqual([true, "done"]);
  });

  it("records queue lag when batchStarted carries the planned run time", async () => {
    const otel = newSdk();
    const source = scheduledEventSource();
    instrumentOpenTelemetry(source, { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider });
    source.startBatch(T0, T0 + 1_500);
    source.startBatch(T0 + 2_000, T0 + 1_990); // a clock skewed between processes counts as no lag
    source.startBatch(T0, T0 + 60_000, 2); // a retry runs after its backoff, not at the planned time: not lag
    const lag = find(await otel.metrics(), "superspreader.queue.lag") as HistogramMetricData;
    expect(lag.descriptor.unit).toBe("ms");
    expect(lag.dataPoints.map((p) => [p.attributes, p.value.count, p.value.sum])).toEqual([[{ "superspreader.backfill": "lagging" }, 2, 1_500]]);
  });

  it("rejects what is not a runtime, tracer, meter or limit", () => {
    expect(() => instrumentOpenTelemetry({} as never)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", field: "spreader" }));
    const w = world();
    expect(() => instrumentOpenTelemetry(w.spreader, { tracer: {} as never })).toThrow(expect.objectContaining({ field: "tracer" }));
    expect(() => instrumentOpenTelemetry(w.spreader, { meter: 1 as never })).toThrow(expect.objectContaining({ field: "meter" }));
    expect(() => instrumentOpenTelemetry(w.spreader, { maxOpenSpans: 0 })).toThrow(/maxOpenSpans must be a whole number ≥ 1, got 0/);
  });
});
