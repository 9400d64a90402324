import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { isSuperSpreaderError } from "@superspreader/core";
import { didYouMean } from "@superspreader/core/adapter";
import { databaseKind, openApp, type App, type AppOptions, type StoreKind } from "./app.js";
import { meant } from "./args.js";
import { COMMANDS, GLOBAL_OPTIONS, OPTIONS, type CommandSpec, type Context, type OptionName, type OptionValues } from "./commands.js";
import { CliError, EXIT, describeFailure, type ExitCode } from "./errors.js";
import { paint } from "./format.js";
import { commandHelp, overview } from "./help.js";

/** Where `runCli` writes and what it reads. */
export interface CliIO {
  /** Output: results (text, or JSON with `--json`). Colours only when `isTTY` is true and NO_COLOR is unset. */
  readonly stdout: { write(chunk: string): unknown; readonly isTTY?: boolean };
  /** Errors, and notes while a command waits (none with `--json`). */
  readonly stderr: { write(chunk: string): unknown };
  /**
   * Environment: REDIS_URL, SUPERSPREADER_PREFIX, SUPERSPREADER_DATABASE_URL, SUPERSPREADER_TABLE_PREFIX, NO_COLOR, TERM,
   * USER (else LOGNAME, USERNAME, the OS user).
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Directory `--config` paths are resolved against.
   * @default process.cwd()
   */
  readonly cwd?: string;
  /**
   * Aborts a command that waits (`repair` waiting for a worker) or serves until stopped; the bin aborts it on SIGINT and SIGTERM.
   * @default a signal that never aborts
   */
  readonly signal?: AbortSignal;
}

type ParseOptions = Record<string, { type: "string" | "boolean"; short?: string }>;

/** What parseArgs takes: the type and short flag of each option. */
const PARSE_OPTIONS: ParseOptions = Object.fromEntries(
  Object.entries(OPTIONS).map(([name, option]) => [name, { type: option.type, ...("short" in option ? { short: option.short } : {}) }]),
);

/** The usage error for an option parseArgs does not know, naming the option it most likely meant. */
function unknownOption(argv: readonly string[], options: ParseOptions, error: Error): CliError {
  const { tokens } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false, tokens: true });
  const unknown = tokens.find((t) => t.kind === "option" && !Object.hasOwn(OPTIONS, t.name));
  if (unknown?.kind !== "option") return new CliError(EXIT.USAGE, `${error.message} (see superspreader --help)`);
  const option = didYouMean(unknown.name, Object.keys(OPTIONS));
  return new CliError(EXIT.USAGE, `unknown option ${unknown.rawName}: ${option === null ? "see superspreader --help" : `did you mean --${option}?`}`);
}

/**
 * The words of the command `argv` names (`unpin`, `config set`), read loosely: whether an option takes a
 * value can depend on the command (`unpin --rate` takes none), so the command is found before the
 * options are parsed strictly.
 */
function commandWords(argv: readonly string[]): string[] {
  const { positionals } = parseArgs({ args: [...argv], options: PARSE_OPTIONS, allowPositionals: true, strict: false });
  return positionals[0] === "help" ? positionals.slice(1) : positionals;
}

function parse(argv: readonly string[]): { values: OptionValues; positionals: string[] } {
  const switches = COMMANDS[commandKey(commandWords(argv))]?.switches ?? [];
  const options: ParseOptions = { ...PARSE_OPTIONS, ...Object.fromEntries(switches.map((name) => [name, { type: "boolean" }])) };
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    // A switch reads as "" (given, without a value), so every option keeps one type for the commands.
    for (const name of switches) if (values[name] === true) values[name] = "";
    return { values: values as OptionValues, positionals };
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw unknownOption(argv, options, error as Error);
    if ((error as { code?: unknown }).code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && switches.length > 0) {
      const given = switches.find((name) => argv.some((a) => a.startsWith(`--${name}=`)));
      if (given) throw new CliError(EXIT.USAGE, `--${given} takes no value here (see superspreader ${commandKey(commandWords(argv))} --help)`);
    }
    throw new CliError(EXIT.USAGE, `${(error as Error).message.replace(/\. To specify a positional argument.*$/s, "")} (see superspreader --help)`);
  }
}

