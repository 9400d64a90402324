import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { didYouMean } from "@superspreader/core/adapter";
import { openApp, type App } from "./app.js";
import * as commands from "./commands.js";
import { CliError, EXIT, describeFailure, type ExitCode } from "./errors.js";
import { paint } from "./format.js";
import { OVERVIEW, commandHelp } from "./help.js";

/** Where `runCli` writes and what it reads. */
export interface CliIO {
  /** Output: results (text, or JSON with `--json`). Colours only when `isTTY` is true and NO_COLOR is unset. */
  readonly stdout: { write(chunk: string): unknown; readonly isTTY?: boolean };
  /** Errors and notes. */
  readonly stderr: { write(chunk: string): unknown };
  /**
   * Environment: REDIS_URL, SUPERSPREADER_PREFIX, NO_COLOR, TERM, USER.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Directory `--config` paths are resolved against.
   * @default process.cwd()
   */
  readonly cwd?: string;
}

const OPTIONS = {
  "redis-url": { type: "string" },
  prefix: { type: "string" },
  config: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  reason: { type: "string" },
  actor: { type: "string" },
  limit: { type: "string" },
  yes: { type: "boolean", short: "y" },
  restart: { type: "boolean" },
  "dry-run": { type: "boolean" },
} as const;

type OptionName = keyof typeof OPTIONS;

const GLOBAL: readonly OptionName[] = ["redis-url", "prefix", "config", "timeout", "json", "help"];
const CHANGE: readonly OptionName[] = ["reason", "actor"];

const COMMANDS: Readonly<Record<string, { run: commands.Command; options: readonly OptionName[] }>> = {
  list: { run: commands.list, options: [] },
  status: { run: commands.status, options: [] },
  pause: { run: commands.pause, options: CHANGE },
  resume: { run: commands.resume, options: CHANGE },
  cancel: { run: commands.cancel, options: [...CHANGE, "yes"] },
  "retry-failed": { run: commands.retryFailed, options: CHANGE },
  start: { run: commands.start, options: [...CHANGE, "restart"] },
  "config get": { run: commands.configGet, options: ["limit"] },
  "config set": { run: commands.configSet, options: [...CHANGE, "dry-run"] },
  plan: { run: commands.plan, options: ["limit"] },
  estimate: { run: commands.estimateCommand, options: [] },
  audit: { run: commands.audit, options: ["limit"] },
};

/** The usage error for an option parseArgs does not know, naming the option it most likely meant. */
function unknownOption(argv: readonly string[], error: Error): CliError {
  const { tokens } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const unknown = tokens.find((t) => t.kind === "option" && !Object.hasOwn(OPTIONS, t.name));
  if (unknown?.kind !== "option") return new CliError(EXIT.USAGE, `${error.message} (see superspreader --help)`);
  const meant = didYouMean(unknown.name, Object.keys(OPTIONS));
  return new CliError(EXIT.USAGE, `unknown option ${unknown.rawName}: ${meant === null ? "see superspreader --help" : `did you mean --${meant}?`}`);
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

/** Rejects after `seconds` with exit code 4: a hung Redis must not hang the operator's terminal. */
async function withTimeout<T>(work: Promise<T>, seconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new CliError(EXIT.UNREACHABLE, `no answer within ${seconds} s: is Redis reachable? (--timeout SECONDS to wait longer)`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the `superspreader` command line with `argv` (the arguments after the program name) and returns the
 * exit code: 0 ok, 1 operation failed, 2 usage error or invalid value, 3 unknown backfill, 4 Redis unreachable.
 * It never calls `process.exit` and closes the Redis connection it opened.
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
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      if ((error as { code?: unknown }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw unknownOption(argv, error as Error);
      throw new CliError(EXIT.USAGE, `${(error as Error).message.replace(/\. To specify a positional argument.*$/s, "")} (see superspreader --help)`);
    }
    const { values, positionals } = parsed;
    const wantsHelp = values.help === true || positionals[0] === "help";
    const words = positionals[0] === "help" ? positionals.slice(1) : positionals;
    const key = words[0] === "config" && words[1] !== undefined ? `config ${words[1]}` : words[0];
    if (key === undefined) {
      (wantsHelp ? io.stdout : io.stderr).write(OVERVIEW);
      return wantsHelp ? EXIT.OK : EXIT.USAGE;
    }
    const command = COMMANDS[key];
    if (command === undefined) {
      const meant = didYouMean(key, Object.keys(COMMANDS));
      const hint =
        key === "config" ? "use `config get NAME` or `config set NAME key=value...`" : meant === null ? "see superspreader --help" : `did you mean \`${meant}\`?`;
      throw new CliError(EXIT.USAGE, `unknown command ${JSON.stringify(key)}: ${hint}`);
    }
    if (wantsHelp) {
      io.stdout.write(commandHelp(key));
      return EXIT.OK;
    }
    for (const option of Object.keys(values) as OptionName[]) {
      if (!GLOBAL.includes(option) && !command.options.includes(option)) {
        throw new CliError(EXIT.USAGE, `--${option} does not apply to \`${key}\` (see superspreader ${key} --help)`);
      }
    }
    const timeout = positiveNumber(values.timeout, "timeout", 30);
    const limit = Math.floor(positiveNumber(values.limit, "limit", 20));
    const user = env.USER || env.LOGNAME || env.USERNAME || osUser();
    const context = {
      args: words.slice(key.split(" ").length),
      actor: values.actor ?? (user ? `cli:${user}` : "cli"),
      reason: values.reason,
      limit,
      flags: { yes: values.yes === true, restart: values.restart === true, dryRun: values["dry-run"] === true },
      paint: paint(!json && io.stdout.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb"),
    };
    const app: App = await withTimeout(
      openApp({ redisUrl: values["redis-url"] ?? env.REDIS_URL, prefix: values.prefix ?? env.SUPERSPREADER_PREFIX, config: values.config, cwd: io.cwd ?? process.cwd() }),
      timeout,
    );
    try {
      const output = await withTimeout(command.run({ ...context, app }), timeout);
      io.stdout.write(json ? toJson(output.json) : `${output.text}\n`);
      return EXIT.OK;
    } finally {
      await app.close();
    }
  } catch (error) {
    const failure = describeFailure(error);
    io.stderr.write(json ? toJson({ error: failure }) : `superspreader: ${failure.message}\n`);
    return failure.exitCode;
  }
}
