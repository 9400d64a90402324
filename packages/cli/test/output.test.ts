/** `superspreader output`: the results the handlers of a run returned, as JSON lines, from the store alone. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, unique, waitUntil } from "./helpers.js";
import { memoryApp, type MemoryApp } from "./memory-app.js";

const prefix = unique("cli-output");
const run = (args: readonly string[]) => cli(args, { SUPERSPREADER_PREFIX: prefix });
let app: MemoryApp;

beforeAll(async () => {
  app = memoryApp(prefix, {
    fixing: {
      maxId: 30,
      config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100, output: {} },
      handle: async ({ beginId }) => ({ fixed: 9, bad: [beginId + 4n] }),
    },
    quiet: { maxId: 10, config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 } },
  });
  await app.spreader.start("fixing");
  await app.spreader.start("quiet");
  await waitUntil("both to complete", async () => (await app.spreader.status("fixing")).status === "completed" && (await app.spreader.status("quiet")).status === "completed", 15_000);
});

afterAll(async () => {
  await app?.close();
});

describe("superspreader output", () => {
  it("writes one JSON line per batch: beginId, endId, at, result", async () => {
    const out = await run(["output", "fixing"]);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    const lines = out.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { beginId: string; endId: string; at: string; result: unknown });
    expect(lines.map((l) => [l.beginId, l.endId, l.result])).toEqual([
      ["21", "30", { fixed: 9, bad: ["25"] }],
      ["11", "20", { fixed: 9, bad: ["15"] }],
      ["1", "10", { fixed: 9, bad: ["5"] }],
    ]);
    for (const l of lines) expect(l.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const { runId } = await app.spreader.status("fixing");
    expect((await run(["output", "fixing", "--run", runId])).stdout).toBe(out.stdout);
    expect((await run(["output", "fixing", "--json"])).json()).toMatchObject({ name: "fixing", runId, count: 3, dropped: 0, entries: lines });
  });

  it("says on stderr when a run kept nothing, and refuses a malformed --run", async () => {
    const quiet = await run(["output", "quiet"]);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe("");
    expect(quiet.stderr).toMatch(/^quiet: run \w+ kept no results \(do its handlers return any, with the config's output on\?\)\n$/);
    const bad = await run(["output", "fixing", "--run", "no such run!"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--run must be a run id (letters, digits, "_" or "-", as status shows), got "no such run!"');
  });
});