/** `status`, `config set`: the key of {@link COMMANDS} the words name (which may not exist). */
function commandKey(words: readonly string[]): string {
  return words[0] === "config" && words[1] !== undefined ? `config ${words[1]}` : (words[0] ?? "");
}

/** The command the words name: `status`, `config set`; a usage error naming the one meant otherwise. */
function commandOf(words: readonly string[]): { key: string; spec: CommandSpec } {
  const key = commandKey(words);
  const spec = COMMANDS[key];
  if (spec !== undefined) return { key, spec };
  const command = didYouMean(key, Object.keys(COMMANDS));
  const hint =
    key === "config" ? "use `config get NAME` or `config set NAME key=value...`" : command === null ? "see superspreader --help" : `did you mean \`${command}\`?`;
  throw new CliError(EXIT.USAGE, `unknown command ${JSON.stringify(key)}: ${hint}`);
}

/** The OS account running the CLI (cron jobs and containers often have no USER), or null when it has no name. */
function osUser(): string | null {
  try {
    return userInfo().username || null;
  } catch {
    // A uid without a passwd entry (some containers): userInfo() throws.
    return null;
  }
}

/** Writes JSON with ids (bigints) as decimal strings. */
function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`;
}

function positiveNumber(raw: string | undefined, option: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(EXIT.USAGE, `--${option} must be a number > 0, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * The store the options and environment name: flags before the environment, and exactly one of Redis
 * (`--redis-url`, `REDIS_URL`) and a database (`--database-url`, `SUPERSPREADER_DATABASE_URL`).
 */
function connection(values: OptionValues, env: Readonly<Record<string, string | undefined>>, cwd: string): { options: AppOptions; store: StoreKind } {
  const redisFlag = values["redis-url"];
  const databaseFlag = values["database-url"];
  if (redisFlag !== undefined && databaseFlag !== undefined) {
    throw new CliError(EXIT.USAGE, "--redis-url and --database-url name two stores: pass one of them (the one your workers' state store uses)");
  }
  const fromEnv = redisFlag === undefined && databaseFlag === undefined;
  const redisUrl = redisFlag ?? (fromEnv ? env.REDIS_URL || undefined : undefined);
  const databaseUrl = databaseFlag ?? (fromEnv ? env.SUPERSPREADER_DATABASE_URL || undefined : undefined);
  if (values.config === undefined) {
    if (redisUrl !== undefined && databaseUrl !== undefined) {
      throw new CliError(EXIT.USAGE, "both REDIS_URL and SUPERSPREADER_DATABASE_URL are set: pass --redis-url or --database-url to say which store to read");
    }
    if (databaseUrl === undefined && values["table-prefix"] !== undefined) {
      throw new CliError(EXIT.USAGE, "--table-prefix applies to --database-url only (a Redis store takes --prefix)");
    }
    if (databaseUrl !== undefined && values.prefix !== undefined) {
      throw new CliError(EXIT.USAGE, "--prefix is the Redis store's key prefix: with --database-url, pass --table-prefix");
    }
  }
  const store: StoreKind = values.config === undefined && databaseUrl !== undefined ? databaseKind(databaseUrl).label : "Redis";
  return {
    store,
    options: {
      redisUrl,
      databaseUrl: values.config === undefined ? databaseUrl : undefined,
      prefix: values.prefix ?? env.SUPERSPREADER_PREFIX,
      tablePrefix: values["table-prefix"] ?? (env.SUPERSPREADER_TABLE_PREFIX || undefined),
      config: values.config,
      cwd,
    },
  };
}

