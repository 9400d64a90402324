import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { isSuperSpreaderError } from "@superspreader/core";
import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEMO_FLAGS,
  accountsTable,
  createAccountsTable,
  createNormaliseEmailsHandler,
  normaliseEmail,
  parseFlags,
  runDemo,
  verifyAccounts,
} from "../src/index.js";
import type { BatchWork, ExampleSettings } from "../src/index.js";

/** Collects what the demo writes. */
function capture() {
  const chunks: string[] = [];
  return { write: (text: string) => chunks.push(text), text: () => chunks.join("") };
}

describe("runDemo", () => {
  it("backfills, verifies and summarises 20,000 rows", async () => {
    const output = capture();
    const summary = await runDemo({ rows: 20_000, batchSize: 500, perSecond: 50, duration: 1, concurrency: 2, output, progress: "lines" });
    expect(summary).toMatchObject({
      verified: true,
      status: "completed",
      interrupted: false,
      rows: 20_000,
      wrongRows: 0,
      batches: 40,
      batchSize: 500,
      batchesFailed: 0,
      gaps: [],
      configuredRowsPerSecond: 25_000,
    });
    // Every row changed exactly once: a repeated delivery would write nothing.
    expect(summary.rowsWritten).toBe(20_000);
    expect(summary.rowsPerSecond).toBeGreaterThan(0);
    expect(summary.backfillMs).toBeLessThanOrEqual(summary.wallMs);
    expect(Object.keys(summary.phases)).toEqual(["database", "seed", "backfill", "verify"]);
    const text = output.text();
    expect(text).toContain('Backfill "normalise-emails": 40 batches of 500 ids, off-peak now at 50 batches/s');
    expect(text).toContain("[demo] 100.0%  20,000/20,000 rows");
    expect(text).toContain("Verified: all 20,000 rows are normalised and checksummed");
    expect(text).toContain("  gaps        none");
  }, 120_000);

  it("stops early on its signal, cancels the run and does not claim it verified", async () => {
    const controller = new AbortController();
    const output = {
      write: (text: string) => {
        // Abort as soon as the plan is out: the backfill has started and cannot have finished.
        if (text.startsWith("Backfill ")) controller.abort();
      },
    };
    const summary = await runDemo({ rows: 20_000, batchSize: 500, perSecond: 2, duration: 1, output, progress: "off", signal: controller.signal });
    expect(summary).toMatchObject({ verified: false, interrupted: true, status: "cancelled" });
    expect(summary.gaps.length).toBeGreaterThan(0);
  }, 120_000);

  it("with --store pglite, an interrupted demo is paused on disk and --resume finishes it without redoing done rows", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ss-demo-"));
    try {
      const controller = new AbortController();
      let lines = 0;
      const first = capture();
      const output = {
        write: (text: string) => {
          first.write(text);
          // Stop after the run has done some batches: a progress line past 0%.
          if (text.startsWith("[demo]") && !text.startsWith("[demo]   0.0%") && ++lines >= 1) controller.abort();
        },
      };
      const settings = { rows: 20_000, batchSize: 500, perSecond: 10, duration: 1, concurrency: 2, progress: "lines" as const, logEveryMs: 300 };
      const stopped = await runDemo({ ...settings, store: "pglite", dataDir, output, signal: controller.signal });
      expect(stopped).toMatchObject({ interrupted: true, status: "paused", verified: false });
      expect(first.text()).toContain(`continue it with --store pglite --resume`);
      const doneBefore = stopped.batches;
      expect(doneBefore).toBeGreaterThan(0);
      expect(doneBefore).toBeLessThan(40);

      // A new process: another PGlite on the same directory, the in-memory queue empty.
      const second = capture();
      const resumed = await runDemo({ store: "pglite", dataDir, resume: true, output: second, progress: "lines", concurrency: 2 });
      expect(resumed).toMatchObject({ verified: true, status: "completed", rows: 20_000, wrongRows: 0, gaps: [], batches: 40 });
      // Rows the first process finished are not written again: only the rest are.
      expect(resumed.rowsWritten).toBeLessThanOrEqual(20_000 - doneBefore * 500 + 2 * 500);
      expect(resumed.rowsWritten).toBeGreaterThanOrEqual(20_000 - doneBefore * 500 - 2 * 500);
      expect(second.text()).toContain("Resuming the demo kept in");
      expect(second.text()).toMatch(/Resuming "normalise-emails" at [\d,]+ of 20,000 ids/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);

  it("refuses --resume without a stored demo, and without the pglite store", async () => {
    const output = capture();
    const missing = join(tmpdir(), `ss-demo-missing-${process.pid}`);
    await expect(runDemo({ store: "pglite", dataDir: missing, resume: true, output })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "dataDir" });
    await expect(runDemo({ resume: true, output })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "resume" });
    expect(() => parseFlags(["--resume"], DEMO_FLAGS)).toThrow(/--resume needs --store pglite/);
    expect(() => parseFlags(["--store", "redis"], DEMO_FLAGS)).toThrow(/--store must be "memory" or "pglite", got "redis"/);
    expect(parseFlags(["--store", "pglite", "--resume", "--data-dir", "/tmp/x"], DEMO_FLAGS)).toMatchObject({ help: false, settings: { store: "pglite", resume: true, dataDir: "/tmp/x" } });
    expect(output.text()).toBe("");
  });

  it("rejects bad options before creating anything", async () => {
    const output = capture();
    await expect(runDemo({ rows: 0, output })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "rows" });
    await expect(runDemo({ batchSize: 0, output })).rejects.toMatchObject({ code: "INVALID_CONFIG", field: "batchSize" });
    expect(output.text()).toBe("");
  });
});

