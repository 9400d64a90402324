import { isSuperSpreaderError } from "@superspreader/core";
import { parseFlags } from "./settings.js";
import type { ExampleSettings, FlagSpec } from "./settings.js";
import type { BackfillSummary } from "./report.js";

/** Options of {@link runCli}. */
export interface RunCliOptions {
  /** The program's flags. */
  spec: FlagSpec;
  /** Runs the example with the parsed settings; stops early when `signal` aborts (Ctrl-C). */
  run: (settings: ExampleSettings, signal: AbortSignal) => Promise<BackfillSummary>;
  /**
   * The command-line arguments.
   * @default process.argv.slice(2)
   */
  argv?: readonly string[];
}

/**
 * The examples' `main`: parses flags (a bad one prints what is wrong and exits 2), prints
 * `--help`, runs the example, and sets the exit code: 0 when every row was verified,
 * 1 when not, 130 after Ctrl-C or SIGTERM (which stop the run cleanly).
 *
 * @example
 * ```ts
 * await runCli({ spec: DEMO_FLAGS, run: (settings, signal) => runDemo({ ...settings, signal }) });
 * ```
 */
export async function runCli(options: RunCliOptions): Promise<void> {
  let parsed;
  try {
    parsed = parseFlags(options.argv ?? process.argv.slice(2), options.spec);
  } catch (error) {
    if (!isSuperSpreaderError(error)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  if (parsed.help) {
    process.stdout.write(`${parsed.text}\n`);
    return;
  }
  const controller = new AbortController();
  // No "press again to force": pnpm and tsx relay the terminal's SIGINT, so one Ctrl-C can
  // arrive two or three times, and quitting at once would leave worker processes and servers behind.
  const onSignal = () => {
    process.stderr.write(controller.signal.aborted ? "Still stopping…\n" : "\nStopping: cancelling the backfill, then verifying what was done…\n");
    controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const summary = await options.run(parsed.settings, controller.signal);
    process.exitCode = summary.interrupted ? 130 : summary.verified ? 0 : 1;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
