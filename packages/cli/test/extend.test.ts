/**
 * `superspreader extend` with nothing but Redis: the CLI has no source to read, so it writes a request
 * that the watchdog of a worker defining the backfill carries out; the CLI waits for its answer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IdSource } from "@superspreader/core";
import { cli, unique, waitUntil } from "./helpers.js";
import { memoryApp, type MemoryApp } from "./memory-app.js";

const prefix = unique("cli-extend");
const run = (args: readonly string[]) => cli(args, { SUPERSPREADER_PREFIX: prefix });

let top = 50n;
const table: IdSource = { capabilities: {}, minId: async () => 1n, maxId: async () => top };
const seen = new Map<bigint, number>();
let app: MemoryApp;

beforeAll(async () => {
  app = memoryApp(prefix, {
    growing: {
      maxId: 0,
      source: table,
      config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 },
      handle: async ({ beginId, endId }) => {
        for (let id = beginId; id <= endId; id++) seen.set(id, (seen.get(id) ?? 0) + 1);
      },
    },
  });
  await app.spreader.start("growing");
});

afterAll(async () => {
  await app?.close();
});

describe("superspreader extend", () => {
  it("adds the rows inserted after a completed run, which runs again over them only", async () => {
    await waitUntil("growing to complete", async () => (await app.spreader.status("growing")).status === "completed", 15_000);
    top = 80n;
    const extended = await run(["extend", "growing", "--reason", "rows since the start"]);
    expect(extended.stderr).toBe("waiting for a worker that defines growing to read its source's max id…\n");
    expect(extended.code).toBe(0);
    expect(extended.stdout).toBe("growing: extended by a worker: ids 51..80 (30 ids) added; the cycles plan them after the ranges planned before them.\n");
    await waitUntil("growing to complete again", async () => (await app.spreader.status("growing")).status === "completed" && (await app.spreader.status("growing")).progress.idsDone === 80n, 15_000);
    expect([...seen.keys()].length).toBe(80);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect((await run(["config", "get", "growing"])).stdout).toContain('cli:tester  initialId 50 → 80  "rows since the start"');
  }, 30_000);

  it("says so when there is nothing new, in text and JSON", async () => {
    const none = await run(["extend", "growing", "--json"]);
    expect(none.code).toBe(0);
    expect(none.json()).toMatchObject({ name: "growing", requested: true, carriedOut: true, extended: false, fromId: "80", toId: "80", sourceMaxId: "80" });
    const text = await run(["extend", "growing"]);
    expect(text.stdout).toBe("growing: nothing new above the run's id space (it ends at 80; the source's max id is 80); nothing was changed (a worker).\n");
    const noWait = await run(["extend", "growing", "--no-wait", "--json"]);
    expect(noWait.json()).toMatchObject({ requested: true, carriedOut: false, extended: null });
  }, 30_000);

  it("refuses an unknown backfill and lists itself in the help", async () => {
    const unknown = await run(["extend", "nope"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('backfill "nope" not found');
    expect((await run(["--help"])).stdout).toMatch(/^ {2}extend NAME +catch up: add rows inserted above the run's id space$/m);
  });
});
