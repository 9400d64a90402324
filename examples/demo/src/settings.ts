import { parseArgs } from "node:util";
import { SuperSpreaderError, describeValue, isSuperSpreaderError, validateConfig } from "@superspreader/core";
import type { BackfillConfigInput, PeakInput, PeakWindowInput } from "@superspreader/core";
import type { Output, ProgressMode } from "./report.js";

/** The settings both examples take from the command line. */
export interface ExampleSettings {
  /** Rows to create and backfill. */
  rows: number;
  /** Ids per batch job. */
  batchSize: number;
  /** Batches per second inside the peak windows. */
  perSecondOnPeak: number;
  /** Batches per second outside them. */
  perSecondOffPeak: number;
  /** On-peak windows, or null for none (always off-peak). */
  peak: PeakInput | null;
  /** Seconds per scheduler cycle. */
  duration: number;
  /** Batches processed at once (per worker process in the real example). */
  concurrency: number;
  /** Worker processes (real example only). */
  workers: number;
  /**
   * Where the demo keeps the backfill's state (demo only): `"memory"` is gone when the demo exits;
   * `"pglite"` is kept in the demo's PGlite database directory, so `resume` continues an interrupted run.
   */
  store: "memory" | "pglite";
  /** The PGlite database directory with store "pglite" (demo only), or null for the default. */
  dataDir: string | null;
  /** Continue the run an interrupted demo left in its data directory (demo only; store "pglite"). */
  resume: boolean;
}

/** An example's defaults: its settings, with one rate for on and off peak. */
export type ExampleDefaults = Omit<ExampleSettings, "peak" | "perSecondOnPeak" | "perSecondOffPeak" | "store" | "dataDir" | "resume"> & { perSecond: number };

/** Options both examples' run functions take; settings left out take the example's defaults. */
export interface ExampleOptions {
  /** Rows to create and backfill. @default the example's (1,000,000 for the demo, 200,000 for the real one) */
  rows?: number;
  /** Ids per batch job. @default the example's (2,000 / 1,000) */
  batchSize?: number;
  /** Batches per second on and off peak (the two fields below override it). @default the example's (30 / 20) */
  perSecond?: number;
  /** Batches per second inside the peak windows. @default perSecond */
  perSecondOnPeak?: number;
  /** Batches per second outside them. @default perSecond */
  perSecondOffPeak?: number;
  /** On-peak windows. @default null (always off-peak) */
  peak?: PeakInput | null;
  /** Seconds per scheduler cycle. @default 2 */
  duration?: number;
  /** Batches processed at once (per worker process in the real example). @default 2 */
  concurrency?: number;
  /** Where the plan, progress and summary go. @default process.stdout */
  output?: Output;
  /** How progress is shown. @default "bar" on a terminal, "lines" otherwise */
  progress?: ProgressMode;
  /** Time between progress lines in "lines" mode (ms). @default 2000 */
  logEveryMs?: number;
  /** Stops the run early (the backfill is cancelled and the partial result verified). @default undefined */
  signal?: AbortSignal;
}

/**
 * Fills in an example's defaults and checks the settings, before anything is created:
 * throws `INVALID_ARGUMENT` (rows, concurrency, workers) or `INVALID_CONFIG` naming the field.
 *
 * @example
 * ```ts
 * const settings = resolveSettings({ rows: 20_000 }, DEMO_DEFAULTS);
 * ```
 */
