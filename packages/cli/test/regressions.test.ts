/**
 * The CLI's small bugs, one test each; every one of them failed before its fix. The app's
 * workers run in this process on the in-memory queue, with their state in the test's Redis;
 * the CLI works on that state with only a Redis URL, as an operator's does.
 */
import { userInfo } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, unique, waitUntil } from "./helpers.js";
import { memoryApp, type MemoryApp } from "./memory-app.js";

const prefix = unique("cli-fix");
const run = (args: readonly string[], env: Record<string, string | undefined> = {}, tty = false) => cli(args, { SUPERSPREADER_PREFIX: prefix, ...env }, tty);
// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "");

let app: MemoryApp;

beforeAll(async () => {
  app = memoryApp(prefix, {
    // Two batches at 100/s: completed within a cycle.
    quick: { maxId: 20, config: { batchSize: 10, duration: 0.1, perSecondOnPeak: 100, perSecondOffPeak: 100 } },
    // Both rates 0: running for ever, nothing enqueued.
    idle: { maxId: 1_000, config: { batchSize: 10, duration: 60, perSecondOnPeak: 0, perSecondOffPeak: 0 } },
  });
  await app.spreader.start("quick");
  await app.spreader.start("idle");
  await waitUntil("quick to complete", async () => (await app.spreader.status("quick")).status === "completed");
});

afterAll(async () => {
  await app?.close();
});

describe("small bugs, each with a test that failed before its fix", () => {
  it("suggests the command a typo meant", async () => {
    const typo = await run(["statsu", "quick"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('unknown command "statsu": did you mean `status`?');
    const sub = await run(["config", "sett", "quick", "duration=1"]);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain('unknown command "config sett": did you mean `config set`?');
    expect((await run(["help", "retry-faild"])).stderr).toContain("did you mean `retry-failed`?");
  });

  it("suggests the option a typo meant", async () => {
    const typo = await run(["list", "--jsn"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("unknown option --jsn: did you mean --json?");
    const reason = await run(["pause", "idle", "--reasn", "maintenance"]);
    expect(reason.code).toBe(2);
    expect(reason.stderr).toContain("unknown option --reasn: did you mean --reason?");
    expect((await app.spreader.status("idle")).status).toBe("running");
  });

  it("aligns list's columns on a terminal, where the state word is coloured", async () => {
    const listed = await run(["list"], {}, true);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain("\u001b[36mcompleted\u001b[39m");
    const [header, ...rows] = plain(listed.stdout).trimEnd().split("\n");
    const column = (header ?? "").indexOf("PROGRESS");
    expect(column).toBeGreaterThan(0);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.indexOf("["), row).toBe(column);
  });

  it("plan of a completed backfill says the run ended, not that ranges in flight will complete it", async () => {
    const planned = await run(["plan", "quick"]);
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/^quick is completed \(ended .*\): it has no next cycle/);
    expect(planned.stdout).not.toContain("in flight");
  });

  it("cancel of a completed run says it already ended, without asking for --yes first", async () => {
    const cancelled = await run(["cancel", "quick"]);
    expect(cancelled.code).toBe(1);
    expect(cancelled.stderr).toContain('backfill "quick" already ended (completed); nothing to cancel');
    expect(cancelled.stderr).not.toContain("--yes");
    expect((await app.spreader.status("quick")).status).toBe("completed");
  });

  it("records the OS user as the actor when USER is unset", async () => {
    const paused = await run(["pause", "idle"], { USER: undefined, LOGNAME: undefined, USERNAME: undefined });
    expect(paused.code).toBe(0);
    const history = (await run(["config", "get", "idle", "--json"])).json().history;
    expect(history[0]).toMatchObject({ actor: `cli:${userInfo().username}`, changes: { status: { from: "running", to: "paused" } } });
  });

  it("shows the values of a run's config in the history, not just `config set`", async () => {
    const text = (await run(["config", "get", "quick"])).stdout;
    expect(text).toMatch(/run none → \w+, config batchSize=10, duration=0\.1, perSecondOnPeak=100, perSecondOffPeak=100/);
    expect(text).not.toContain("config set");
  });
});
