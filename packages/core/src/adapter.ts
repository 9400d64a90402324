/**
 * `@superspreader/core/adapter`: what authors of queues, stores, sources, worker runners and
 * operator tools (the CLI, the dashboard) need, kept out of the user-facing entry. Every adapter of this repository checks its
 * options and port arguments with these, so a bad option reads the same everywhere: an
 * `INVALID_ARGUMENT` error naming the field and the value.
 *
 * @module
 */

export {
  assertValidJob,
  checkEntry,
  checkLimit,
  checkName,
  checkRange,
  checkRunId,
  checkStartRate,
  checkTime,
  checkTiming,
  JOB_ID_PATTERN,
  NAME_PATTERN,
} from "./validate-args.js";
export { describeValue } from "./errors.js";
export { didYouMean } from "./suggest.js";

export { invalidOption, wholeNumberOption, booleanOption, functionOption, urlOption, shutdownOption } from "./options.js";
export { checkExpectedVersion, toJson, checkConfigChange, checkFailure, checkEntries, checkOutput, checkOutputPage } from "./validate-store.js";
export { startWatchdog } from "./watchdog-loop.js";
export type { WatchdogOptions, WatchdogHandle } from "./watchdog-loop.js";
export { createWorkerReporter } from "./worker-log.js";
export type { WorkerLogger, WorkerLogOption, WorkerReporter, WorkerReporterOptions } from "./worker-log.js";
export { describeError } from "./batch.js";
export { checkLookupIds, checkLookupStates, settlesWithin, cappedBackoffMs, isConnectionError } from "./runner-kit.js";
export { checkBudgetClaim, claimShare, fairShares } from "./budget.js";
