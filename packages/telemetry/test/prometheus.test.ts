import { describe, expect, it } from "vitest";
import { createManualClock, createMemoryIdSource, createMemoryJobQueue, createMemoryStateStore, createMemoryWorker, createSuperSpreader } from "@superspreader/core";
import { PROMETHEUS_CONTENT_TYPE, prometheusMetrics } from "../src/index.js";
import { HANDLER_MS, T0, eventsOf, runWithPause, scheduledEventSource, world } from "./helpers.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/**
 * A strict parser of text exposition format 0.0.4: every line is a comment or a sample, every
 * sample belongs to a family whose TYPE came first, HELP and TYPE appear once per family, label
 * values use only the three escapes, histograms are cumulative and end with +Inf = _count.
 */
function parse(text: string): Parsed {
  expect(text.endsWith("\n")).toBe(true);
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const labelRe = new RegExp(`^(${"[a-zA-Z_][a-zA-Z0-9_]*"})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`);
  const familyOf = (sample: string): string => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = sample.slice(0, -suffix.length);
      if (sample.endsWith(suffix) && type.get(base) === "histogram") return base;
    }
    return sample;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = new RegExp(`^# (HELP|TYPE) (${name}) (.*)$`).exec(line);
    if (comment) {
      const [, kind, family, rest] = comment as unknown as [string, "HELP" | "TYPE", string, string];
      const map = kind === "HELP" ? help : type;
      expect(map.has(family), `${kind} of ${family} twice`).toBe(false);
      if (kind === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(rest);
        expect(samples.some((s) => familyOf(s.name) === family), `TYPE of ${family} after its samples`).toBe(false);
      }
      map.set(family, kind === "HELP" ? rest.replace(/\\n/g, "\n").replace(/\\\\/g, "\\") : rest);
      continue;
    }
    const head = new RegExp(`^(${name})`).exec(line);
    expect(head, `not a sample: ${JSON.stringify(line)}`).not.toBeNull();
    const sampleName = head![1]!;
    let rest = line.slice(sampleName.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      rest = rest.slice(1);
      while (!rest.startsWith("}")) {
        const m = labelRe.exec(rest);
        expect(m, `bad label in ${JSON.stringify(line)}`).not.toBeNull();
        expect(labels[m![1]!], `label ${m![1]} twice`).toBeUndefined();
        labels[m![1]!] = m![2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        rest = rest.slice(m![0].length);
        if (rest.startsWith(",")) rest = rest.slice(1);
      }
      rest = rest.slice(1);
    }
    const value = /^ (\S+)$/.exec(rest);
    expect(value, `bad value in ${JSON.stringify(line)}`).not.toBeNull();
    const raw = value![1]!;
    const number = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    expect(Number.isNaN(number) && raw !== "NaN", `bad number ${raw}`).toBe(false);
    const family = familyOf(sampleName);
    expect(type.has(family), `sample ${sampleName} without TYPE`).toBe(true);
    samples.push({ name: sampleName, labels, value: number });
  }
  for (const [family, kind] of type) {
    expect(help.has(family), `no HELP for ${family}`).toBe(true);
    if (kind === "counter") expect(family.endsWith("_total")).toBe(true);
    if (kind !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      const counts = buckets.map((b) => b.value);
      expect(counts, `${family} buckets not cumulative`).toEqual([...counts].sort((a, b) => a - b));
      expect(buckets.at(-1)!.labels.le).toBe("+Inf");
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      expect(count?.value).toBe(buckets.at(-1)!.value);
    }
  }
  return { help, type, samples };
}

