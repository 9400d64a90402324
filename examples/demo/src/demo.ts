import { PGlite } from "@electric-sql/pglite";
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { SuperSpreaderError, createMemoryJobQueue, createMemoryStateStore, createMemoryWorker, createSuperSpreader, describeValue, type StateStore } from "@superspreader/core";
import { createDrizzleStateStore, migrateStateStore } from "@superspreader/store-drizzle";
import { drizzle } from "drizzle-orm/pglite";
import { BACKFILL_NAME, accountsTable, createAccountsTable, defineNormaliseEmails, verifyAccounts } from "./accounts.js";
import { configOf, resolveSettings } from "./settings.js";
import type { ExampleOptions, FlagSpec } from "./settings.js";
import { formatCount, formatSummary, progressModeFor } from "./report.js";
import type { BackfillSummary } from "./report.js";
import { reportFailures, startAndVerify, timed, trackWork } from "./run.js";

/**
 * The demo's defaults: 500 batches of 2,000 ids paced at 20 batches/s (40,000 rows/s), a pace PGlite
 * keeps on two shared cores (it does 46,000–57,000 rows/s flat out: bench/results/demo.json), so
 * 25 s of backfill; on a busy machine the handler itself can be the limit. PGlite runs queries one
 * at a time in this process, so more concurrency buys little;
 * 2 lets one batch's JavaScript overlap another's query.
 */
export const DEMO_DEFAULTS = { rows: 1_000_000, batchSize: 2_000, perSecond: 20, duration: 2, concurrency: 2, workers: 1 } as const;

/** The demo's command line. */
export const DEMO_FLAGS: FlagSpec = {
  program: "pnpm --filter @superspreader/example-demo start",
  summary:
    "superspreader demo: creates an embedded PGlite table of accounts, backfills every row (normalised e-mail and its\n" +
    "MD5, computed in JavaScript) as paced batch jobs on the in-memory queue, shows progress, then verifies every row.",
  defaults: DEMO_DEFAULTS,
  workers: false,
  persistence: true,
  examples: [
    ["", "1,000,000 rows, 2,000 ids per batch, 20 batches/s: about half a minute in all"],
    ["--rows 100000 --batch-size 500 --per-second 20", "a smaller, slower run: 200 batches at 20/s, 10 s"],
    [
      '--per-second-on-peak 5 --per-second-off-peak 40 --peak "America/Los_Angeles Mon-Fri 5-17"',
      "gentle during Los Angeles office hours, fast otherwise (the rate of a cycle is picked when it starts)",
    ],
    ["--duration 0.5 --concurrency 4", "shorter cycles (a tick every 0.5 s) and four batches in flight"],
    ["--store pglite", "the state in the demo's PGlite database on disk: Ctrl-C pauses the run instead of cancelling it"],
    ["--store pglite --resume", "continue the run a Ctrl-C left in .superspreader-demo, where it stopped"],
  ],
  notes: ["From the repository root, `npm run demo -- <flags>` runs the same thing (installing first)."],
};

/** Options of {@link runDemo}: the settings (defaults in {@link DEMO_DEFAULTS}), where output goes, and a stop signal. */
export interface DemoOptions extends ExampleOptions {
  /**
   * Where the backfill's state lives: `"memory"` (gone when the demo ends) or `"pglite"`, the demo's own
   * PGlite database on disk (`@superspreader/store-drizzle`), so an interrupted demo is paused, not
   * cancelled, and `resume: true` continues it.
   * @default "memory"
   */
  store?: "memory" | "pglite";
  /** The PGlite database directory with store "pglite". @default ".superspreader-demo" in the working directory */
  dataDir?: string | null;
  /**
   * Continue the run an interrupted demo left in `dataDir` (store "pglite"): the table is kept, the
   * run's stored config applies (`rows`, `batchSize` and the rates given here are not used), ranges lost
   * with the previous process's in-memory queue are found by `repair()` and queued again.
   * @default false
   */
  resume?: boolean;
}

/** The data directory the demo uses with store "pglite" when none is given. */
export const DEMO_DATA_DIR = ".superspreader-demo";

