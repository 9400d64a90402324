/** Help texts: one overview and one page per command, each with examples. */

export interface CommandHelp {
  readonly usage: string;
  readonly summary: string;
  readonly details?: string;
  readonly examples: readonly string[];
}

export const COMMAND_HELP: Readonly<Record<string, CommandHelp>> = {
  list: {
    usage: "superspreader list [--json]",
    summary: "every stored backfill with its state, progress and ETA",
    examples: ["superspreader list", "superspreader list --json | jq -r '.backfills[] | select(.status == \"failed\") | .name'"],
  },
  status: {
    usage: "superspreader status NAME [--json]",
    summary: "progress bar (ids, and rows with --config sources), finished / in-flight / deferred / failed ranges, configured vs observed rate, the current window, the ETA and the last errors",
    examples: ["superspreader status reencrypt-messages", "superspreader status reencrypt-messages --json | jq .eta.finishAt"],
  },
  pause: {
    usage: "superspreader pause NAME [--reason TEXT] [--json]",
    summary: "stop planning cycles; batches already queued are deferred when they arrive and run again after resume",
    examples: ['superspreader pause reencrypt-messages --reason "database maintenance"'],
  },
  resume: {
    usage: "superspreader resume NAME --config MODULE [--reason TEXT] [--json]",
    summary: "resume a paused backfill, or revive the tick chain of a running one whose tick is overdue",
    details: "Resuming enqueues a tick, so it needs the app's queue: pass --config.",
    examples: ["superspreader resume reencrypt-messages --config ./superspreader.config.js"],
  },
  cancel: {
    usage: "superspreader cancel NAME --yes [--reason TEXT] [--json]",
    summary: "end the run for good: queued jobs of it do nothing; a new run needs `start --restart`",
    examples: ['superspreader cancel reencrypt-messages --yes --reason "wrong table"'],
  },
  "retry-failed": {
    usage: "superspreader retry-failed NAME [--config MODULE] [--reason TEXT] [--json]",
    summary: "queue the failed ranges again: the next cycles re-enqueue them first",
    details: "A run that already ended as failed must be revived with a tick, which needs --config.",
    examples: ["superspreader retry-failed reencrypt-messages", "superspreader retry-failed reencrypt-messages --config ./superspreader.config.js"],
  },
  start: {
    usage: "superspreader start NAME --config MODULE [--restart] [--reason TEXT] [--json]",
    summary: "start a run of a backfill defined in the --config module (idempotent); --restart starts a new run of a finished one",
    examples: ["superspreader start reencrypt-messages --config ./superspreader.config.js"],
  },
  "config get": {
    usage: "superspreader config get NAME [--limit N] [--json]",
    summary: "the stored config and its change history (the last N changes, default 20)",
    examples: ["superspreader config get reencrypt-messages", "superspreader config get reencrypt-messages --json | jq .config"],
  },
  "config set": {
    usage: "superspreader config set NAME key=value... [--reason TEXT] [--dry-run] [--json]",
    summary: "change config fields; the whole config is validated before anything is written, and the change is recorded with its time, old and new values, actor and reason",
    details:
      "Values are JSON (numbers, true/false, null, objects); anything else is taken as a string. Fields: batchSize, duration, perSecondOnPeak, perSecondOffPeak, peak, maxAttempts, priority, spreadWithinSecond. --dry-run validates and shows the change and the new ETA without writing. Changes apply from the next cycle.",
    examples: [
      'superspreader config set reencrypt-messages perSecondOffPeak=10 --reason "quiet weekend"',
      "superspreader config set reencrypt-messages 'peak={\"timezone\":\"America/Los_Angeles\",\"days\":\"Mon-Fri\",\"hours\":[6,18]}' --dry-run",
      "superspreader config set reencrypt-messages peak=null",
    ],
  },
  plan: {
    usage: "superspreader plan NAME [--limit N] [--json]",
    summary: "the batches the next cycle would enqueue (deferred ranges first, then fresh ones) and when each runs; enqueues nothing",
    examples: ["superspreader plan reencrypt-messages", "superspreader plan reencrypt-messages --json | jq '.batches | length'"],
  },
  estimate: {
    usage: "superspreader estimate NAME [--json]",
    summary: "when the last batch runs: walked through the peak calendar (on/off-peak rates, zero-rate windows, DST) cycle by cycle, and at the pace observed over the last 15 minutes",
    examples: ["superspreader estimate reencrypt-messages"],
  },
  audit: {
    usage: "superspreader audit NAME [--limit N] [--json]",
    summary: "gaps in the ledger and why each is open: failed, deferred, in flight, or not planned yet",
    examples: ["superspreader audit reencrypt-messages", "superspreader audit reencrypt-messages --json | jq .complete"],
  },
};

export const OVERVIEW = `superspreader: operate the throttled backfills of a superspreader app, from their state in Redis.

Usage: superspreader <command> [NAME] [options]

Commands:
  list                           every backfill with state, progress and ETA
  status NAME                    progress, ranges, configured vs observed rate, window, ETA, last errors
  pause NAME                     stop planning cycles (queued batches are deferred, not lost)
  resume NAME                    resume a paused backfill (needs --config)
  cancel NAME --yes              end the run for good
  retry-failed NAME              queue the failed ranges again (a failed run needs --config)
  start NAME                     start a run of a backfill defined in --config
  config get NAME                the config and its change history
  config set NAME key=value...   change the config: validated first, recorded with time, old/new values, --reason
  plan NAME                      the next cycle's batches, without enqueuing anything
  estimate NAME                  the ETA through the peak calendar, and at the observed pace
  audit NAME                     gaps in the ledger and why each is open

Connection:
  --redis-url URL      the Redis holding the state (default: $REDIS_URL)
  --prefix PREFIX      the prefix given to createRedisStateStore (default: $SUPERSPREADER_PREFIX, else "superspreader")
  --config MODULE      a .js/.mjs (or .ts, with tsx installed) module exporting your app's \`spreader\`, created
                       with its queue and store and with its backfills defined (optionally \`store\` and \`sources\`).
                       Needed by start, resume and retry-failed of a failed run; replaces --redis-url/--prefix.
  --timeout SECONDS    give up when Redis does not answer in time (default: 30)

Changes and output:
  --reason TEXT        why: recorded in the backfill's audit trail with the change
  --actor NAME         who: recorded with the change (default: cli:$USER)
  --json               machine-readable output on stdout; errors as JSON on stderr
  -h, --help           this overview, or a command's page: superspreader config set --help

Exit codes:
  0 ok   1 operation failed   2 usage error or invalid value (nothing changed)   3 unknown backfill   4 Redis unreachable

Examples:
  export REDIS_URL=redis://localhost:6379
  superspreader list
  superspreader status reencrypt-messages
  superspreader config set reencrypt-messages perSecondOffPeak=10 --reason "quiet weekend"
  superspreader pause reencrypt-messages --reason "database maintenance"
  superspreader resume reencrypt-messages --config ./superspreader.config.js
  superspreader estimate reencrypt-messages --json | jq .finishAt
`;

export function commandHelp(name: string): string {
  const help = COMMAND_HELP[name] as CommandHelp;
  return [
    `Usage: ${help.usage}`,
    "",
    `${help.summary.charAt(0).toUpperCase()}${help.summary.slice(1)}.`,
    ...(help.details ? ["", help.details] : []),
    "",
    "Connection: --redis-url URL (or $REDIS_URL), --prefix PREFIX, --config MODULE, --timeout SECONDS. See `superspreader --help`.",
    "",
    "Examples:",
    ...help.examples.map((e) => `  ${e}`),
    "",
  ].join("\n");
}
