import { describe, expect, it } from "vitest";
import { createWorkerReporter, type WorkerLogger } from "../src/adapter.js";
import { createMemoryIdSource, createSuperSpreader } from "../src/index.js";
import { idCounter, world } from "./harness.js";

function collect() {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, message, fields });
  const logger: WorkerLogger = { info: at("info"), warn: at("warn"), error: at("error") };
  return { lines, logger, messages: () => lines.map((l) => l.message) };
}

const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

describe("a worker that talks", () => {
  it("says what it runs, each change of state (made here or from the CLI), a summary a minute at most, and when it stops", async () => {
    const w = world();
    const ids = idCounter(5_000);
    w.spreader.define("orders", { source: createMemoryIdSource({ minId: 1, maxId: 5_000 }), config: { batchSize: 100, duration: 10, perSecondOnPeak: 10, perSecondOffPeak: 10 }, handle: ids.handle });
    const out = collect();
    const reporter = createWorkerReporter({ spreader: w.spreader, log: out.logger, queue: "memory queue", concurrency: 4, intervalMs: 10, clock: w.clock });
    await w.spreader.start("orders");
    reporter.started();
    expect(out.messages()[0]).toBe("worker started on memory queue, concurrency 4, backfills: orders");
    await until("the first look", () => out.messages().includes("orders: running, 0/5,000 ids"));
    await w.run(10);
    const cli = createSuperSpreader({ queue: null, store: w.store, clock: w.clock });
    await cli.pause("orders");
    await until("the pause", () => out.messages().includes("orders: paused"));
    await cli.resume("orders");
    await until("the resume", () => out.messages().includes("orders: resumed"));
    // The summary waits for a minute of this process's batches.
    expect(out.messages().some((m) => m.startsWith("last "))).toBe(false);
    w.clock.advance(60_000);
    await w.spreader.watchdog();
    await w.run();
    await until("completion", () => out.messages().some((m) => m.startsWith("orders: completed: 5,000 ids")));
    expect(out.messages().some((m) => /^last \d+ (s|min): \d+ batches \([\d,]+ ids, \d+ ids\/s\)/.test(m))).toBe(true);
    expect(out.lines.find((l) => l.message.includes("watchdog revived"))?.level).toBe("warn");
    await reporter.stop();
    expect(out.messages().at(-1)).toBe("worker stopped");
  });

  it("prints a lost connection once per streak and its return once, and the same worker error once a minute", async () => {
    const w = world();
    const out = collect();
    const reporter = createWorkerReporter({ spreader: w.spreader, log: out.logger, queue: "q", concurrency: 1, clock: w.clock, connection: "Redis at redis://127.0.0.1:6379" });
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" });
    for (let i = 0; i < 27; i++) reporter.connectionLost(refused);
    reporter.connectionBack();
    reporter.connectionBack();
    expect(out.messages()).toEqual([
      "waiting for Redis at redis://127.0.0.1:6379 (connect ECONNREFUSED 127.0.0.1:6379), retrying",
      "Redis at redis://127.0.0.1:6379 is back",
    ]);
    reporter.workerError(new Error("Missing lock for job 1"));
    reporter.workerError(new Error("Missing lock for job 1"));
    w.clock.advance(61_000);
    reporter.workerError(new Error("Missing lock for job 1"));
    expect(out.messages().filter((m) => m.startsWith("worker error"))).toHaveLength(2);
    await reporter.stop();
  });

  it("is quiet when told, and refuses a logger that is not one", () => {
    const w = world();
    const quiet = createWorkerReporter({ spreader: w.spreader, log: "quiet", queue: "q", concurrency: 1 });
    quiet.started();
    quiet.connectionLost(new Error("x"));
    expect(() => createWorkerReporter({ spreader: w.spreader, log: { info: () => {} } as never, queue: "q", concurrency: 1 })).toThrow(
      /log must be "text", "json", "quiet" or a logger/,
    );
  });
});