/**
 * The whole demo, in process: creates a PGlite table of `rows` accounts, defines the
 * `normalise-emails` backfill, runs it on the in-memory queue and store with the real
 * clock while showing progress, then verifies every row with SQL and the ledger with
 * `audit()`, and prints a summary. Resolves with the summary; `verified` says whether it passed.
 * With `store: "pglite"` the table and the state live on disk, and `resume: true` continues.
 *
 * @example
 * ```ts
 * const summary = await runDemo({ rows: 20_000, batchSize: 500, perSecond: 50 });
 * if (!summary.verified) process.exitCode = 1;
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<BackfillSummary> {
  const persistent = options.store === "pglite";
  if (!persistent && options.store !== undefined && options.store !== "memory") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `store must be "memory" or "pglite", got ${describeValue(options.store)}`, { field: "store" });
  }
  if (!persistent && options.resume === true) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", 'resume needs store "pglite": the memory store keeps nothing to resume', { field: "resume" });
  }
  const resuming = persistent && options.resume === true;
  const dataDir = resolve(options.dataDir ?? DEMO_DATA_DIR);
  if (resuming && !existsSync(dataDir)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `resume: no demo database in ${dataDir}; run the demo with --store pglite first`, { field: "dataDir" });
  }
  let settings = resolveSettings({ ...options, workers: 1 }, DEMO_DEFAULTS);
  const output = options.output ?? process.stdout;
  const mode = options.progress ?? progressModeFor(output);
  const began = Date.now();
  const phases: Record<string, number> = {};

  if (resuming) output.write(`Resuming the demo kept in ${dataDir}…\n`);
  else {
    if (persistent) rmSync(dataDir, { recursive: true, force: true });
    output.write(`Creating ${formatCount(settings.rows)} accounts in an embedded PGlite database${persistent ? ` in ${dataDir}` : ""}…\n`);
  }
  const client = await timed(phases, "database", () => (persistent ? PGlite.create(dataDir) : PGlite.create()));
  try {
    const db = drizzle({ client });
    const table = accountsTable();
    if (!resuming) await timed(phases, "seed", () => createAccountsTable(db, table, settings.rows));
    let store: StateStore = createMemoryStateStore();
    if (persistent) {
      // Explicit and idempotent: creates the state tables on a first run, changes nothing on a resume.
      await migrateStateStore(db);
      store = createDrizzleStateStore({ db });
    }

    const queue = createMemoryJobQueue();
    const spreader = createSuperSpreader({ queue, store });
    const { onBatch, stats } = trackWork(spreader);
    let config = configOf(settings);
    if (resuming) {
      // The run's own config and table apply; the rows are whatever the first run created.
      const stored = await spreader.status(BACKFILL_NAME).catch(() => null);
      if (stored === null) throw new SuperSpreaderError("INVALID_ARGUMENT", `resume: ${dataDir} holds no demo backfill; run the demo with --store pglite first`, { field: "dataDir" });
      const { rows } = await verifyAccounts(db, table);
      settings = { ...settings, rows, batchSize: stored.config.batchSize, perSecondOnPeak: stored.config.perSecondOnPeak, perSecondOffPeak: stored.config.perSecondOffPeak, duration: stored.config.duration };
      config = configOf(settings);
    }
    defineNormaliseEmails(spreader, { db, table, config, onBatch });
    reportFailures(spreader, output);
    const worker = createMemoryWorker({ queue, spreader, concurrency: settings.concurrency });
    worker.start();
    let outcome;
    try {
      outcome = await startAndVerify({
        spreader, db, table, settings, output, mode, label: "demo", phases, logEveryMs: options.logEveryMs, signal: options.signal,
        ...(persistent ? { onInterrupt: "pause" as const } : {}),
        ...(resuming ? { resume: true } : {}),
      });
    } finally {
      await worker.stop();
    }
    const summary: BackfillSummary = { ...outcome, rowsWritten: stats.rowsWritten, repeatedBatches: stats.repeatedBatches, wallMs: Date.now() - began };
    output.write(formatSummary(summary));
    if (persistent && summary.status === "paused") output.write(`The run is paused and kept in ${dataDir}: continue it with --store pglite --resume\n`);
    return summary;
  } finally {
    await client.close();
  }
}