/** Rejects after `seconds` with exit code 4: a hung Redis or database must not hang the operator's terminal. */
async function withTimeout<T>(work: Promise<T>, seconds: number, store: StoreKind = "Redis"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new CliError(EXIT.UNREACHABLE, `no answer within ${seconds} s: is ${store} reachable? (--timeout SECONDS to wait longer)`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An unknown backfill's error, with the stored name that was most likely meant. */
async function withSuggestion(error: unknown, app: App, name: string | undefined): Promise<unknown> {
  if (!isSuperSpreaderError(error) || error.code !== "UNKNOWN_BACKFILL" || name === undefined) return error;
  const close = await meant(app, name).catch(() => null);
  if (close === null) return error;
  return new CliError(EXIT.UNKNOWN_BACKFILL, `${describeFailure(error).message.replace(/ \(`superspreader list`.*\)$/, "")}; did you mean \`${close}\`?`, { cause: error });
}

const NEVER = new AbortController().signal;

/**
 * Runs the `superspreader` command line with `argv` (the arguments after the program name) and returns the
 * exit code: 0 ok, 1 operation failed, 2 usage error or invalid value, 3 unknown backfill, 4 Redis (or the
 * `--database-url` database) unreachable. It never calls `process.exit` and closes the connection it opened.
 *
 * @example
 * ```ts
 * import { runCli } from "@superspreader/cli";
 *
 * const code = await runCli(["status", "reencrypt-messages", "--json"], {
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 *   env: { REDIS_URL: "redis://localhost:6379" },
 * });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<ExitCode> {
  const env = io.env ?? process.env;
  const json = argv.includes("--json");
  let store: StoreKind = "Redis";
  try {
    const { values, positionals } = parse(argv);
    const wantsHelp = values.help === true || positionals[0] === "help";
    const words = positionals[0] === "help" ? positionals.slice(1) : positionals;
    if (words[0] === undefined) {
      (wantsHelp ? io.stdout : io.stderr).write(overview());
      return wantsHelp ? EXIT.OK : EXIT.USAGE;
    }
    const { key, spec } = commandOf(words);
    if (wantsHelp) {
      io.stdout.write(commandHelp(key));
      return EXIT.OK;
    }
    for (const option of Object.keys(values) as OptionName[]) {
      if (!GLOBAL_OPTIONS.includes(option) && !spec.options.includes(option)) {
        throw new CliError(EXIT.USAGE, `--${option} does not apply to \`${key}\` (see superspreader ${key} --help)`);
      }
    }
    const timeout = positiveNumber(values.timeout, "timeout", 30);
    const limit = Math.floor(positiveNumber(values.limit, "limit", 20));
    const user = env.USER || env.LOGNAME || env.USERNAME || osUser();
    const args = words.slice(key.split(" ").length);
    const connect = connection(values, env, io.cwd ?? process.cwd());
    store = connect.store;
    const app = await withTimeout(openApp(connect.options), timeout, store);
    try {
      const context: Context = {
        app,
        args,
        options: values,
        actor: values.actor ?? (user ? `cli:${user}` : "cli"),
        reason: values.reason,
        limit,
        paint: paint(!json && io.stdout.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb"),
        deadline: Date.now() + timeout * 1000,
        signal: io.signal ?? NEVER,
        note: (line) => {
          if (!json) io.stderr.write(`${line}\n`);
        },
      };
      const work = spec.run(context);
      const output = await (spec.longRunning ? work : withTimeout(work, timeout, store)).catch(async (error: unknown) => {
        throw await withSuggestion(error, app, args[0]);
      });
      io.stdout.write(json ? toJson(output.json) : output.raw === true ? output.text : `${output.text}\n`);
      return EXIT.OK;
    } finally {
      await app.close();
    }
  } catch (error) {
    const failure = describeFailure(error, store);
    io.stderr.write(json ? toJson({ error: failure }) : `superspreader: ${failure.message}\n`);
    return failure.exitCode;
  }
}
