import { MAX_ID, SuperSpreaderError, padId } from "@superspreader/core";
import type { IdRange, RangeEntry } from "@superspreader/core";

/**
 * Key layout. Every key of one backfill carries the hash tag `{name}`, so all of a
 * backfill's keys live in one Cluster slot and a Lua script may touch any of them.
 * Only the names index is shared by all backfills, which is why it is never written
 * inside a script together with a backfill's keys.
 *
 * ```
 * <prefix>:names                              set     every name ever created
 * <prefix>:{<name>}:doc                       hash    version, value (JSON)
 * <prefix>:{<name>}:config-changes            list    JSON ConfigChange, newest first
 * <prefix>:{<name>}:run:<runId>:done          zset    "<begin>:<end>"          score 0, merged ranges
 * <prefix>:{<name>}:run:<runId>:deferred      zset    "<end>:<~cycle>:<begin>" score 0
 * <prefix>:{<name>}:run:<runId>:failed        zset    "<end>:<begin>:<cycle>:<JSON>" score 0
 * <prefix>:{<name>}:run:<runId>:metrics       hash    batchesDone, idsDone, batchesFailed, batchesDeferred, lastDoneAt
 * <prefix>:{<name>}:run:<runId>:minutes       hash    <minute epoch ms> -> "<ids>:<batches>"
 * ```
 * Ids are 20-digit zero-padded decimals and cycles 16-digit ones, so lexicographic
 * order is numeric order and no id ever becomes a Lua number. `~cycle` is the nines'
 * complement of the padded cycle, so a reverse lex scan yields the highest end first
 * and then the lowest cycle.
 */
export interface BackfillKeys {
  readonly doc: string;
  readonly configChanges: string;
}

export interface RunKeys {
  readonly done: string;
  readonly deferred: string;
  readonly failed: string;
  readonly metrics: string;
  readonly minutes: string;
}

/** Width of a padded cycle: every safe integer fits 16 digits. */
const CYCLE_WIDTH = 16;
const CYCLE_NINES = 10n ** BigInt(CYCLE_WIDTH) - 1n;

export function namesKey(prefix: string): string {
  return `${prefix}:names`;
}

export function backfillKeys(prefix: string, name: string): BackfillKeys {
  const base = `${prefix}:{${name}}`;
  return { doc: `${base}:doc`, configChanges: `${base}:config-changes` };
}

export function runKeys(prefix: string, name: string, runId: string): RunKeys {
  const base = `${prefix}:{${name}}:run:${runId}`;
  return {
    done: `${base}:done`,
    deferred: `${base}:deferred`,
    failed: `${base}:failed`,
    metrics: `${base}:metrics`,
    minutes: `${base}:minutes`,
  };
}

export function padCycle(cycle: number): string {
  return String(cycle).padStart(CYCLE_WIDTH, "0");
}

export function invertCycle(padded: string): string {
  return (CYCLE_NINES - BigInt(padded)).toString().padStart(CYCLE_WIDTH, "0");
}

export function deferredMember(entry: RangeEntry): string {
  return `${padId(entry.endId)}:${invertCycle(padCycle(entry.cycle))}:${padId(entry.beginId)}`;
}

const DONE_MEMBER = /^(\d{20}):(\d{20})$/;
const DEFERRED_MEMBER = /^(\d{20}):(\d{16}):(\d{20})$/;
const FAILED_MEMBER = /^(\d{20}):(\d{20}):(\d{16}):([\s\S]*)$/;

export function corrupt(key: string, detail: string, cause?: unknown): SuperSpreaderError {
  return new SuperSpreaderError(
    "CORRUPT_DATA",
    `Redis key "${key}" ${detail}; it was not written by this store (hand-edited?). Repair or delete the key.`,
    cause === undefined ? {} : { cause },
  );
}

function toRange(key: string, member: string, begin: string, end: string): IdRange {
  const range = { beginId: BigInt(begin), endId: BigInt(end) };
  if (range.beginId > range.endId || range.endId > MAX_ID) throw corrupt(key, `holds the invalid range member ${JSON.stringify(member)}`);
  return range;
}

export function parseDoneMember(key: string, member: string): IdRange {
  const m = DONE_MEMBER.exec(member);
  if (!m) throw corrupt(key, `holds ${JSON.stringify(member)}, expected "<20-digit begin>:<20-digit end>"`);
  return toRange(key, member, m[1] as string, m[2] as string);
}

export function parseDeferredMember(key: string, member: string): RangeEntry {
  const m = DEFERRED_MEMBER.exec(member);
  if (!m) throw corrupt(key, `holds ${JSON.stringify(member)}, expected "<20-digit end>:<16-digit inverted cycle>:<20-digit begin>"`);
  const range = toRange(key, member, m[3] as string, m[1] as string);
  const cycle = Number(invertCycle(m[2] as string));
  if (!Number.isSafeInteger(cycle)) throw corrupt(key, `holds a cycle beyond 2^53 in ${JSON.stringify(member)}`);
  return { ...range, cycle };
}

/** Splits a failed-set member into its range, cycle and the JSON of the rest. */
export function splitFailedMember(key: string, member: string): { entry: RangeEntry; json: string } {
  const m = FAILED_MEMBER.exec(member);
  if (!m) throw corrupt(key, `holds ${JSON.stringify(member).slice(0, 200)}, expected "<end>:<begin>:<cycle>:<JSON>"`);
  const range = toRange(key, member, m[2] as string, m[1] as string);
  const cycle = Number(m[3]);
  if (!Number.isSafeInteger(cycle)) throw corrupt(key, `holds a cycle beyond 2^53 in ${JSON.stringify(member).slice(0, 200)}`);
  return { entry: { ...range, cycle }, json: m[4] as string };
}

export function failedMember(entry: RangeEntry, json: string): string {
  return `${failedPrefix(entry)}${padCycle(entry.cycle)}:${json}`;
}

/** `"<end>:<begin>:"`: every record of one range starts with it (a range keeps one record). */
export function failedPrefix(range: IdRange): string {
  return `${padId(range.endId)}:${padId(range.beginId)}:`;
}
