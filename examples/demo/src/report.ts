import type { BackfillStatus, IdRange, SuperSpreader } from "@superspreader/core";
import { formatRange } from "@superspreader/core";

/** Where the examples write: a stream, or anything with `write` (tests capture it). */
export interface Output {
  write(text: string): unknown;
  /** True on a terminal: progress is drawn as a bar redrawn in place. */
  readonly isTTY?: boolean;
  /** Terminal width, so the bar never wraps (a wrapped line cannot be redrawn with `\r`). */
  readonly columns?: number;
}

/** How progress is shown: a live bar (terminals), a line every few seconds (logs), or nothing. */
export type ProgressMode = "bar" | "lines" | "off";

/** The mode that suits an output: a bar on a terminal, lines otherwise. */
export function progressModeFor(output: Output): ProgressMode {
  return output.isTTY ? "bar" : "lines";
}

/** `1234567` → `"1,234,567"`. */
export function formatCount(n: number | bigint): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: 0 });
}

/** `17234` → `"17.2 s"`, `65000` → `"1 min 05 s"`. */
export function formatMs(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

const TERMINAL: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

/** Options of {@link watchBackfill}. */
export interface WatchOptions {
  /** A runtime where the backfill is defined or stored (it only reads `status`). */
  spreader: SuperSpreader;
  /** The backfill's name. */
  name: string;
  /** Where progress goes. */
  output: Output;
  /** How progress is shown. */
  mode: ProgressMode;
  /** Prefix of progress lines ("demo"). */
  label: string;
  /**
   * How often the state is read (ms).
   * @default 200
   */
  pollMs?: number;
  /**
   * How often a line is written in `"lines"` mode (ms).
   * @default 2000
   */
  logEveryMs?: number;
  /**
   * Stops watching early; the last status read is returned.
   * @default undefined
   */
  signal?: AbortSignal;
}

/** Observed speed over the last few seconds, from (time, ids done) samples. */
class RateMeter {
  private readonly samples: Array<{ at: number; ids: number }> = [];

  constructor(private readonly windowMs: number) {}

  add(at: number, ids: number): void {
    this.samples.push({ at, ids });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= this.windowMs) this.samples.shift();
  }

  /** Ids per second, or null before there is a second of history. */
  perSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 1_000) return null;
    return ((last.ids - first.ids) * 1000) / (last.at - first.at);
  }
}

function progressLine(status: BackfillStatus, rate: number | null, width: number | null): string {
  const total = Number(status.progress.idsTotal);
  const done = Number(status.progress.idsDone);
  const pct = `${(status.progress.fraction * 100).toFixed(1).padStart(5)}%`;
  const limit = status.rate.perSecond * status.config.batchSize;
  const eta = done >= total ? "done" : rate === null ? "ETA –" : rate <= 0 ? "ETA ∞" : `ETA ${formatMs(((total - done) / rate) * 1000)}`;
  const speed = rate === null ? "– rows/s" : `${formatCount(rate)} rows/s`;
  const pace = `${status.rate.onPeak ? "on-peak" : "off-peak"} ${status.rate.perSecond} batches/s = ${formatCount(limit)} rows/s`;
  const text = `${formatCount(done)}/${formatCount(total)} rows  ${speed}  ${eta}  ${pace}`;
  if (width === null) return `${pct}  ${text}`;
  const barWidth = 24;
  const filled = Math.round(status.progress.fraction * barWidth);
  const line = `[${"█".repeat(filled)}${"░".repeat(barWidth - filled)}] ${pct}  ${text}`;
  return line.length > width ? line.slice(0, Math.max(0, width - 1)) : line;
}

/**
 * Polls a backfill's status until it completes, fails or is cancelled, showing progress
 * with the observed rate (rows/s over the last 5 s) and an ETA from it. Returns the last status.
 * Reads only the store, so it works in any process: the one running the workers or another.
 *
 * @example
 * ```ts
 * await spreader.start("normalise-emails");
 * const final = await watchBackfill({ spreader, name: "normalise-emails", output: process.stdout, mode: "bar", label: "demo" });
 * ```
 */
