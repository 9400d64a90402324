export {
  BACKFILL_NAME,
  DEFAULT_TABLE_NAME,
  accountsTable,
  createAccountsTable,
  createNormaliseEmailsHandler,
  defineNormaliseEmails,
  normaliseEmail,
  verifyAccounts,
} from "./accounts.js";
export type {
  AccountsCheck,
  AccountsTable,
  AnyPgDatabase,
  BatchWork,
  DefineNormaliseEmailsOptions,
  NormaliseEmailsHandlerOptions,
} from "./accounts.js";
export { configOf, helpText, parseFlags, parsePeakFlag, resolveSettings } from "./settings.js";
export type { ExampleDefaults, ExampleOptions, ExampleSettings, FlagSpec, ParsedFlags } from "./settings.js";
export { formatCount, formatMs, formatSummary, progressModeFor, watchBackfill } from "./report.js";
export type { BackfillSummary, Output, ProgressMode, WatchOptions } from "./report.js";
export { runCli } from "./cli.js";
export type { RunCliOptions } from "./cli.js";
export { DEMO_DEFAULTS, DEMO_FLAGS, runDemo } from "./demo.js";
export type { DemoOptions } from "./demo.js";
export { describePlan, reportFailures, startAndVerify, timed, trackWork } from "./run.js";
export type { RunOutcome, StartAndVerifyOptions, WorkStats } from "./run.js";
