import type { BackfillConfig } from "./config.js";
import { validateConfig } from "./config.js";
import { SuperSpreaderError } from "./errors.js";
import type { BatchJobData, JobData, TickJobData } from "./ports.js";
import { NAME_PATTERN } from "./validate-args.js";

/** Lifecycle of a run. */
export type BackfillStatusName = "running" | "paused" | "cancelled" | "completed" | "failed";

/** A stored range (decimal-string ids). */
export interface StoredEntry {
  readonly beginId: string;
  readonly endId: string;
  readonly cycle: number;
}

/**
 * A planned cycle, stored with compare-and-set before anything is enqueued, so a
 * tick that crashes after planning is finished by the next delivery with exactly
 * the same jobs (same ids, deduplicated by the queue).
 */
export interface PendingPlan {
  readonly cycle: number;
  /** Nominal start of the cycle (epoch ms). */
  readonly beginAt: number;
  /** Exact rate, e.g. "7.5". */
  readonly perSecond: string;
  readonly onPeak: boolean;
  readonly spreadWithinSecond: boolean;
  readonly batchSize: number;
  /** Cursor before the cycle (next endId to plan); fresh ranges go down from here. */
  readonly cursor: string;
  /** Fresh ranges in this cycle. */
  readonly fresh: number;
  /** Cursor after the cycle. */
  readonly nextCursor: string;
  /** Deferred or failed ranges enqueued again, in the cycle's first slots. */
  readonly requeue: readonly StoredEntry[];
  /** When the next tick runs (epoch ms) = beginAt + duration. */
  readonly nextTickAt: number;
}

/** The backfill document core keeps in the StateStore. */
export interface BackfillDoc {
  readonly schema: 1;
  readonly name: string;
  readonly runId: string;
  readonly status: BackfillStatusName;
  readonly config: BackfillConfig;
  /** Id space of the run, fixed at start (decimal strings). */
  readonly minId: string;
  readonly initialId: string;
  /** Next endId to plan; below minId when every fresh range has been enqueued. */
  readonly cursor: string;
  /** The cycle the next tick plans. */
  readonly cycle: number;
  /** Tick generation: bumped by resume and by kicking a running backfill, so older ticks turn stale. */
  readonly epoch: number;
  readonly nextTickAt: number;
  readonly pending: PendingPlan | null;
  readonly startedAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
}

function corrupt(what: string, detail: string): SuperSpreaderError {
  return new SuperSpreaderError("CORRUPT_DATA", `${what} ${detail}; it was not written by this version of superspreader or was edited by hand`);
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isIdString = (v: unknown): v is string => typeof v === "string" && /^-?(0|[1-9][0-9]*)$/.test(v);
const isTime = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * Checks a stored document's shape; throws CORRUPT_DATA naming the backfill and the field.
 * `knownValid(config)` may vouch for a config already validated, to skip re-validating it.
 */
export function parseDoc(name: string, value: unknown, knownValid: (config: unknown) => boolean = () => false): BackfillDoc {
  const what = `stored state of backfill "${name}":`;
  if (typeof value !== "object" || value === null) throw corrupt(what, "is not an object");
  const d = value as Record<string, unknown>;
  if (d.schema !== 1) throw corrupt(what, `has schema ${JSON.stringify(d.schema)}, expected 1`);
  const statuses = ["running", "paused", "cancelled", "completed", "failed"];
  if (typeof d.status !== "string" || !statuses.includes(d.status)) throw corrupt(what, `has status ${JSON.stringify(d.status)}`);
  if (typeof d.runId !== "string" || d.runId.length === 0) throw corrupt(what, "has no runId");
  for (const key of ["minId", "initialId", "cursor"]) if (!isIdString(d[key])) throw corrupt(what, `field ${key} is ${JSON.stringify(d[key])}`);
  for (const key of ["cycle", "epoch"]) if (!isInt(d[key])) throw corrupt(what, `field ${key} is ${JSON.stringify(d[key])}`);
  for (const key of ["nextTickAt", "startedAt", "updatedAt"]) if (!isTime(d[key])) throw corrupt(what, `field ${key} is ${JSON.stringify(d[key])}`);
  try {
    if (!knownValid(d.config)) validateConfig(d.config);
  } catch (error) {
    throw new SuperSpreaderError("CORRUPT_DATA", `${what} its config is invalid: ${(error as Error).message}`, { cause: error });
  }
  if (d.pending !== null) {
    const p = d.pending as Record<string, unknown> | undefined;
    if (
      typeof p !== "object" ||
      !isInt(p.cycle) ||
      !isTime(p.beginAt) ||
      !isTime(p.nextTickAt) ||
      !isIdString(p.cursor) ||
      !isIdString(p.nextCursor) ||
      !isInt(p.fresh) ||
      !isInt(p.batchSize) ||
      typeof p.perSecond !== "string" ||
      !Array.isArray(p.requeue)
    ) {
      throw corrupt(what, "has a malformed pending plan");
    }
  }
  return value as BackfillDoc;
}

/** Checks a job payload read back from a queue; throws CORRUPT_DATA naming the field. */
export function parseJobData(data: unknown): JobData {
  const what = "job data";
  if (typeof data !== "object" || data === null) throw corrupt(what, `is ${JSON.stringify(data)}, not an object`);
  const d = data as Record<string, unknown>;
  if (typeof d.backfill !== "string" || !NAME_PATTERN.test(d.backfill)) throw corrupt(what, `has backfill ${JSON.stringify(d.backfill)}`);
  if (typeof d.runId !== "string" || d.runId.length === 0) throw corrupt(what, `has runId ${JSON.stringify(d.runId)}`);
  if (!isInt(d.cycle)) throw corrupt(what, `has cycle ${JSON.stringify(d.cycle)}`);
  if (d.kind === "tick") {
    if (!isInt(d.epoch)) throw corrupt(what, `has epoch ${JSON.stringify(d.epoch)}`);
    if (!isTime(d.scheduledAt)) throw corrupt(what, `has scheduledAt ${JSON.stringify(d.scheduledAt)}`);
    return d as unknown as TickJobData;
  }
  if (d.kind === "batch") {
    if (!isIdString(d.beginId) || !isIdString(d.endId) || BigInt(d.beginId) > BigInt(d.endId) || BigInt(d.beginId) < 0n) {
      throw corrupt(what, `has range ${JSON.stringify(d.beginId)}..${JSON.stringify(d.endId)}`);
    }
    if (d.scheduledAt !== undefined && !isTime(d.scheduledAt)) throw corrupt(what, `has scheduledAt ${JSON.stringify(d.scheduledAt)}`);
    return d as unknown as BatchJobData;
  }
  throw corrupt(what, `has kind ${JSON.stringify(d.kind)}, expected "tick" or "batch"`);
}