export async function watchBackfill(options: WatchOptions): Promise<BackfillStatus> {
  const { spreader, name, output, mode, label, signal } = options;
  const pollMs = options.pollMs ?? 200;
  const logEveryMs = options.logEveryMs ?? 2_000;
  const meter = new RateMeter(5_000);
  let lastLog = Date.now();
  let lastLogged: bigint | null = null;
  let allDone = false;
  for (;;) {
    const status = await spreader.status(name);
    const now = Date.now();
    // Past the last batch the run waits up to a cycle for the tick that completes it; that wait is not a slowdown.
    if (!allDone) meter.add(now, Number(status.progress.idsDone));
    allDone = status.progress.idsDone >= status.progress.idsTotal;
    const finished = TERMINAL.has(status.status);
    if (mode === "bar") {
      // 0 or missing when the terminal does not say (e.g. under `script`).
      const columns = output.columns !== undefined && output.columns >= 40 ? output.columns : 100;
      output.write(`\r\x1b[2K${progressLine(status, meter.perSecond(), columns)}`);
      if (finished || signal?.aborted) output.write("\n");
    } else if (mode === "lines" && (finished || now - lastLog >= logEveryMs) && status.progress.idsDone !== lastLogged) {
      // Only when something moved: the last batch and the tick that declares the run complete
      // can be a cycle apart, and logs need not repeat "100%" meanwhile.
      output.write(`[${label}] ${progressLine(status, meter.perSecond(), null)}\n`);
      lastLog = now;
      lastLogged = status.progress.idsDone;
    }
    if (finished || signal?.aborted) return status;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, pollMs);
      signal?.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}

/** What an example run did, as its summary reports it. */
export interface BackfillSummary {
  /** True when the run completed, the ledger has no gap and SQL found no wrong row. */
  readonly verified: boolean;
  /** The backfill's final status ("completed" when all went well). */
  readonly status: string;
  /** True when the run was stopped by a signal before it finished. */
  readonly interrupted: boolean;
  /** Rows in the table. */
  readonly rows: number;
  /** Rows whose normalised address or checksum is missing or wrong (0 when verified). */
  readonly wrongRows: number;
  /** Rows the handler's UPDATEs changed, or null when not counted; above `rows` never, below it after a resumed run. */
  readonly rowsWritten: number | null;
  /** Batches recorded done (each range once). */
  readonly batches: number;
  /** Ids per batch. */
  readonly batchSize: number;
  /** Ranges that failed for good. */
  readonly batchesFailed: number;
  /** Deliveries of a range that had already been done (at-least-once delivery at work), or null when not counted. */
  readonly repeatedBatches: number | null;
  /** Ids of the table never recorded done by the ledger. */
  readonly gaps: readonly IdRange[];
  /** Whole run (ms), setup to summary. */
  readonly wallMs: number;
  /** From `start()` to the last batch (ms). */
  readonly backfillMs: number;
  /** Time spent per phase (ms), in order. */
  readonly phases: Readonly<Record<string, number>>;
  /** rows / backfill seconds. */
  readonly rowsPerSecond: number;
  /**
   * The configured pace in rows per second (rate × batch size) when the run started. A short
   * run can beat it: each second's batches are due at the start of that second.
   */
  readonly configuredRowsPerSecond: number;
}

/**
 * The summary block printed at the end of a run.
 *
 * @example
 * ```ts
 * process.stdout.write(formatSummary(summary));
 * ```
 */
export function formatSummary(s: BackfillSummary): string {
  const head = s.verified
    ? `Verified: all ${formatCount(s.rows)} rows are normalised and checksummed, and the ledger has no gap.`
    : s.interrupted
      ? `Interrupted (${s.status}): ${formatCount(s.rows - s.wrongRows)} of ${formatCount(s.rows)} rows done so far.`
      : `NOT VERIFIED (${s.status}): ${formatCount(s.wrongRows)} wrong rows, ${s.gaps.length} gaps, ${s.batchesFailed} failed batches.`;
  const written = s.rowsWritten === null ? "" : `, ${formatCount(s.rowsWritten)} written by the handler`;
  const repeated = s.repeatedBatches === null ? "" : `, ${formatCount(s.repeatedBatches)} delivered twice`;
  const phases = Object.entries(s.phases)
    .map(([phase, ms]) => `${phase} ${formatMs(ms)}`)
    .join(", ");
  const shownGaps = s.gaps.slice(0, 5).map((g) => formatRange(g));
  const gaps = s.gaps.length === 0 ? "none" : `${shownGaps.join(", ")}${s.gaps.length > 5 ? ` and ${s.gaps.length - 5} more` : ""}`;
  return [
    "",
    head,
    `  rows        ${formatCount(s.rows)} (${formatCount(s.wrongRows)} not done or wrong${written})`,
    `  batches     ${formatCount(s.batches)} of ${formatCount(s.batchSize)} ids (${formatCount(s.batchesFailed)} failed${repeated})`,
    `  wall time   ${formatMs(s.wallMs)} (${phases})`,
    `  rows/s      ${formatCount(s.rowsPerSecond)} over the backfill (set rate ${formatCount(s.configuredRowsPerSecond)})`,
    `  gaps        ${gaps}`,
    "",
  ].join("\n");
}