describe("the backfill's handler and verification", () => {
  let client: PGlite;
  const table = accountsTable("accounts_unit");
  const db = () => drizzle({ client });
  const signal = new AbortController().signal;
  const context = (beginId: bigint, endId: bigint) => ({ backfill: "t", runId: "r", cycle: 0, beginId, endId, attempt: 1, maxAttempts: 1, signal });

  beforeAll(async () => {
    client = await PGlite.create();
    await createAccountsTable(db(), table, 1_000);
  }, 60_000);
  afterAll(async () => {
    await client.close();
  });

  it("normalises addresses in JavaScript", () => {
    expect(normaliseEmail("  Ada.7+news3@Example.COM ")).toBe("ada.7@example.com");
    expect(normaliseEmail("Grace.2@Mail.COM")).toBe("grace.2@mail.com");
    expect(normaliseEmail("odd+@x.org")).toBe("odd@x.org");
    expect(normaliseEmail("no-at-sign+tag")).toBe("no-at-sign+tag");
  });

  it("writes a range once: a repeated delivery changes nothing", async () => {
    const work: BatchWork[] = [];
    const handle = createNormaliseEmailsHandler({ db: db(), table, onBatch: (w) => work.push(w) });
    await handle(context(101n, 300n));
    await handle(context(101n, 300n));
    // A range past the last id reads nothing and writes nothing.
    await handle(context(5_000n, 6_000n));
    expect(work).toEqual([
      { rows: 200, written: 200 },
      { rows: 200, written: 0 },
      { rows: 0, written: 0 },
    ]);
    const [row] = await db().select().from(table).where(eq(table.id, 102n));
    expect(row).toEqual({
      id: 102n,
      email: "  Ada.102+news4@Example.COM ",
      emailNormalized: "ada.102@example.com",
      emailMd5: createHash("md5").update("ada.102@example.com").digest("hex"),
    });
  });

  it("verification counts rows not done and rows done wrong", async () => {
    const handle = createNormaliseEmailsHandler({ db: db(), table });
    await handle(context(1n, 1_000n));
    expect(await verifyAccounts(db(), table)).toEqual({ rows: 1_000, wrongRows: 0 });
    await db().execute(sql`update ${table} set email_md5 = 'x' where id = 7`);
    await db().execute(sql`update ${table} set email_normalized = null where id = 8`);
    expect(await verifyAccounts(db(), table)).toEqual({ rows: 1_000, wrongRows: 2 });
    // The handler repairs exactly those rows.
    const work: BatchWork[] = [];
    await createNormaliseEmailsHandler({ db: db(), table, onBatch: (w) => work.push(w) })(context(1n, 1_000n));
    expect(work).toEqual([{ rows: 1_000, written: 2 }]);
    expect(await verifyAccounts(db(), table)).toEqual({ rows: 1_000, wrongRows: 0 });
  });
});

