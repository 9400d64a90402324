import { isSuperSpreaderError } from "@superspreader/core";

/** Exit codes of the `superspreader` command. */
export const EXIT = {
  /** The command did what it was asked. */
  OK: 0,
  /** The operation failed: not allowed in the backfill's state, a conflict, corrupt data, an adapter error. */
  FAILED: 1,
  /** Bad usage: unknown command or option, missing argument, invalid config value, a missing confirmation (--yes). Nothing was changed. */
  USAGE: 2,
  /** No backfill of that name is stored (for `start`: never started and no `--new`, or not defined in the `--config` module). */
  UNKNOWN_BACKFILL: 3,
  /** Redis (or the `--database-url` database) could not be reached, or did not answer within `--timeout`. */
  UNREACHABLE: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports with a given exit code. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

const CODE_NAMES: Record<ExitCode, string> = { 0: "OK", 1: "FAILED", 2: "USAGE", 3: "UNKNOWN_BACKFILL", 4: "REDIS_UNREACHABLE" };

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "PROTOCOL_CONNECTION_LOST"]);

/** The store's messages name the library call; the CLI's user runs a command. */
function migrateHint(message: string): string {
  return message
    .replace(/call migrateStateStore\(db(?:, \{ tablePrefix: "([^"]+)" \})?\) once before using the store/, (_all, prefix: string | undefined) =>
      `run \`superspreader migrate --database-url URL${prefix === undefined ? "" : ` --table-prefix ${prefix}`}\` once to create them`,
    )
    .replace(/call migrateStateStore\(db\) to upgrade them/, "run `superspreader migrate` to upgrade them");
}

/** True for errors that mean the server is gone (ioredis, pg and mysql2 report these in several shapes, sometimes as a cause). */
function isConnectionError(error: unknown): boolean {
  for (let e = error as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string" && CONNECTION_CODES.has(e.code)) return true;
    if (e.name === "MaxRetriesPerRequestError") return true;
    if (typeof e.message === "string" && /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Connection terminated/.test(e.message)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * The exit code and message for an error thrown by a command; `store` names what the CLI is connected to
 * (exit code 4 is `REDIS_UNREACHABLE` for Redis, `DATABASE_UNREACHABLE` for a `--database-url`).
 */
export function describeFailure(error: unknown, store: "Redis" | "PostgreSQL" | "MySQL/MariaDB" = "Redis"): { exitCode: ExitCode; code: string; message: string } {
  const unreachable = store === "Redis" ? "REDIS_UNREACHABLE" : "DATABASE_UNREACHABLE";
  if (error instanceof CliError) return { exitCode: error.exitCode, code: error.exitCode === EXIT.UNREACHABLE ? unreachable : CODE_NAMES[error.exitCode], message: error.message };
  if (isConnectionError(error)) {
    return { exitCode: EXIT.UNREACHABLE, code: unreachable, message: `lost the connection to ${store} (${(error as Error).message}): check that the server is running` };
  }
  if (isSuperSpreaderError(error)) {
    const message = migrateHint(error.message.replace(/^\[superspreader\] /, ""));
    switch (error.code) {
      case "UNKNOWN_BACKFILL":
        return { exitCode: EXIT.UNKNOWN_BACKFILL, code: error.code, message: `${message} (\`superspreader list\` shows the stored backfills)` };
      case "INVALID_CONFIG":
      case "INVALID_ARGUMENT":
        return { exitCode: EXIT.USAGE, code: error.code, message: `${message}; nothing was changed` };
      default:
        return { exitCode: EXIT.FAILED, code: error.code, message };
    }
  }
  return { exitCode: EXIT.FAILED, code: "ERROR", message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
}
