import type { App } from "./app.js";
import * as change from "./change.js";
import { dashboard } from "./dashboard.js";
import { migrate } from "./migrate.js";
import * as read from "./read.js";

/** Every option the CLI knows, with what its help says about it. */
export const OPTIONS = {
  "redis-url": { type: "string", value: "URL", description: "the Redis holding the state (default: $REDIS_URL)" },
  "database-url": {
    type: "string",
    value: "URL",
    description: "instead: the PostgreSQL (postgres://) or MySQL/MariaDB (mysql://) database of store-drizzle (default: $SUPERSPREADER_DATABASE_URL)",
  },
  prefix: { type: "string", value: "PREFIX", description: 'the Redis store\'s key prefix (default: $SUPERSPREADER_PREFIX, else "superspreader")' },
  "table-prefix": {
    type: "string",
    value: "PREFIX",
    description: 'with --database-url: store-drizzle\'s tablePrefix (default: $SUPERSPREADER_TABLE_PREFIX, else "superspreader_")',
  },
  config: { type: "string", value: "MODULE", description: "a module exporting your app's `spreader`: enqueue with the app's queue" },
  timeout: { type: "string", value: "SECONDS", description: "give up when the store (or, for repair, a worker) does not answer (default: 30)" },
  json: { type: "boolean", description: "machine-readable output on stdout; errors as JSON on stderr" },
  help: { type: "boolean", short: "h", description: "the overview, or a command's page" },
  reason: { type: "string", value: "TEXT", description: "why: recorded in the backfill's change history" },
  actor: { type: "string", value: "NAME", description: "who: recorded with the change (default: cli:$USER, or the OS user)" },
  limit: { type: "string", value: "N", description: "show at most N items (default: 20)" },
  yes: { type: "boolean", short: "y", description: "confirm ending the run for good" },
  new: { type: "boolean", description: "confirm a first run of a name the store has never seen" },
  restart: { type: "boolean", description: "start a new run of a completed, failed or cancelled backfill" },
  "reset-config": { type: "boolean", description: "with --restart: the new run takes the config in the code, not the live one" },
  "dry-run": { type: "boolean", description: "validate and show the change and the new ETA; write nothing" },
  "no-wait": { type: "boolean", description: "write the request and return, without waiting for a worker" },
  port: { type: "string", value: "N", description: "dashboard: the port to listen on (default: 7420; 0 picks a free one)" },
  host: { type: "string", value: "ADDR", description: "dashboard: the address to listen on (default: 127.0.0.1)" },
  "allow-control": { type: "boolean", description: "dashboard: let visitors pause, resume, retry, cancel, edit and pin (recorded as --actor)" },
  rate: { type: "string", value: "N", description: "pin: hold the rate at N batches/s, at most the configured rates; unpin: the rate" },
  "batch-size": { type: "string", value: "N", description: "pin: hold the batch size at N ids; unpin: the batch size" },
  run: { type: "string", value: "ID", description: "output: the run whose results to write (default: the current run)" },
  "finish-by": { type: "string", value: "ISO", description: "a deadline to plan for instead of the config's finishBy (2026-12-24T00:00:00Z)" },
} as const satisfies Record<string, { type: "string" | "boolean"; short?: string; value?: string; description: string }>;

export type OptionName = keyof typeof OPTIONS;

/** Parsed option values, typed by {@link OPTIONS}. */
export type OptionValues = { readonly [K in OptionName]?: (typeof OPTIONS)[K]["type"] extends "string" ? string : boolean };

/** Options every command takes. */
export const GLOBAL_OPTIONS: readonly OptionName[] = ["redis-url", "database-url", "prefix", "table-prefix", "config", "timeout", "json", "help"];
const CHANGE: readonly OptionName[] = ["reason", "actor"];

