import { Console } from "node:console";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { logEvents, type StructuredLogger } from "../src/index.js";
import { DriverError, T0, eventsOf, runWithPause, world } from "./helpers.js";

type Level = "debug" | "info" | "warn" | "error";
interface Line {
  level: Level;
  fields: Record<string, unknown>;
  message: string | undefined;
}

function capturing(withDebug = true): StructuredLogger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Level) => (fields: Record<string, unknown>, message?: string) => void lines.push({ level, fields, message });
  return { lines, info: at("info"), warn: at("warn"), error: at("error"), ...(withDebug ? { debug: at("debug") } : {}) };
}

/** A writable stream keeping what was written, as text. */
function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { stream, text: () => chunks.join("") };
}

describe("logEvents", () => {
  it("writes one structured line per event, ids as strings", async () => {
    const w = world();
    const logger = capturing();
    logEvents(w.spreader, logger);
    await runWithPause(w);
    expect(logger.lines).toHaveLength(w.events.length);
    expect(logger.lines.map((l) => l.fields.event)).toEqual(w.events.map((e) => e.name));

    const runId = eventsOf(w, "started")[0]!.runId;
    expect(logger.lines[0]).toEqual({
      level: "info",
      message: "backfill started",
      fields: { event: "started", backfill: "reindex", runId, at: T0, minId: "1", initialId: "1000" },
    });
    const finished = logger.lines.find((l) => l.fields.event === "batchFinished")!;
    expect(finished.level).toBe("debug");
    expect(finished.message).toBe("batch finished");
    expect(finished.fields).toMatchObject({ backfill: "reindex", runId, cycle: 0, beginId: "801", endId: "900", attempt: 1, durationMs: 40, firstCompletion: true });

    const failed = logger.lines.filter((l) => l.fields.event === "batchFailed");
    expect(failed.map((l) => [l.level, l.fields.beginId, l.fields.attempt, l.fields.final])).toEqual([
      ["warn", "901", 1, false],
      ["warn", "1", 1, false],
      ["error", "1", 2, true],
    ]);
    expect(failed[2]!.fields.err).toBeInstanceOf(DriverError);
    expect(failed[2]!.fields).not.toHaveProperty("error");

    expect(logger.lines.filter((l) => l.fields.event === "batchDeferred").every((l) => l.level === "debug")).toBe(true);
    expect(logger.lines.filter((l) => l.level === "info").map((l) => l.fields.event)).toEqual(["started", "paused", "resumed"]);
    expect(logger.lines.at(-1)).toMatchObject({ level: "error", message: "backfill ended", fields: { event: "completed", status: "failed" } });
  });

  it("logs config changes with their values, honours level overrides, and stops when told", async () => {
    const w = world();
    const logger = capturing(false);
    const stop = logEvents(w.spreader, logger, { levels: { batchStarted: "off", batchFinished: "info", configChanged: "warn" } });
    await w.spreader.start("reindex");
    await w.run(3);
    await w.spreader.updateConfig("reindex", { perSecondOffPeak: 7.5 }, { actor: "ops" });
    expect(logger.lines.some((l) => l.fields.event === "batchStarted")).toBe(false);
    // Without a debug method, debug lines go to info.
    expect(logger.lines.find((l) => l.fields.event === "cyclePlanned")?.level).toBe("info");
    expect(logger.lines.find((l) => l.fields.event === "batchFinished")?.level).toBe("info");
    expect(logger.lines.at(-1)).toMatchObject({
      level: "warn",
      message: "backfill config changed",
      fields: { event: "configChanged", changes: { perSecondOffPeak: { from: 5, to: 7.5 } } },
    });
    const count = logger.lines.length;
    stop();
    stop();
    await w.run();
    expect(logger.lines).toHaveLength(count);
  });

  it("works with a real pino logger: JSON lines with pino's error serializer", async () => {
    const w = world();
    const out = sink();
    logEvents(w.spreader, pino({ level: "debug", base: { app: "backfills" } }, out.stream));
    await w.spreader.start("reindex");
    await w.run();
    const lines = out.text().trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(w.events.length);
    expect(lines.map((l) => l.event)).toEqual(w.events.map((e) => e.name));
    expect(lines[0]).toMatchObject({ level: 30, app: "backfills", msg: "backfill started", event: "started", minId: "1", initialId: "1000" });
    const final = lines.find((l) => l.event === "batchFailed" && l.final === true)!;
    expect(final).toMatchObject({
      level: 50,
      msg: "batch failed",
      beginId: "1",
      endId: "100",
      err: { type: "DriverError", message: "deadlock found when trying to get lock", code: "ER_LOCK_DEADLOCK" },
    });
    expect(lines.find((l) => l.event === "batchStarted")).toMatchObject({ level: 20, beginId: "901" });
  });

  it("skips lines pino would drop, before building them", async () => {
    const w = world();
    const out = sink();
    const logger = pino({ level: "info" }, out.stream);
    logEvents(w.spreader, logger);
    await w.spreader.start("reindex");
    await w.run();
    const events = out.text().trimEnd().split("\n").map((line) => (JSON.parse(line) as { event: string }).event);
    expect(events).toEqual(["started", "batchFailed", "batchFailed", "batchFailed", "completed"]);
  });

  it("works with console", async () => {
    const w = world();
    const out = sink();
    logEvents(w.spreader, new Console({ stdout: out.stream, stderr: out.stream, inspectOptions: { breakLength: Infinity } }), {
      levels: { batchStarted: "off", batchFinished: "off", batchFailed: "off", cyclePlanned: "off" },
    });
    await w.spreader.start("reindex");
    await w.run();
    expect(out.text()).toBe(
      [
        `{ event: 'started', backfill: 'reindex', runId: '${eventsOf(w, "started")[0]!.runId}', at: ${T0}, minId: '1', initialId: '1000' } backfill started`,
        `{ event: 'completed', backfill: 'reindex', runId: '${eventsOf(w, "started")[0]!.runId}', at: ${eventsOf(w, "completed")[0]!.at}, status: 'failed' } backfill ended`,
        "",
      ].join("\n"),
    );
  });

  it("rejects a logger without the needed methods and unknown levels", () => {
    const w = world();
    expect(() => logEvents(w.spreader, { info() {}, warn() {} } as never)).toThrow(
      /logger must have info, warn and error methods \(a pino logger or console\)/,
    );
    expect(() => logEvents(w.spreader, console, { levels: { batchStarted: "trace" as never } })).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", field: "levels.batchStarted" }),
    );
    expect(() => logEvents(w.spreader, console, { levels: { batchStart: "info" } as never })).toThrow(
      expect.objectContaining({ field: "levels.batchStart" }),
    );
  });
});
