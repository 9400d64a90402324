import { PGlite } from "@electric-sql/pglite";
import { createMemoryJobQueue, createMemoryStateStore, createMemoryWorker, createSuperSpreader } from "@superspreader/core";
import { drizzle } from "drizzle-orm/pglite";
import { accountsTable, createAccountsTable, defineNormaliseEmails } from "./accounts.js";
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
  examples: [
    ["", "1,000,000 rows, 2,000 ids per batch, 20 batches/s: about half a minute in all"],
    ["--rows 100000 --batch-size 500 --per-second 20", "a smaller, slower run: 200 batches at 20/s, 10 s"],
    [
      '--per-second-on-peak 5 --per-second-off-peak 40 --peak "America/Los_Angeles Mon-Fri 5-17"',
      "gentle during Los Angeles office hours, fast otherwise (the rate of a cycle is picked when it starts)",
    ],
    ["--duration 0.5 --concurrency 4", "shorter cycles (a tick every 0.5 s) and four batches in flight"],
  ],
  notes: ["From the repository root, `npm run demo -- <flags>` runs the same thing (installing first)."],
};

/** Options of {@link runDemo}: the settings (defaults in {@link DEMO_DEFAULTS}), where output goes, and a stop signal. */
export type DemoOptions = ExampleOptions;

/**
 * The whole demo, in process: creates a PGlite table of `rows` accounts, defines the
 * `normalise-emails` backfill, runs it on the in-memory queue and store with the real
 * clock while showing progress, then verifies every row with SQL and the ledger with
 * `audit()`, and prints a summary. Resolves with the summary; `verified` says whether it passed.
 *
 * @example
 * ```ts
 * const summary = await runDemo({ rows: 20_000, batchSize: 500, perSecond: 50 });
 * if (!summary.verified) process.exitCode = 1;
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<BackfillSummary> {
  const settings = resolveSettings({ ...options, workers: 1 }, DEMO_DEFAULTS);
  const output = options.output ?? process.stdout;
  const mode = options.progress ?? progressModeFor(output);
  const began = Date.now();
  const phases: Record<string, number> = {};

  output.write(`Creating ${formatCount(settings.rows)} accounts in an embedded PGlite database…\n`);
  const client = await timed(phases, "database", () => PGlite.create());
  try {
    const db = drizzle({ client });
    const table = accountsTable();
    await timed(phases, "seed", () => createAccountsTable(db, table, settings.rows));

    const queue = createMemoryJobQueue();
    const spreader = createSuperSpreader({ queue, store: createMemoryStateStore() });
    const { onBatch, stats } = trackWork(spreader);
    defineNormaliseEmails(spreader, { db, table, config: configOf(settings), onBatch });
    reportFailures(spreader, output);
    const worker = createMemoryWorker({ queue, spreader, concurrency: settings.concurrency });
    worker.start();
    let outcome;
    try {
      outcome = await startAndVerify({
        spreader, db, table, settings, output, mode, label: "demo", phases, logEveryMs: options.logEveryMs, signal: options.signal,
      });
    } finally {
      await worker.stop();
    }
    const summary: BackfillSummary = { ...outcome, rowsWritten: stats.rowsWritten, repeatedBatches: stats.repeatedBatches, wallMs: Date.now() - began };
    output.write(formatSummary(summary));
    return summary;
  } finally {
    await client.close();
  }
}