/** The value of the one sample with this name and exactly these labels. */
function value(parsed: Parsed, name: string, labels: Record<string, string>): number | undefined {
  const found = parsed.samples.filter((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels));
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

describe("prometheusMetrics", () => {
  it("exposes event counters and stored status of a small backfill", async () => {
    const w = world();
    const exposition = prometheusMetrics(w.spreader);
    expect(exposition.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(PROMETHEUS_CONTENT_TYPE).toBe(exposition.contentType);
    await runWithPause(w);
    const text = await exposition.collect();
    const p = parse(text);
    const deferred = eventsOf(w, "batchDeferred").length;
    expect(deferred).toBeGreaterThan(0);

    // Counters, from the events this process saw.
    const r = { backfill: "reindex" };
    expect(value(p, "superspreader_batches_total", { ...r, outcome: "done" })).toBe(9);
    expect(value(p, "superspreader_batches_total", { ...r, outcome: "failed" })).toBe(1);
    expect(value(p, "superspreader_batches_total", { ...r, outcome: "deferred" })).toBe(deferred);
    expect(value(p, "superspreader_ids_total", r)).toBe(900);
    expect(value(p, "superspreader_failures_total", { ...r, final: "true", error_type: "ER_LOCK_DEADLOCK" })).toBe(1);
    expect(value(p, "superspreader_failures_total", { ...r, final: "false", error_type: "ER_LOCK_DEADLOCK" })).toBe(1);
    expect(value(p, "superspreader_failures_total", { ...r, final: "false", error_type: "Error" })).toBe(1);
    expect(value(p, "superspreader_cycles_total", { ...r, on_peak: "false" })).toBe(eventsOf(w, "cyclePlanned").length);
    expect(value(p, "superspreader_batch_duration_seconds_count", { ...r, outcome: "done" })).toBe(9);
    expect(value(p, "superspreader_batch_duration_seconds_sum", { ...r, outcome: "done" })).toBeCloseTo((9 * HANDLER_MS) / 1000, 9);
    expect(value(p, "superspreader_batch_duration_seconds_bucket", { ...r, outcome: "done", le: "0.025" })).toBe(0);
    expect(value(p, "superspreader_batch_duration_seconds_bucket", { ...r, outcome: "done", le: "0.05" })).toBe(9);
    expect(value(p, "superspreader_batch_duration_seconds_count", { ...r, outcome: "failed" })).toBe(3);
    expect(p.type.get("superspreader_queue_lag_seconds")).toBe("histogram");

    // Gauges, from status().
    const status = await w.spreader.status("reindex");
    expect(status.status).toBe("failed");
    expect(value(p, "superspreader_backfill_up", r)).toBe(1);
    expect(value(p, "superspreader_backfill_info", { ...r, run_id: status.runId })).toBe(1);
    for (const s of ["running", "paused", "cancelled", "completed", "failed"]) {
      expect(value(p, "superspreader_backfill_status", { ...r, status: s })).toBe(s === "failed" ? 1 : 0);
    }
    expect(value(p, "superspreader_backfill_ids", r)).toBe(1000);
    expect(value(p, "superspreader_backfill_ids_done", r)).toBe(900);
    expect(value(p, "superspreader_backfill_progress_ratio", r)).toBe(0.9);
    expect(value(p, "superspreader_backfill_batches", { ...r, outcome: "done" })).toBe(9);
    expect(value(p, "superspreader_backfill_batches", { ...r, outcome: "failed" })).toBe(1);
    expect(value(p, "superspreader_backfill_batches", { ...r, outcome: "deferred" })).toBe(deferred);
    expect(value(p, "superspreader_backfill_rate_batches_per_second", r)).toBe(5);
    expect(value(p, "superspreader_backfill_on_peak", r)).toBe(0);
    expect(value(p, "superspreader_backfill_cycle", r)).toBe(status.cycle);
    expect(value(p, "superspreader_backfill_tick_overdue_seconds", r)).toBe(0);
    expect(value(p, "superspreader_backfill_started_timestamp_seconds", r)).toBe(T0 / 1000);
    expect(value(p, "superspreader_backfill_last_done_timestamp_seconds", r)).toBe(status.progress.lastDoneAt! / 1000);

    // Exact lines, as a scraper reads them.
    expect(text).toContain('# TYPE superspreader_batches_total counter\nsuperspreader_batches_total{backfill="reindex",outcome="deferred"} ');
    expect(text).toContain('superspreader_batch_duration_seconds_bucket{backfill="reindex",outcome="done",le="+Inf"} 9\n');
  });

  it("counts what the runtime healed, and shows a held run's status and probes", async () => {
    const clock = createManualClock(T0);
    const queue = createMemoryJobQueue({ clock });
    const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock, reconcileAfterMs: 1_000 });
    let failing = true;
    spreader.define("fragile", {
      source: createMemoryIdSource({ minId: 1, maxId: 2_000 }),
      config: { batchSize: 10, duration: 10, perSecondOnPeak: 5, perSecondOffPeak: 5, hold: { consecutiveFailures: 3, probeAfter: 3_600, maxProbeInterval: 3_600 } },
      async handle() {
        if (failing) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
      },
    });
    const exposition = prometheusMetrics(spreader);
    await spreader.start("fragile");
    const worker = createMemoryWorker({ queue, spreader });
    await worker.runUntilIdle(clock, { maxJobs: 20 });
    const held = parse(await exposition.collect());
    const r = { backfill: "fragile" };
    expect(value(held, "superspreader_backfill_status", { ...r, status: "held" })).toBe(1);
    expect(value(held, "superspreader_healed_total", { ...r, kind: "hold" })).toBe(1);
    expect(value(held, "superspreader_backfill_held_probes", r)).toBe(0);
    // A batch job the queue loses is found by the ticks and counted.
    failing = false;
    await spreader.resume("fragile");
    const lost = queue.all().find((j) => j.job.data.kind === "batch" && j.state === "delayed");
    expect(lost).toBeDefined();
    queue.remove(lost!.job.id);
    await worker.runUntilIdle(clock);
    const after = parse(await exposition.collect());
    expect(value(after, "superspreader_backfill_status", { ...r, status: "completed" })).toBe(1);
    expect(value(after, "superspreader_healed_total", { ...r, kind: "lost_range" })).toBe(1);
    expect(value(after, "superspreader_backfill_reconciled_ranges", r)).toBe(1);
    exposition.close();
  });

  it("counts the closed loop's changes and shows the batch size, ceiling and share in force", async () => {
    const clock = createManualClock(T0);
    const queue = createMemoryJobQueue({ clock });
    const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock });
    spreader.define("tuned", {
      source: createMemoryIdSource({ minId: 1, maxId: 50_000 }),
      config: { batchSize: 1_000, duration: 10, perSecondOnPeak: 5, perSecondOffPeak: 5, autotune: { batchSize: { targetMs: 100 }, rate: false } },
      async handle({ beginId, endId }) {
        clock.advance(Number(endId - beginId + 1n)); // 1 ms an id: 1,000-id batches take 1 s, ten times the target
      },
    });
    const exposition = prometheusMetrics(spreader);
    await spreader.start("tuned");
    await createMemoryWorker({ queue, spreader }).runUntilIdle(clock, { maxJobs: 60 });
    const p = parse(await exposition.collect());
    const r = { backfill: "tuned" };
    expect(value(p, "superspreader_tuned_total", { ...r, field: "batch_size", direction: "down" })).toBeGreaterThanOrEqual(1);
    const status = await spreader.status("tuned");
    expect(status.control?.batchSize).toBe(100);
    expect(value(p, "superspreader_backfill_batch_size", r)).toBe(100);
    expect(value(p, "superspreader_backfill_ceiling_batches_per_second", r)).toBe(5);
    expect(value(p, "superspreader_backfill_autotune_share", r)).toBe(1);
    exposition.close();
  });

  it("escapes label values and help text", async () => {
    const w = world('ER"ODD\\CODE\nTWO');
    const exposition = prometheusMetrics(w.spreader, { prefix: "bf" });
    await w.spreader.start("reindex");
    await w.run();
    const text = await exposition.collect();
    expect(text).toContain('bf_failures_total{backfill="reindex",final="true",error_type="ER\\"ODD\\\\CODE\\nTWO"} 1\n');
    expect(value(parse(text), "bf_failures_total", { backfill: "reindex", final: "true", error_type: 'ER"ODD\\CODE\nTWO' })).toBe(1);
  });

  it("reads only the listed backfills, reports unreadable ones as down, and keeps counting until closed", async () => {
    const w = world();
    await w.spreader.start("reindex");
    const exposition = prometheusMetrics(w.spreader, { backfills: ["reindex", "never-started"] });
    await w.run(3); // the tick, 901-1000 failing once, 801-900 done
    let p = parse(await exposition.collect());
    expect(value(p, "superspreader_backfill_up", { backfill: "reindex" })).toBe(1);
    expect(value(p, "superspreader_backfill_up", { backfill: "never-started" })).toBe(0);
    expect(p.samples.filter((s) => s.labels.backfill === "never-started").map((s) => s.name)).toEqual(["superspreader_backfill_up"]);
    expect(value(p, "superspreader_backfill_status", { backfill: "reindex", status: "running" })).toBe(1);
    expect(value(p, "superspreader_batches_total", { backfill: "reindex", outcome: "done" })).toBe(1);

    exposition.close();
    exposition.close();
    await w.run();
    p = parse(await exposition.collect());
    expect(value(p, "superspreader_batches_total", { backfill: "reindex", outcome: "done" })).toBe(1);
    expect(value(p, "superspreader_backfill_batches", { backfill: "reindex", outcome: "done" })).toBe(9);

    const none = parse(await prometheusMetrics(w.spreader, { backfills: [] }).collect());
    expect(none.samples).toEqual([]);
    expect(none.type.get("superspreader_backfill_up")).toBe("gauge");
  });

  it("records queue lag when batchStarted carries the planned run time", async () => {
    const source = scheduledEventSource();
    const exposition = prometheusMetrics(source, { backfills: [], lagBuckets: [1, 2] });
    source.startBatch(T0, T0 + 1_500);
    source.startBatch(T0, T0 + 500);
    const p = parse(await exposition.collect());
    const l = { backfill: "lagging" };
    expect(value(p, "superspreader_queue_lag_seconds_bucket", { ...l, le: "1" })).toBe(1);
    expect(value(p, "superspreader_queue_lag_seconds_bucket", { ...l, le: "2" })).toBe(2);
    expect(value(p, "superspreader_queue_lag_seconds_sum", l)).toBe(2);
  });

  it("has a parser that rejects malformed text", () => {
    expect(() => parse("x 1")).toThrow(); // no final newline
    expect(() => parse("x 1\n")).toThrow(/without TYPE/);
    expect(() => parse('# HELP x h\n# TYPE x gauge\nx{a="b} 1\n')).toThrow(/bad label/);
    expect(() => parse('# HELP x h\n# TYPE x gauge\nx{a="\\q"} 1\n')).toThrow(/bad label/);
    expect(() => parse("# HELP x h\n# TYPE x gauge\nx one\n")).toThrow(/bad number/);
    expect(() => parse("# HELP x_total h\n# TYPE x_total counter\n# TYPE x_total counter\n")).toThrow(/twice/);
    const histogram = '# HELP h h\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n';
    expect(() => parse(histogram)).toThrow(/not cumulative/);
    expect(parse("# HELP x h\n# TYPE x gauge\nx NaN\n").samples).toHaveLength(1);
  });

  it("rejects bad options before subscribing", () => {
    const w = world();
    expect(() => prometheusMetrics({ on: () => () => {} } as never)).toThrow(/spreader must be a SuperSpreader .* with a status\(\) method/);
    expect(() => prometheusMetrics(w.spreader, { prefix: "super-spreader" })).toThrow(expect.objectContaining({ field: "prefix" }));
    expect(() => prometheusMetrics(w.spreader, { backfills: "some" as never })).toThrow(expect.objectContaining({ field: "backfills" }));
    expect(() => prometheusMetrics(w.spreader, { durationBuckets: [1, 0.5] })).toThrow(
      /durationBuckets must be a non-empty list of finite bounds in seconds, > 0 and increasing, got \[1,0.5\]/,
    );
    expect(() => prometheusMetrics(w.spreader, { lagBuckets: [] })).toThrow(expect.objectContaining({ field: "lagBuckets" }));
  });
});
