import { MAX_ID, SuperSpreaderError, padId } from "@superspreader/core";
import type { IdRange, OutstandingEntry, RangeEntry } from "@superspreader/core";

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
 * <prefix>:{<name>}:run:<runId>:outstanding   zset    "<~end>:<cycle>:<begin>" score checkAt
 * <prefix>:{<name>}:run:<runId>:metrics       hash    batchesDone, idsDone, batchesFailed, batchesDeferred,
 *                                                     batchesLost, consecutiveFailures, lastDoneAt
 * <prefix>:{<name>}:run:<runId>:minutes       hash    <minute epoch ms> -> "<ids>:<batches>[:<failures>]"
 * <prefix>:{<name>}:run:<runId>:output        list    JSON { b, e, at, r } per collected result, oldest first
 * <prefix>:{<name>}:run:<runId>:output-index  hash    "<begin>:<end>" -> 1 per kept result, _bytes, _dropped
 * <prefix>:budget:{<key>}                      hash    _v -> version, <member> -> JSON { weight, want, cap, at }
 * ```
 * Ids are 20-digit zero-padded decimals and cycles 16-digit ones, so lexicographic
 * order is numeric order and no id ever becomes a Lua number. `~cycle` is the nines'
 * complement of the padded cycle, so a reverse lex scan yields the highest end first
 * and then the lowest cycle. `~end` is the nines' complement of the padded end: members
 * of equal score sort by member, so a forward scan by score yields, among entries due at
 * the same instant, the highest end first and then the lowest cycle (the order of the
 * in-memory store). A bucket with no failures keeps the two-part form that versions
 * before outstanding entries wrote and read.
 */
export interface BackfillKeys {
  readonly doc: string;
  readonly configChanges: string;
}

export interface RunKeys {
  /** The run's start rate limit: a hash of `perSecond`, `burst` and `tat` (GCRA). */
  readonly start: string;
  readonly done: string;
  readonly deferred: string;
  readonly failed: string;
  readonly outstanding: string;
  readonly metrics: string;
  readonly minutes: string;
  /** Collected results (a list) and their index: ranges kept, bytes, dropped (a hash). */
  readonly output: string;
  readonly outputIndex: string;
}

/** Width of a padded cycle: every safe integer fits 16 digits. */
const CYCLE_WIDTH = 16;
const CYCLE_NINES = 10n ** BigInt(CYCLE_WIDTH) - 1n;

export function namesKey(prefix: string): string {
  return `${prefix}:names`;
}

/** A shared rate budget's members (one hash, in its own slot: claims touch only it). */
export function budgetKey(prefix: string, key: string): string {
  return `${prefix}:budget:{${key}}`;
}

export function backfillKeys(prefix: string, name: string): BackfillKeys {
  const base = `${prefix}:{${name}}`;
  return { doc: `${base}:doc`, configChanges: `${base}:config-changes` };
}

export function runKeys(prefix: string, name: string, runId: string): RunKeys {
  const base = `${prefix}:{${name}}:run:${runId}`;
  return {
    start: `${base}:start`,
    done: `${base}:done`,
    deferred: `${base}:deferred`,
    failed: `${base}:failed`,
    outstanding: `${base}:outstanding`,
    metrics: `${base}:metrics`,
    minutes: `${base}:minutes`,
    output: `${base}:output`,
    outputIndex: `${base}:output-index`,
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

/** `"<~end>:<cycle>:<begin>"`: see the layout above. */
export function outstandingMember(entry: RangeEntry): string {
  return outstandingMemberOf(padId(entry.beginId), padId(entry.endId), entry.cycle);
}

const HALF_NINES = 9_999_999_999;

/**
 * The same from ids already padded (markDone pads them anyway). The nines' complement
 * is taken on two 10-digit halves as plain numbers: cheaper than BigInt arithmetic on
 * the per-batch path.
 */
export function outstandingMemberOf(paddedBegin: string, paddedEnd: string, cycle: number): string {
  const high = String(HALF_NINES - Number(paddedEnd.slice(0, 10))).padStart(10, "0");
  const low = String(HALF_NINES - Number(paddedEnd.slice(10))).padStart(10, "0");
  return `${high}${low}:${padCycle(cycle)}:${paddedBegin}`;
}

const DONE_MEMBER = /^(\d{20}):(\d{20})$/;
const OUTSTANDING_MEMBER = /^(\d{20}):(\d{16}):(\d{20})$/;
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

/** An outstanding-set member and its score (as Redis formats a double) as an entry. */
export function parseOutstanding(key: string, member: string, score: string): OutstandingEntry {
  const m = OUTSTANDING_MEMBER.exec(member);
  if (!m) throw corrupt(key, `holds ${JSON.stringify(member)}, expected "<20-digit inverted end>:<16-digit cycle>:<20-digit begin>"`);
  const range = toRange(key, member, m[3] as string, (MAX_ID - BigInt(m[1] as string)).toString());
  const cycle = Number(m[2]);
  if (!Number.isSafeInteger(cycle)) throw corrupt(key, `holds a cycle beyond 2^53 in ${JSON.stringify(member)}`);
  const checkAt = Number(score);
  // Redis allows ±inf scores; a stored entry always has a finite checkAt.
  if (!Number.isFinite(checkAt)) throw corrupt(key, `holds ${JSON.stringify(member)} with the score ${JSON.stringify(score)}, expected a finite checkAt`);
  return { ...range, cycle, checkAt };
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

const MINUTE_MS = 60_000;

/** Whole-number doubles as plain digits (`String()` writes 1e21 and above in exponent form). */
const digits = (n: number): string => (Number.isSafeInteger(n) ? String(n) : BigInt(n).toString());

/**
 * Fields of the minutes hash for a time `at` (any finite epoch ms, as core allows): its
 * bucket, the bucket before it, and the newest bucket old enough to drop.
 */
export function minuteFields(at: number, keepMs: number): { minute: string; previous: string; cutoff: string } {
  const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
  return { minute: digits(minute), previous: digits(minute - MINUTE_MS), cutoff: digits(minute - keepMs) };
}