/** What a command works with. */
export interface Context {
  readonly app: App;
  /** The positional arguments after the command words. */
  readonly args: readonly string[];
  readonly options: OptionValues;
  /** Who changes are recorded for: `--actor`, else `cli:<user>`. */
  readonly actor: string;
  readonly reason: string | undefined;
  readonly limit: number;
  /** Colours the state word (a no-op without colours). */
  readonly paint: (state: string) => string;
  /** Epoch ms when the CLI gives up (`--timeout`): a command waiting for a worker stops waiting before it. */
  readonly deadline: number;
  /** Aborted when the operator interrupts the CLI (Ctrl-C, SIGTERM): a long-running command returns on it. */
  readonly signal: AbortSignal;
  /** Writes a line for people on stderr, while the command runs (nothing with `--json`). */
  readonly note: (line: string) => void;
}

/** A command's result: the JSON document for `--json` and the text for people. */
export interface Output {
  readonly json: unknown;
  readonly text: string;
  /** `text` is written exactly as it is (JSON lines, each ending in a newline; nothing for none), not as one line. */
  readonly raw?: boolean;
}

export type Command = (context: Context) => Promise<Output>;

/** A command's help page. */
export interface CommandHelp {
  readonly usage: string;
  /** One line for the overview. */
  readonly line: string;
  /** The page's first paragraph. */
  readonly summary: string;
  readonly details?: string;
  /** Shown under "Examples:"; each a complete command line. */
  readonly examples: readonly string[];
}

/** One command: what runs, the options it takes besides {@link GLOBAL_OPTIONS}, and its help. */
export interface CommandSpec {
  readonly run: Command;
  readonly options: readonly OptionName[];
  /**
   * Options of {@link options} that this command takes without a value although they take one
   * elsewhere (`unpin --rate`, `pin --rate N`): given, they read as `""`.
   * @default []
   */
  readonly switches?: readonly OptionName[];
  readonly help: CommandHelp;
  /**
   * Runs until `context.signal` aborts (a server): `--timeout` bounds opening the connection,
   * not the command, and what it prints comes when it returns.
   * @default false
   */
  readonly longRunning?: boolean;
}