describe("flags", () => {
  const parse = (...argv: string[]): ExampleSettings => {
    const parsed = parseFlags(argv, DEMO_FLAGS);
    if (parsed.help) throw new Error("unexpected --help");
    return parsed.settings;
  };
  const rejects = (argv: string[], flag: string, ...fragments: string[]) => {
    let error: unknown;
    try {
      parseFlags(argv, DEMO_FLAGS);
    } catch (e) {
      error = e;
    }
    expect(isSuperSpreaderError(error), `${argv.join(" ")} should be rejected`).toBe(true);
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", field: flag });
    for (const fragment of [flag, ...fragments]) expect((error as Error).message).toContain(fragment);
  };

  it("defaults to a million rows", () => {
    expect(parse()).toEqual({
      rows: 1_000_000,
      batchSize: 2_000,
      perSecondOnPeak: 20,
      perSecondOffPeak: 20,
      peak: null,
      duration: 2,
      concurrency: 2,
      workers: 1,
      store: "memory",
      dataDir: null,
      resume: false,
    });
  });

  it("reads every flag", () => {
    expect(
      parse("--rows", "1_000", "--batch-size=50", "--per-second", "7.5", "--per-second-on-peak", "0.5", "--duration", "0.5", "--concurrency", "4",
        "--peak", "America/Los_Angeles Mon-Fri 5-17"),
    ).toEqual({
      rows: 1_000,
      batchSize: 50,
      perSecondOnPeak: 0.5,
      perSecondOffPeak: 7.5,
      peak: { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] },
      duration: 0.5,
      concurrency: 4,
      workers: 1,
      store: "memory",
      dataDir: null,
      resume: false,
    });
    expect(parse("--peak", "Europe/Paris Mon-Fri 9-12; Sat,Sun 22-6").peak).toEqual({
      timezone: "Europe/Paris",
      windows: [
        { days: "Mon-Fri", hours: [9, 12] },
        { days: "Sat,Sun", hours: [22, 6] },
      ],
    });
  });

  it("names the flag and the value it rejects", () => {
    rejects(["--rows", "many"], "--rows", '"many"');
    rejects(["--rows", "0"], "--rows", '"0"');
    rejects(["--batch-size", "1.5"], "--batch-size", '"1.5"');
    rejects(["--per-second", "fast"], "--per-second", '"fast"');
    rejects(["--per-second", "0"], "--per-second", "never runs");
    rejects(["--per-second-off-peak", "-1"], "--per-second-off-peak", 'needs a value, got "-1"');
    rejects(["--per-second-off-peak=-1"], "--per-second-off-peak", '"-1"');
    rejects(["--duration", "0"], "--duration", "duration", "0");
    rejects(["--concurrency", "0"], "--concurrency", '"0"');
    // 100,000 batches/s for 2 s plans too many batches per cycle.
    rejects(["--per-second", "100000"], "--per-second", "200000 batches per cycle");
    rejects(["--per-second-on-peak", "100000"], "--per-second-on-peak", "200000 batches per cycle");
    rejects(["--peak", "Mars/Olympus Mon-Fri 5-17"], "--peak", '"Mars/Olympus"');
    rejects(["--peak", "America/Los_Angeles Mon-Fri"], "--peak", '"America/Los_Angeles Mon-Fri"');
    rejects(["--peak", "America/Los_Angeles Mon-Fri 5-25"], "--peak", "25");
    rejects(["--peak", "America/Los_Angeles Someday 5-17"], "--peak", '"Someday"');
    rejects(["--workers", "3"], "--workers", "real example");
    rejects(["--rowz", "3"], "--rowz", "not a flag");
    rejects(["--rows"], "--rows", "needs a value");
    rejects(["1000"], '"1000"', "not a flag");
  });

  it("prints help with examples", () => {
    const parsed = parseFlags(["--help"], DEMO_FLAGS);
    expect(parsed.help).toBe(true);
    const text = parsed.help ? parsed.text : "";
    for (const flag of ["--rows", "--batch-size", "--per-second", "--per-second-on-peak", "--per-second-off-peak", "--peak", "--duration", "--concurrency"]) {
      expect(text).toContain(`  ${flag} `);
    }
    expect(text).not.toContain("--workers");
    expect(text).toContain("Examples:");
    expect(text).toContain('pnpm --filter @superspreader/example-demo start --per-second-on-peak 5 --per-second-off-peak 40 --peak "America/Los_Angeles Mon-Fri 5-17"');
  });

  it("the command exits 2 on a bad flag and 0 on --help", () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", "--conditions", "@superspreader/source", "src/main.ts", ...args], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        encoding: "utf8",
      });
    const bad = run("--batch-size", "lots");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--batch-size must be a whole number from 1 to 1,000,000, got "lots"');
    expect(bad.stdout).toBe("");
    const help = run("--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("Usage: pnpm --filter @superspreader/example-demo start [flags]");
  }, 60_000);
});
