import { describe, expect, it } from "vitest";
import { createMemoryIdSource, createMemoryStateStore, createSuperSpreader, validateConfig, type BatchJobData } from "../src/index.js";
import { world } from "./harness.js";

const config = { batchSize: 10, duration: 2, perSecondOnPeak: 10, perSecondOffPeak: 10 };

describe("collected output", () => {
  it("keeps each batch's result once, bigints as strings, readable page by page", async () => {
    const w = world();
    w.spreader.define("collect", {
      source: createMemoryIdSource({ minId: 1, maxId: 50 }),
      config: { ...config, output: {} },
      handle: async ({ beginId, endId }) => ({ first: beginId, ids: Number(endId - beginId + 1n), skipped: beginId === 1n ? [3n, 5n] : [] }),
    });
    await w.spreader.start("collect");
    await w.run();
    const page = await w.spreader.output("collect", { limit: 2 });
    expect(page).toMatchObject({ count: 5, dropped: 0 });
    expect(page.entries).toHaveLength(2);
    expect(JSON.parse(page.entries[0]!.result)).toEqual({ first: "41", ids: 10, skipped: [] });
    const rest = await w.spreader.output("collect", { cursor: page.next!, limit: 10 });
    expect(rest.next).toBeNull();
    expect(rest.entries.map((e) => e.beginId)).toEqual([21n, 11n, 1n]);
    expect(JSON.parse(rest.entries[2]!.result)).toEqual({ first: "1", ids: 10, skipped: ["3", "5"] });
    // A second delivery of a finished batch (at-least-once) adds nothing.
    const job = w.batchJobs("collect").find((j) => j.beginId === "1") as BatchJobData;
    expect(await w.spreader.perform(job, { attempt: 2, maxAttempts: 3, signal: new AbortController().signal })).toBe("skipped");
    const status = await w.spreader.status("collect");
    expect(status.status).toBe("completed");
    expect((await w.spreader.output("collect")).count).toBe(5);
  });

  it("adds a repeated delivery's result once while the run goes on", async () => {
    const w = world();
    let calls = 0;
    w.spreader.define("twice", {
      source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
      config: { ...config, perSecondOffPeak: 1, output: {} },
      handle: async () => ({ call: ++calls }),
    });
    await w.spreader.start("twice");
    await w.run(2);
    const job = w.batchJobs("twice")[0]!;
    const context = { attempt: 1, maxAttempts: 3, signal: new AbortController().signal };
    expect(await w.spreader.perform(job, context)).toBe("done");
    expect(await w.spreader.perform(job, context)).toBe("done");
    const page = await w.spreader.output("twice");
    expect(page.entries.filter((e) => e.beginId === BigInt(job.beginId))).toEqual([expect.objectContaining({ result: JSON.stringify({ call: 1 }) })]);
  });

  it("ignores what handlers return while output is off (the default)", async () => {
    const w = world();
    w.spreader.define("off", { source: createMemoryIdSource({ minId: 1, maxId: 30 }), config, handle: async () => 5n });
    await w.spreader.start("off");
    await w.run();
    expect(await w.spreader.status("off")).toMatchObject({ status: "completed" });
    expect(await w.spreader.output("off")).toEqual({ entries: [], next: null, count: 0, bytes: 0, dropped: 0 });
  });

  it("keeps the first results within maxBytes and counts the rest as dropped", async () => {
    const w = world();
    w.spreader.define("bounded", {
      source: createMemoryIdSource({ minId: 1, maxId: 100 }),
      config: { ...config, output: { maxBytes: 30, maxEntryBytes: 10 } },
      handle: async ({ beginId }) => `#${beginId}`, // "#91": 5 bytes of JSON
    });
    await w.spreader.start("bounded");
    await w.run();
    const page = await w.spreader.output("bounded");
    // Batches run highest first: the first six results fill the 30 bytes, the other four are dropped.
    expect(page.entries.map((e) => JSON.parse(e.result))).toEqual(["#91", "#81", "#71", "#61", "#51", "#41"]);
    expect(page).toMatchObject({ count: 6, bytes: 30, dropped: 4 });
    expect((await w.spreader.audit("bounded")).complete).toBe(true);
  });

  it("fails a batch whose result is too large or has no JSON form, saying which and why", async () => {
    const w = world();
    w.spreader.define("oversize", {
      source: createMemoryIdSource({ minId: 1, maxId: 20 }),
      config: { ...config, maxAttempts: 1, output: { maxEntryBytes: 100 } },
      handle: async ({ beginId }) => {
        if (beginId === 11n) return "x".repeat(200);
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        return circular;
      },
    });
    await w.spreader.start("oversize");
    await w.run();
    const failed = (await w.spreader.audit("oversize")).failed;
    expect(failed.map((f) => [f.beginId, f.error])).toEqual([
      [11n, expect.stringContaining('backfill "oversize": the handler\'s result for 11..20 is 202 bytes of JSON, more than output.maxEntryBytes (100): return less')],
      [1n, expect.stringMatching(/backfill "oversize": the handler's result for 1\.\.10 has no JSON form \(Converting circular structure to JSON[\s\S]*\): return plain data/)],
    ]);
    expect((await w.spreader.output("oversize")).count).toBe(0);
    expect((await w.spreader.status("oversize")).status).toBe("failed");
  });

  it("validates output before anything is written, naming the field and value", () => {
    expect(validateConfig({ ...config, output: {} }).output).toEqual({ maxBytes: 1_048_576, maxEntryBytes: 16_384 });
    expect(validateConfig({ ...config, output: { maxBytes: 1000 } }).output).toEqual({ maxBytes: 1000, maxEntryBytes: 1000 });
    expect(() => validateConfig({ ...config, output: { maxBytes: 0 } })).toThrow("output.maxBytes must be a whole number ≥ 1, got 0");
    expect(() => validateConfig({ ...config, output: { maxBytes: 10, maxEntryBytes: 20 } })).toThrow("output.maxEntryBytes must be at most output.maxBytes (10), got 20");
    expect(() => validateConfig({ ...config, output: { maxByte: 10 } as never })).toThrow("output.maxByte is not a known field: did you mean maxBytes?");
    const spreader = createSuperSpreader({ queue: null, store: createMemoryStateStore() });
    expect(() => spreader.define("bad", { source: createMemoryIdSource({ minId: 1, maxId: 2 }), config: { ...config, output: "on" as never }, handle: async () => {} })).toThrow(
      'output must be an object, got "on"',
    );
  });
});
