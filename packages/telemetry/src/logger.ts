import { SuperSpreaderError, describeValue } from "@superspreader/core";
import type { SuperSpreaderEventName, SuperSpreaderEvents } from "@superspreader/core";
import { checkSpreader, subscribe, type EventHandlers, type SuperSpreaderEventSource } from "./subscribe.js";

/** A log method with pino's signature: the structured fields first, then the message. */
export type LogMethod = (fields: Record<string, unknown>, message?: string) => void;

/** A structured logger: a pino logger (or child), `console`, or anything with these methods. */
export interface StructuredLogger {
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  /** Optional; without it, `debug` lines go to `info`. */
  debug?: LogMethod;
  /** Optional (pino has it): lets lines of a disabled level be skipped before their fields are built. */
  isLevelEnabled?: (level: string) => boolean;
}

/** A level, or `"off"` to drop the event. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "off";

/** Options of {@link logEvents}. */
export interface LogEventsOptions {
  /**
   * Level per event, overriding the defaults: `debug` for batchStarted, batchFinished, cyclePlanned
   * and batchDeferred; `warn` for a batchFailed that will be retried and `error` for a final one
   * (a batchFailed override applies to both); `warn` for held, probeFailed, rangesLost and revived
   * (the runtime healed something: worth a look); `info` for the rest, `error` for a `completed` run
   * whose status is `failed`.
   * @default {}
   */
  levels?: Partial<Record<SuperSpreaderEventName, LogLevel>>;
}

const MESSAGES = {
  started: "backfill started",
  cyclePlanned: "cycle planned",
  batchStarted: "batch started",
  batchFinished: "batch finished",
  batchFailed: "batch failed",
  batchDeferred: "batch deferred",
  paused: "backfill paused",
  resumed: "backfill resumed",
  cancelled: "backfill cancelled",
  completed: "backfill ended",
  configChanged: "backfill config changed",
  held: "backfill held (a burst of failures, or a health indicator said stop)",
  tuned: "closed loop changed the batch size or rate",
  probeFailed: "probe of a held backfill failed",
  rangesLost: "lost ranges found and queued again",
  revived: "tick chain revived by the watchdog",
} as const satisfies Record<SuperSpreaderEventName, string>;

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "off"];

/** Bigints become decimal strings (JSON cannot hold them); errors are left for the logger's serializer. */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null && !(value instanceof Error)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function defaultLevel<E extends SuperSpreaderEventName>(name: E, event: SuperSpreaderEvents[E]): Exclude<LogLevel, "off"> {
  switch (name) {
    case "batchStarted":
    case "batchFinished":
    case "batchDeferred":
    case "cyclePlanned":
      return "debug";
    case "batchFailed":
      return (event as SuperSpreaderEvents["batchFailed"]).final ? "error" : "warn";
    case "held":
    case "probeFailed":
    case "rangesLost":
    case "revived":
      return "warn";
    case "completed":
      return (event as SuperSpreaderEvents["completed"]).status === "failed" ? "error" : "info";
    default:
      return "info";
  }
}

/**
 * Writes one structured line per runtime event to a pino-style logger (fields first, then the
 * message; `console` works too). Fields are the event's, plus `event` (its name); ids are decimal
 * strings, and a failure's error is under `err` so pino's error serializer renders it. Returns a
 * function that stops logging.
 *
 * @example
 * ```ts
 * import pino from "pino";
 * import { logEvents } from "@superspreader/telemetry";
 *
 * const stop = logEvents(spreader, pino({ level: "info" }).child({ component: "backfills" }));
 * ```
 */
export function logEvents(spreader: SuperSpreaderEventSource, logger: StructuredLogger, options: LogEventsOptions = {}): () => void {
  checkSpreader(spreader, ["on"]);
  for (const method of ["info", "warn", "error"] as const) {
    if (typeof (logger as Partial<StructuredLogger> | null)?.[method] !== "function") {
      throw new SuperSpreaderError(
        "INVALID_ARGUMENT",
        `logger must have info, warn and error methods (a pino logger or console), got ${describeValue(logger)}`,
        { field: "logger" },
      );
    }
  }
  const levels = options.levels ?? {};
  for (const [name, level] of Object.entries(levels)) {
    if (!(name in MESSAGES) || !LEVELS.includes(level)) {
      throw new SuperSpreaderError(
        "INVALID_ARGUMENT",
        `levels.${name} must name an event (${Object.keys(MESSAGES).join(", ")}) and be one of ${LEVELS.join(", ")}, got ${describeValue(level)}`,
        { field: `levels.${name}` },
      );
    }
  }

  const write = <E extends SuperSpreaderEventName>(name: E, event: SuperSpreaderEvents[E]) => {
    const level: LogLevel = levels[name] ?? defaultLevel(name, event);
    if (level === "off") return;
    if (typeof logger.isLevelEnabled === "function" && !logger.isLevelEnabled(level)) return;
    const { error, ...rest } = event as SuperSpreaderEvents[E] & { error?: unknown };
    const fields = { event: name, ...(plain(rest) as Record<string, unknown>), ...("error" in event ? { err: error } : {}) };
    // Called as methods: pino's methods read `this`.
    if (level === "debug") {
      if (logger.debug) logger.debug(fields, MESSAGES[name]);
      else logger.info(fields, MESSAGES[name]);
    } else logger[level](fields, MESSAGES[name]);
  };

  const handlers: EventHandlers = {};
  for (const name of Object.keys(MESSAGES) as SuperSpreaderEventName[]) {
    (handlers as Record<SuperSpreaderEventName, (event: never) => void>)[name] = (event) => write(name, event);
  }
  return subscribe(spreader, handlers);
}