/**
 * Every command, by the words that name it. A new command is one entry here, with its own
 * options added to {@link OPTIONS}; the parser, the option checks, `--help` and the overview
 * follow from it. A command that serves until interrupted (a `dashboard`) sets `longRunning`,
 * gets the spreader and store from `context.app`, prints its address with `context.note` and
 * returns once `context.signal` aborts.
 */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  list: {
    run: read.list,
    options: [],
    help: {
      usage: "superspreader list [--json]",
      line: "every backfill with state, progress and ETA",
      summary: "every stored backfill with its state, progress and ETA, and what needs a look: failed or lost ranges, a hold, a stalled chain, a start waiting for a worker, the watchdog's revivals",
      examples: ["superspreader list", "superspreader list --json | jq -r '.backfills[] | select(.status == \"failed\") | .name'"],
    },
  },
  status: {
    run: read.status,
    options: [],
    help: {
      usage: "superspreader status NAME [--json]",
      line: "progress, ranges, rates, the closed loop, ETA, holds, the watchdog, last errors",
      summary:
        "progress bar (ids, and rows with --config sources), finished / in-flight / deferred / failed / lost ranges, the rate in force under the configured one and observed, what the closed loop does and why (autotune, pins, a deadline and whether it can be met, a shared budget, its last decision), the current window, the ETA, a hold and its last error, what the watchdog did, and the last errors",
      examples: ["superspreader status reencrypt-messages", "superspreader status reencrypt-messages --json | jq .eta.finishAt"],
    },
  },
  pause: {
    run: change.pause,
    options: CHANGE,
    help: {
      usage: "superspreader pause NAME [--reason TEXT] [--json]",
      line: "stop planning cycles (queued batches are deferred, not lost)",
      summary: "stop planning cycles; batches already queued are deferred when they arrive and run again after resume. A held run can be paused too",
      examples: ['superspreader pause reencrypt-messages --reason "database maintenance"'],
    },
  },
  resume: {
    run: change.resume,
    options: CHANGE,
    help: {
      usage: "superspreader resume NAME [--reason TEXT] [--json]",
      line: "resume a paused or held backfill",
      summary: "resume a paused backfill, or a held one without waiting for its next probe",
      details:
        "Only Redis is needed: the CLI writes the state, and the watchdog of a worker that defines the backfill enqueues its tick within seconds. With --config, the CLI enqueues the tick itself.",
      examples: ['superspreader resume reencrypt-messages --reason "maintenance over"', "superspreader resume reencrypt-messages --config ./superspreader.config.js"],
    },
  },
  cancel: {
    run: change.cancel,
    options: [...CHANGE, "yes"],
    help: {
      usage: "superspreader cancel NAME --yes [--reason TEXT] [--json]",
      line: "end the run for good",
      summary: "end the run for good: queued jobs of it do nothing; a new run needs `start --restart`. A run that already ended needs no --yes: it is refused (exit 1)",
      examples: ['superspreader cancel reencrypt-messages --yes --reason "wrong table"'],
    },
  },
  "retry-failed": {
    run: change.retryFailed,
    options: CHANGE,
    help: {
      usage: "superspreader retry-failed NAME [--reason TEXT] [--json]",
      line: "queue the failed ranges again",
      summary: "queue the failed ranges again: the next cycles enqueue them first. A run that ended as failed runs again",
      details: "Only Redis is needed: a failed run is set running and a worker's watchdog enqueues its tick within seconds.",
      examples: ["superspreader retry-failed reencrypt-messages", 'superspreader retry-failed reencrypt-messages --reason "the bad rows are fixed"'],
    },
  },
  start: {
    run: change.start,
    options: [...CHANGE, "new", "restart", "reset-config"],
    help: {
      usage: "superspreader start NAME [--new | --restart [--reset-config]] [--reason TEXT] [--json]",
      line: "start a first run (--new) or a new run of an ended one (--restart)",
      summary:
        "start a backfill: its first run (--new), or a new run of one that completed, failed or was cancelled (--restart). A running or paused backfill is left as it is",
      details:
        "A restart keeps the live config (changes made with `config set` stay); --reset-config takes the config in the code instead. The command says which. Without --config, the start is written as a request that a worker defining the backfill carries out within seconds (status `starting` for a first run); with --config, the CLI starts it itself. A name the store has never seen needs --new, so a typo starts nothing.",
      examples: [
        "superspreader start reencrypt-messages --new",
        'superspreader start reencrypt-messages --restart --reason "new rows imported"',
        "superspreader start reencrypt-messages --restart --reset-config",
      ],
    },
  },
  "config get": {
    run: read.configGet,
    options: ["limit"],
    help: {
      usage: "superspreader config get NAME [--limit N] [--json]",
      line: "the config and its change history",
      summary: "the stored config and its change history with the values of each change (the last N, default 20)",
      examples: ["superspreader config get reencrypt-messages", "superspreader config get reencrypt-messages --json | jq .config"],
    },
  },
  "config set": {
    run: change.configSet,
    options: [...CHANGE, "dry-run"],
    help: {
      usage: "superspreader config set NAME key=value... [--reason TEXT] [--dry-run] [--json]",
      line: "change the config: validated, recorded with old/new values and why",
      summary:
        "change config fields; the whole config is validated before anything is written, and the change is recorded with its time, old and new values, actor and reason",
      details:
        "Values are JSON (numbers, true/false, null, objects); anything else is taken as a string. Fields: batchSize, duration, perSecondOnPeak, perSecondOffPeak, peak, maxAttempts, priority, spreadWithinSecond, hold, autotune, health, budget, finishBy. A finishBy (an ISO instant, or null for none) the configured rates cannot meet is refused with the rates that would (exit 2). --dry-run validates and shows the change and the new ETA without writing. Changes apply from the next cycle.",
      examples: [
        'superspreader config set reencrypt-messages perSecondOffPeak=10 --reason "quiet weekend"',
        "superspreader config set reencrypt-messages 'peak={\"timezone\":\"America/Los_Angeles\",\"days\":\"Mon-Fri\",\"hours\":[6,18]}' --dry-run",
        "superspreader config set reencrypt-messages peak=null",
        "superspreader config set reencrypt-messages finishBy=2026-12-24T00:00:00Z --dry-run",
        "superspreader config set reencrypt-messages autotune={} --reason \"let the loop find the rate\"",
      ],
    },
  },
  plan: {
    run: read.plan,
    options: ["limit"],
    help: {
      usage: "superspreader plan NAME [--limit N] [--json]",
      line: "the next cycle's batches, without enqueuing anything",
      summary: "the batches the next cycle would enqueue (deferred ranges first, then fresh ones) and when each runs, from the planner the next tick runs; enqueues nothing",
      examples: ["superspreader plan reencrypt-messages", "superspreader plan reencrypt-messages --json | jq '.batches | length'"],
    },
  },
  estimate: {
    run: read.estimate,
    options: ["finish-by"],
    help: {
      usage: "superspreader estimate NAME [--finish-by ISO] [--json]",
      line: "the ETA through the peak calendar and at the observed pace; whether a deadline can be met",
      summary:
        "when the last batch runs: walked through the peak calendar (on/off-peak rates, zero-rate windows, DST) cycle by cycle, and at the pace observed over the last 15 minutes. With a deadline (the config's finishBy, or --finish-by), whether the configured rates meet it, when the run would finish, and otherwise which perSecondOnPeak and perSecondOffPeak would",
      details:
        "The deadline is planned as the runtime plans it every cycle (core's planDeadline): from the next cycle, over the fresh ids below the cursor and the deferred ranges, aiming the last batch a minute (or a cycle) before the deadline. --finish-by tries a deadline without writing it; `config set NAME finishBy=...` sets one, and is refused when the configured rates cannot meet it.",
      examples: [
        "superspreader estimate reencrypt-messages",
        "superspreader estimate reencrypt-messages --finish-by 2026-12-24T00:00:00Z",
        "superspreader estimate reencrypt-messages --json | jq .deadline.needs",
      ],
    },
  },
  pin: {
    run: change.pin,
    options: [...CHANGE, "rate", "batch-size"],
    help: {
      usage: "superspreader pin NAME [--rate N] [--batch-size N] [--reason TEXT] [--json]",
      line: "hold the rate or batch size where you say: the closed loop leaves it alone",
      summary:
        "pin the rate (batches per second, at most the configured rates) or the batch size of a running, held or paused backfill: autotune and the deadline stop moving it until `unpin` (a budget shared with other backfills still caps a pinned rate). Recorded in the change history",
      details:
        "Applies from the next cycle. Only Redis is needed: a pin is written to the stored state, which the next tick reads. --rate 0 stops new batches until unpinned (pause says so more plainly).",
      examples: [
        'superspreader pin reencrypt-messages --rate 2 --reason "incident 4711: replica lag"',
        "superspreader pin reencrypt-messages --batch-size 500",
        "superspreader pin reencrypt-messages --rate 2 --batch-size 500 --json | jq .control.summary",
      ],
    },
  },
  unpin: {
    run: change.unpin,
    options: [...CHANGE, "rate", "batch-size"],
    switches: ["rate", "batch-size"],
    help: {
      usage: "superspreader unpin NAME [--rate] [--batch-size] [--reason TEXT] [--json]",
      line: "let the closed loop set the rate or batch size again",
      summary: "remove a pin: the rate (--rate), the batch size (--batch-size), or both (no flag); the loop sets them again from the next cycle. Recorded in the change history",
      examples: ["superspreader unpin reencrypt-messages", 'superspreader unpin reencrypt-messages --rate --reason "incident over"'],
    },
  },
  audit: {
    run: read.audit,
    options: ["limit"],
    help: {
      usage: "superspreader audit NAME [--limit N] [--json]",
      line: "gaps in the ledger and why each is open",
      summary: "gaps in the ledger and why each is open: failed, deferred, in flight, not planned yet, or lost (enqueued, then neither in the queue nor recorded)",
      examples: ["superspreader audit reencrypt-messages", "superspreader audit reencrypt-messages --json | jq .complete"],
    },
  },
  repair: {
    run: change.repair,
    options: [...CHANGE, "no-wait"],
    help: {
      usage: "superspreader repair NAME [--no-wait] [--reason TEXT] [--json]",
      line: "find ranges the queue lost and queue them again, now",
      summary:
        "look up every enqueued, unrecorded range in the queue and queue again those it lost or gave up on (and, once everything was enqueued, ranges nothing accounts for); report what was found",
      details:
        "The ticks do this by themselves about a minute after a batch was due; repair does it now. Without --config a worker defining the backfill carries it out: the CLI waits for its report (up to --timeout) unless --no-wait.",
      examples: ['superspreader repair reencrypt-messages --reason "jobs deleted by hand"', "superspreader repair reencrypt-messages --no-wait"],
    },
  },
  output: {
    run: read.output,
    options: ["run"],
    help: {
      usage: "superspreader output NAME [--run ID] [--json]",
      line: "the results the handlers returned, as JSON lines",
      summary:
        "write the results the backfill's handlers returned (config output), one JSON line per batch: beginId, endId, at (ISO 8601), result; in the order they were kept. --json writes one document with the run's totals instead",
      details:
        "A run keeps its first results up to output.maxBytes of JSON; results past it are counted as dropped and said so on stderr. Each range's result is kept once, however often the batch ran.",
      examples: ["superspreader output fix-emails > results.jsonl", "superspreader output fix-emails --run 3f9a1c2b7d4e | jq -r 'select(.result.bad | length > 0) | .result.bad[]'"],
    },
  },
  extend: {
    run: change.extend,
    options: [...CHANGE, "no-wait"],
    help: {
      usage: "superspreader extend NAME [--no-wait] [--reason TEXT] [--json]",
      line: "catch up: add rows inserted above the run's id space",
      summary:
        "read the source's max id and, when rows were inserted above the run's id space since it started, add them to the run (finished ranges never run again); a completed run runs again; with nothing new, change nothing and say so",
      details:
        "The new ids are planned, highest first, after the ranges planned before them, at the run's rate; status, ETA and audit cover them. The config's autoExtend does this by itself when a run reaches the bottom. Without --config a worker defining the backfill reads its source: the CLI waits for its answer (up to --timeout) unless --no-wait.",
      examples: ['superspreader extend reencrypt-messages --reason "rows written since the start"', "superspreader extend reencrypt-messages --json | jq .toId"],
    },
  },
  dashboard: {
    run: dashboard,
    options: ["port", "host", "allow-control", "actor"],
    longRunning: true,
    help: {
      usage: "superspreader dashboard [--port N] [--host ADDR] [--allow-control] [--actor NAME]",
      line: "serve the operator page and HTTP API (http://127.0.0.1:7420/) until interrupted",
      summary: "serve the operator page and its HTTP API on the store until Ctrl-C; read-only unless --allow-control, bound to 127.0.0.1 unless --host",
      details:
        "With --allow-control every visitor may pause, resume, retry, cancel and edit, recorded as --actor (default cli:$USER); put an authenticating proxy in front before exposing it on another address. Only the store is needed (Redis, or the database of --database-url), as for every command.",
      examples: [
        "superspreader dashboard --redis-url redis://localhost:6379",
        "superspreader dashboard --database-url postgres://app@localhost:5432/app",
        "superspreader dashboard --port 8080 --allow-control --actor ops-laptop",
      ],
    },
  },
  migrate: {
    run: migrate,
    options: [],
    help: {
      usage: "superspreader migrate --database-url URL [--table-prefix PREFIX] [--json]",
      line: "create or upgrade store-drizzle's tables in the --database-url database",
      summary:
        "create store-drizzle's tables in the database of --database-url, or upgrade them to this version's schema, and say what was done; a second run finds them current and changes nothing",
      details:
        "The same migration as migrateStateStore(db, { tablePrefix }) in code: explicit (the store never creates tables itself), idempotent, and safe to run from several processes at once (they wait for each other on a lock). Tables of a newer schema than this CLI's @superspreader/store-drizzle knows are refused (exit 1): upgrade the CLI. Redis needs no migration.",
      examples: [
        "superspreader migrate --database-url postgres://app@localhost:5432/app",
        "superspreader migrate --database-url mysql://app@localhost:3306/app --table-prefix backfills_",
        "superspreader migrate --json | jq .created",
      ],
    },
  },
};