export function resolveSettings(options: ExampleOptions & { workers?: number }, defaults: ExampleDefaults): ExampleSettings {
  const perSecond = options.perSecond ?? defaults.perSecond;
  const settings: ExampleSettings = {
    rows: options.rows ?? defaults.rows,
    batchSize: options.batchSize ?? defaults.batchSize,
    perSecondOnPeak: options.perSecondOnPeak ?? perSecond,
    perSecondOffPeak: options.perSecondOffPeak ?? perSecond,
    peak: options.peak ?? null,
    duration: options.duration ?? defaults.duration,
    concurrency: options.concurrency ?? defaults.concurrency,
    workers: options.workers ?? defaults.workers,
    store: "memory",
    dataDir: null,
    resume: false,
  };
  for (const field of ["rows", "concurrency", "workers"] as const) {
    const value = settings[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be a whole number ≥ 1, got ${describeValue(value)}`, { field });
    }
  }
  validateConfig(configOf(settings));
  return settings;
}

/** What a program's flags look like. */
export interface FlagSpec {
  /** The command, for usage lines ("pnpm --filter @superspreader/example-demo start"). */
  readonly program: string;
  /** What the program does, first line of `--help`. */
  readonly summary: string;
  readonly defaults: ExampleDefaults;
  /** Whether `--workers` exists. */
  readonly workers: boolean;
  /** Whether `--store`, `--data-dir` and `--resume` exist (the demo's state kept across restarts). @default false */
  readonly persistence?: boolean;
  /** Example invocations (flags only) with a comment each, for `--help`. */
  readonly examples: ReadonlyArray<readonly [flags: string, comment: string]>;
  /** Extra paragraphs for `--help` (environment variables, …). */
  readonly notes?: readonly string[];
}

/** The outcome of {@link parseFlags}: settings, or a request for help. */
export type ParsedFlags = { readonly help: true; readonly text: string } | { readonly help: false; readonly settings: ExampleSettings };

const OPTIONS = {
  rows: { type: "string" },
  "batch-size": { type: "string" },
  "per-second": { type: "string" },
  "per-second-on-peak": { type: "string" },
  "per-second-off-peak": { type: "string" },
  peak: { type: "string" },
  duration: { type: "string" },
  concurrency: { type: "string" },
  workers: { type: "string" },
  store: { type: "string" },
  "data-dir": { type: "string" },
  resume: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function flagError(flag: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_ARGUMENT", `${flag} ${message}; run with --help for usage`, { field: flag });
}

/** Whole numbers may be written 1000000, 1_000_000 or 1,000,000. */
function wholeNumber(flag: string, raw: string, min: number, max: number): number {
  const value = /^\d{1,3}([_,]?\d{3})*$|^\d+$/.test(raw) ? Number(raw.replace(/[_,]/g, "")) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw flagError(flag, `must be a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function decimal(flag: string, raw: string, what: string): number {
  const value = /^\d+(\.\d+)?$|^\.\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw flagError(flag, `must be ${what}, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * Parses `--peak "America/Los_Angeles Mon-Fri 5-17"`: a time zone, then one or more
 * windows `<days> <from>-<to>` separated by ";" (hours local, half-open, may wrap midnight).
 */
export function parsePeakFlag(raw: string): PeakInput {
  const [timezone, ...rest] = raw.trim().split(/\s+/);
  const windows = rest
    .join(" ")
    .split(";")
    .map((w) => w.trim())
    .filter((w) => w !== "");
  if (!timezone || windows.length === 0) {
    throw flagError("--peak", `must be "<time zone> <days> <from>-<to>" such as "America/Los_Angeles Mon-Fri 5-17", got ${JSON.stringify(raw)}`);
  }
  const parsed = windows.map((w): PeakWindowInput => {
    const match = /^(\S+)\s+(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(w);
    if (!match) {
      throw flagError("--peak", `window ${JSON.stringify(w)} must be "<days> <from>-<to>" such as "Mon-Fri 5-17" or "Sat,Sun 22-6", got ${JSON.stringify(raw)}`);
    }
    return { days: match[1] as string, hours: [Number(match[2]), Number(match[3])] };
  });
  const [first] = parsed;
  return parsed.length === 1 && first ? { timezone, ...first } : { timezone, windows: parsed };
}

/** Which flag set a config field, for error messages. */
function flagOfField(field: string | undefined, given: Record<string, unknown>): string {
  if (!field) return "flags";
  if (field.startsWith("peak")) return "--peak";
  if (field === "batchSize") return "--batch-size";
  if (field === "duration") return "--duration";
  const specific = field === "perSecondOnPeak" ? "--per-second-on-peak" : field === "perSecondOffPeak" ? "--per-second-off-peak" : undefined;
  if (specific) return given[specific.slice(2)] === undefined && given["per-second"] !== undefined ? "--per-second" : specific;
  return `--${field}`;
}

/** The backfill config the settings describe. */
export function configOf(settings: ExampleSettings): BackfillConfigInput {
  return {
    batchSize: settings.batchSize,
    duration: settings.duration,
    perSecondOnPeak: settings.perSecondOnPeak,
    perSecondOffPeak: settings.perSecondOffPeak,
    peak: settings.peak,
  };
}

/**
 * Parses an example's command line. Throws `SuperSpreaderError` (`INVALID_ARGUMENT`,
 * `field` = the flag) naming the flag and the value it got; the CLI exits with 2 then.
 *
 * @example
 * ```ts
 * const parsed = parseFlags(process.argv.slice(2), DEMO_FLAGS);
 * if (parsed.help) console.log(parsed.text);
 * ```
 */
export function parseFlags(argv: readonly string[], spec: FlagSpec): ParsedFlags {
  let values: Partial<Record<keyof typeof OPTIONS, string | boolean>>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-[^']*)'/.exec(message)?.[1] ?? /argument '([^']*)'/.exec(message)?.[1];
    const code = (error as { code?: string }).code;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw flagError(flag ?? "flag", "is not a flag of this program");
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") throw flagError(JSON.stringify(flag ?? argv.join(" ")), "is not a flag (flags start with --)");
    const name = flag?.split(" ")[0] ?? "flags";
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const next = argv[argv.indexOf(name) + 1];
      throw flagError(name, next === undefined ? "needs a value" : `needs a value, got ${JSON.stringify(next)}, which reads as a flag`);
    }
    throw flagError(name, `is invalid: ${message}`);
  }
  if (values.help) return { help: true, text: helpText(spec) };
  if (!spec.workers && values.workers !== undefined) throw flagError("--workers", "only exists in the real example");
  for (const flag of ["store", "data-dir", "resume"] as const) {
    if (spec.persistence !== true && values[flag] !== undefined) throw flagError(`--${flag}`, "only exists in the demo");
  }
  const store = values.store ?? "memory";
  if (store !== "memory" && store !== "pglite") throw flagError("--store", `must be "memory" or "pglite", got ${JSON.stringify(store)}`);
  if (store !== "pglite") {
    if (values.resume !== undefined) throw flagError("--resume", 'needs --store pglite: the memory store keeps nothing to resume');
    if (values["data-dir"] !== undefined) throw flagError("--data-dir", "needs --store pglite");
  }
  const read = <T>(name: keyof typeof OPTIONS, fallback: T, parse: (flag: string, raw: string) => T): T => {
    const raw = values[name];
    return typeof raw === "string" ? parse(`--${name}`, raw) : fallback;
  };
  const d = spec.defaults;
  const whole = (min: number, max: number) => (flag: string, raw: string) => wholeNumber(flag, raw, min, max);
  const rate = (flag: string, raw: string) => decimal(flag, raw, "a number of batches per second ≥ 0 such as 30 or 7.5");
  const perSecond = read("per-second", d.perSecond, rate);
  const settings: ExampleSettings = {
    rows: read("rows", d.rows, whole(1, 100_000_000)),
    batchSize: read("batch-size", d.batchSize, whole(1, 1_000_000)),
    perSecondOnPeak: read("per-second-on-peak", perSecond, rate),
    perSecondOffPeak: read("per-second-off-peak", perSecond, rate),
    peak: read("peak", null, (_flag, raw) => parsePeakFlag(raw)),
    duration: read("duration", d.duration, (flag, raw) => decimal(flag, raw, "a number of seconds > 0 such as 2 or 0.5")),
    concurrency: read("concurrency", d.concurrency, whole(1, 64)),
    workers: read("workers", d.workers, whole(1, 32)),
    store,
    dataDir: typeof values["data-dir"] === "string" ? values["data-dir"] : null,
    resume: values.resume === true,
  };
  if (settings.perSecondOnPeak === 0 && settings.perSecondOffPeak === 0) {
    const flag = ["per-second-on-peak", "per-second-off-peak"].find((name) => values[name as keyof typeof OPTIONS] !== undefined) ?? "per-second";
    throw flagError(`--${flag}`, "must be above 0 on or off peak: with both rates at 0 the backfill never runs");
  }
  try {
    validateConfig(configOf(settings));
  } catch (error) {
    if (!isSuperSpreaderError(error)) throw error;
    const flag = flagOfField(error.field, values);
    throw flagError(flag, `is not accepted: ${error.message.replace(/^\[superspreader\] /, "")}`);
  }
  return { help: false, settings };
}

/** The `--help` text of a program. */
export function helpText(spec: FlagSpec): string {
  const d = spec.defaults;
  const lines = [
    spec.summary,
    "",
    `Usage: ${spec.program} [flags]`,
    "",
    "Flags:",
    `  --rows N                  rows to create and backfill (default ${d.rows.toLocaleString("en-US")})`,
    `  --batch-size N            ids per batch job (default ${d.batchSize.toLocaleString("en-US")})`,
    `  --per-second R            batches per second, on and off peak (default ${d.perSecond}); decimals such as 7.5 are exact`,
    "  --per-second-on-peak R    batches per second inside the --peak windows (default: --per-second)",
    "  --per-second-off-peak R   batches per second outside them (default: --per-second)",
    '  --peak "ZONE DAYS H-H"    on-peak windows, e.g. "America/Los_Angeles Mon-Fri 5-17";',
    '                            several: "Europe/Paris Mon-Fri 9-12; Mon-Fri 14-18" (default: none, always off-peak)',
    `  --duration S              seconds per scheduler cycle (default ${d.duration})`,
    `  --concurrency N           batches processed at once${spec.workers ? " per worker process" : ""} (default ${d.concurrency})`,
    ...(spec.workers ? [`  --workers N               worker processes (default ${d.workers})`] : []),
    ...(spec.persistence === true
      ? [
          "  --store memory|pglite     where the backfill's state lives: memory (default; gone at exit) or the demo's",
          "                            PGlite database on disk, so an interrupted demo can be continued",
          "  --data-dir DIR            the PGlite database directory with --store pglite (default .superspreader-demo)",
          "  --resume                  continue the run an interrupted demo left in --data-dir (with --store pglite)",
        ]
      : []),
    "  -h, --help                this text",
    "",
    "Examples:",
    ...spec.examples.flatMap(([flags, comment]) => [`  # ${comment}`, `  ${spec.program}${flags ? ` ${flags}` : ""}`]),
    ...(spec.notes ?? []).flatMap((note) => ["", note]),
    "",
    "Exit status: 0 when every row was verified, 1 when verification failed or the run broke, 2 for bad flags, 130 when interrupted.",
  ];
  return lines.join("\n");
}
