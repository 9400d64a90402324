import { MAX_ID, SuperSpreaderError, isSuperSpreaderError, padId, rangeSize } from "@superspreader/core";
import type { BudgetMember, ConfigChange, FailedRange, FailureCounts, IdRange, OutputAdded, OutputEntry, RangeEntry, RunMetrics, StateStore, Versioned } from "@superspreader/core";
import {
  NAME_PATTERN,
  checkBudgetClaim,
  claimShare,
  checkEntry,
  checkLimit,
  checkName,
  checkOutput,
  checkOutputPage,
  checkRunId,
  checkStartRate,
  checkTime,
  checkTiming,
  describeValue,
  invalidOption,
} from "@superspreader/core/adapter";
import type { Cluster, Redis } from "ioredis";
import {
  type BackfillKeys,
  type RunKeys,
  backfillKeys,
  budgetKey,
  corrupt,
  deferredMember,
  failedMember,
  failedPrefix,
  minuteFields,
  namesKey,
  outstandingMember,
  outstandingMemberOf,
  parseDeferredMember,
  parseDoneMember,
  parseOutstanding,
  runKeys,
  splitFailedMember,
} from "./keys.js";
import { defineScripts, parseCorruptReply } from "./scripts.js";
import { checkClient, checkConfigChange, checkEntries, checkExpectedVersion, checkFailure, checkPrefix, toJson } from "./validate.js";

/** Options of {@link createRedisStateStore}. */
export interface RedisStateStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster` instance (ioredis 5.4+ or 6). The store registers
   * its Lua scripts on it (`defineCommand`, names starting with `superspreader`) and
   * never closes it. Required.
   *
   * @default none (required)
   */
  readonly client: Redis | Cluster;
  /**
   * Prefix of every key the store writes: `<prefix>:{<name>}:…` per backfill and
   * `<prefix>:names` for the index. Must not be empty nor contain `{` or `}`
   * (the braces around the backfill name are the Redis Cluster hash tag).
   *
   * @default "superspreader"
   */
  readonly prefix?: string;
}

/** How many configuration changes a backfill keeps (newest first). */
const CONFIG_CHANGES_KEPT = 1000;
/** Per-minute metric buckets older than this (relative to the newest completion) are dropped. */
const BUCKET_WINDOW_MS = 60 * 60_000;

/**
 * Creates a {@link StateStore} on an injected ioredis client.
 *
 * Every method is one round trip: an atomic Lua script, or a single command where
 * that is atomic by itself (`addOutstanding` and `touchOutstanding` are one `ZADD`).
 * `markDone`, the per-batch hot path, is a single `EVALSHA` that also removes the
 * batch's outstanding entry and resets the consecutive-failure count. All keys of a
 * backfill share the hash tag `{name}`, so it works on Redis Cluster.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { createSuperSpreader } from "@superspreader/core";
 * import { createRedisStateStore } from "@superspreader/store-redis";
 *
 * const redis = new Redis(process.env.REDIS_URL!);
 * const store = createRedisStateStore({ client: redis, prefix: "backfills" });
 * const spreader = createSuperSpreader({ queue, store });
 * ```
 */
export function createRedisStateStore(options: RedisStateStoreOptions): StateStore {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", `must be an object with a client, got ${describeValue(options)}`);
  }
  checkClient(options.client);
  const prefix = options.prefix ?? "superspreader";
  checkPrefix(prefix);
  const client = options.client;
  defineScripts(client);
  const names = namesKey(prefix);
  let closed = false;

  /**
   * Runs one Redis call, turning its failures into superspreader errors. `key` is the
   * one a plain command's WRONGTYPE is about; scripts name the offending key themselves.
   */
  async function call<T>(operation: string, key: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw translate(error, operation, key);
    }
  }

  function ensureOpen(operation: string): void {
    if (closed) {
      throw new SuperSpreaderError("INVALID_STATE", `${operation}: this Redis state store was closed; create a new one with createRedisStateStore()`);
    }
  }

  /** Checks the store is open and the name valid; the backfill's keys. */
  function backfill(operation: string, name: string): BackfillKeys {
    ensureOpen(operation);
    checkName(name);
    return backfillKeys(prefix, name);
  }

  /** Checks the store is open and name and runId valid; the run's keys. */
  function runOf(operation: string, name: string, runId: string): RunKeys {
    ensureOpen(operation);
    checkName(name);
    checkRunId(runId);
    return runKeys(prefix, name, runId);
  }

  /** A document hash's fields as a Versioned, or null when it does not exist. */
  function versioned(doc: string, version: string | undefined, value: string | undefined): Versioned<unknown> | null {
    if (version === undefined && value === undefined) return null;
    if (version === undefined || !/^[1-9]\d{0,14}$/.test(version)) {
      throw corrupt(doc, version === undefined ? "has no version field" : `has version = ${JSON.stringify(version)}, expected a whole number ≥ 1`);
    }
    if (value === undefined) throw corrupt(doc, "has no value field");
    return { version: Number(version), value: parseJson(doc, value) };
  }

  return {
    capabilities: {},
    async get(name): Promise<Versioned<unknown> | null> {
      const { doc } = backfill("get", name);
      const fields = await call("get", doc, () => client.hgetall(doc));
      if (Object.keys(fields).length === 0) return null;
      return versioned(doc, fields.version, fields.value);
    },

    async readForStart(name, runId, at) {
      const { doc } = backfill("readForStart", name);
      const { start } = runOf("readForStart", name, runId);
      checkTime(at, "at");
      const [version, value, wait] = await call("readForStart", start, () => client.superspreaderReadForStart(doc, start, String(at)));
      return { doc: versioned(doc, version ?? undefined, value ?? undefined), waitMs: wait === "inf" ? Number.POSITIVE_INFINITY : Number(wait) };
    },

    async setStartRate(name, runId, perSecond, burst, at) {
      const { start } = runOf("setStartRate", name, runId);
      checkStartRate(perSecond, burst);
      checkTime(at, "at");
      await call("setStartRate", start, () => client.superspreaderSetStartRate(start, perSecond === null ? "none" : String(perSecond), String(burst), String(at)));
    },

    async claimBudget(key, member, claim, at) {
      ensureOpen("claimBudget");
      checkBudgetClaim(key, member, claim, at);
      const budget = budgetKey(prefix, key);
      // Optimistic: read the members, compute the claim, write it if nobody claimed in between.
      for (let round = 0; round < 50; round++) {
        const fields = await call("claimBudget", budget, () => client.hgetall(budget));
        const stored: Record<string, Omit<BudgetMember, "member">> = {};
        for (const [field, json] of Object.entries(fields)) {
          if (field === "_v") continue;
          const record = parseJson(budget, json) as Partial<BudgetMember> | null;
          if (!record || typeof record.weight !== "number" || typeof record.want !== "number" || typeof record.cap !== "number" || typeof record.at !== "number") {
            throw corrupt(budget, `holds member ${JSON.stringify(field)} = ${JSON.stringify(json)}, expected { weight, want, cap, at }`);
          }
          stored[field] = { weight: record.weight, want: record.want, cap: record.cap, at: record.at };
        }
        const { record, expired, members } = claimShare(stored, member, claim, at);
        const written = await call("claimBudget", budget, () =>
          client.superspreaderClaimBudget(budget, fields._v ?? "0", member, JSON.stringify(record), ...expired),
        );
        if (written !== 0) return { cap: record.cap, members };
      }
      throw new SuperSpreaderError("CONFLICT", `budget "${key}": claims kept changing under 50 attempts; try again`);
    },

    async compareAndSet(name, expectedVersion, value) {
      const { doc } = backfill("compareAndSet", name);
      checkExpectedVersion(expectedVersion);
      const json = toJson(value, "value");
      // The index lives outside the backfill's slot, so it cannot join the script.
      // Written first, it may name a backfill whose document is not there yet (list()
      // leaves those out), but never misses one that is.
      if (expectedVersion === 0) await call("compareAndSet", names, () => client.sadd(names, name));
      const version = await call("compareAndSet", doc, () => client.superspreaderCompareAndSet(doc, String(expectedVersion), json));
      return version === 0 ? null : Number(version);
    },

    async list() {
      ensureOpen("list");
      const members = (await call("list", names, () => client.smembers(names))).filter((name) => NAME_PATTERN.test(name));
      const exists = await Promise.all(
        members.map((name) => {
          const { doc } = backfillKeys(prefix, name);
          return call("list", doc, () => client.exists(doc));
        }),
      );
      return members.filter((_, i) => exists[i] === 1).sort();
    },

    async appendConfigChange(name, change) {
      const { configChanges } = backfill("appendConfigChange", name);
      checkConfigChange(change);
      const json = toJson(change, "change");
      await call("appendConfigChange", configChanges, () =>
        client.superspreaderAppendConfigChange(configChanges, json, String(CONFIG_CHANGES_KEPT)),
      );
    },

    async listConfigChanges(name, limit) {
      const { configChanges } = backfill("listConfigChanges", name);
      checkLimit(limit);
      const items = await call("listConfigChanges", configChanges, () => client.lrange(configChanges, 0, limit - 1));
      return items.map((item) => parseConfigChange(configChanges, item));
    },

    async addOutput(name, runId, entry, maxBytes) {
      const keys = runOf("addOutput", name, runId);
      const bytes = checkOutput(entry, maxBytes);
      const json = JSON.stringify({ b: entry.beginId.toString(), e: entry.endId.toString(), at: entry.at, r: entry.result });
      const field = `${padId(entry.beginId)}:${padId(entry.endId)}`;
      const added = await call("addOutput", keys.output, () => client.superspreaderAddOutput(keys.output, keys.outputIndex, field, json, String(bytes), String(maxBytes)));
      if (added !== "added" && added !== "exists" && added !== "full") throw corrupt(keys.outputIndex, `answered ${JSON.stringify(added)} to addOutput`);
      return added as OutputAdded;
    },

    async listOutput(name, runId, cursor, limit) {
      const keys = runOf("listOutput", name, runId);
      checkOutputPage(cursor, limit);
      const [count, bytes, dropped, items] = await call("listOutput", keys.output, () =>
        client.superspreaderListOutput(keys.output, keys.outputIndex, String(cursor), String(cursor + limit - 1)),
      );
      const entries = items.map((item) => parseOutputItem(keys.output, item));
      const total = Number(count);
      return { entries, next: cursor + limit < total ? cursor + limit : null, count: total, bytes: Number(bytes), dropped: Number(dropped) };
    },

    async markDone(name, runId, entry, at, timing) {
      const keys = runOf("markDone", name, runId);
      checkEntry(entry);
      checkTime(at, "at");
      if (timing !== undefined) checkTiming(timing);
      const { minute, cutoff } = minuteFields(at, BUCKET_WINDOW_MS);
      const { beginId, endId } = entry;
      const begin = padId(beginId);
      const end = padId(endId);
      const added = await call("markDone", keys.done, () =>
        client.superspreaderMarkDone(
          keys.done,
          keys.metrics,
          keys.minutes,
          keys.outstanding,
          keys.start,
          begin,
          end,
          beginId === 0n ? "" : padId(beginId - 1n),
          endId === MAX_ID ? "" : padId(endId + 1n),
          rangeSize(entry).toString(),
          String(at),
          minute,
          cutoff,
          outstandingMemberOf(begin, end, entry.cycle),
          ...(timing === undefined ? [] : [String(timing.handlerMs), String(timing.lateMs), ...(timing.slotAt === undefined ? [] : [String(timing.slotAt)])]),
        ),
      );
      return added === 1;
    },

    async listDone(name, runId) {
      const { done } = runOf("listDone", name, runId);
      const members = await call("listDone", done, () => client.zrangebylex(done, "-", "+"));
      const ranges = members.map((member) => parseDoneMember(done, member));
      for (let i = 1; i < ranges.length; i++) {
        const previous = ranges[i - 1] as IdRange;
        if ((ranges[i] as IdRange).beginId <= previous.endId + 1n) {
          throw corrupt(done, `holds overlapping or adjacent ranges ${JSON.stringify(members[i - 1])} and ${JSON.stringify(members[i])}`);
        }
      }
      return ranges;
    },

    async addDeferred(name, runId, entry) {
      const keys = runOf("addDeferred", name, runId);
      checkEntry(entry);
      await call("addDeferred", keys.deferred, () =>
        client.superspreaderAddDeferred(keys.deferred, keys.metrics, keys.outstanding, deferredMember(entry), outstandingMember(entry)),
      );
    },

    async listDeferred(name, runId, limit) {
      const { deferred } = runOf("listDeferred", name, runId);
      checkLimit(limit);
      const members = await call("listDeferred", deferred, () => client.zrevrangebylex(deferred, "+", "-", "LIMIT", 0, limit));
      return members.map((member) => parseDeferredMember(deferred, member));
    },

    async removeDeferred(name, runId, entries) {
      const { deferred } = runOf("removeDeferred", name, runId);
      checkEntries(entries);
      if (entries.length === 0) return;
      await call("removeDeferred", deferred, () => client.zrem(deferred, ...entries.map(deferredMember)));
    },

    async addFailed(name, runId, failure) {
      const keys = runOf("addFailed", name, runId);
      checkFailure(failure);
      const { error, errorName, attempts, at } = failure;
      const member = failedMember(failure, toJson({ error, errorName, attempts, at }, "failure"));
      await call("addFailed", keys.failed, () =>
        client.superspreaderAddFailed(keys.failed, keys.metrics, keys.outstanding, failedPrefix(failure), member, outstandingMember(failure)),
      );
    },

    async recordFailure(name, runId, at): Promise<FailureCounts> {
      const keys = runOf("recordFailure", name, runId);
      checkTime(at, "at");
      const { minute, previous, cutoff } = minuteFields(at, BUCKET_WINDOW_MS);
      const [consecutive, recentFailures, recentDone] = await call("recordFailure", keys.metrics, () =>
        client.superspreaderRecordFailure(keys.metrics, keys.minutes, minute, previous, cutoff),
      );
      return { consecutive: Number(consecutive), recentFailures: Number(recentFailures), recentDone: Number(recentDone) };
    },

    async addOutstanding(name, runId, entries) {
      const { outstanding } = runOf("addOutstanding", name, runId);
      checkEntries(entries, true);
      if (entries.length === 0) return;
      // A plain ZADD: atomic on its own, and adding an entry again only moves its score.
      const args = entries.flatMap((e) => [String(e.checkAt), outstandingMember(e)]);
      await call("addOutstanding", outstanding, () => client.zadd(outstanding, ...args));
    },

    async listOutstanding(name, runId, dueBefore, limit) {
      const { outstanding } = runOf("listOutstanding", name, runId);
      checkTime(dueBefore, "dueBefore");
      checkLimit(limit);
      const flat = await call("listOutstanding", outstanding, () =>
        client.superspreaderListOutstanding(outstanding, String(dueBefore), String(limit)),
      );
      const entries = [];
      for (let i = 0; i + 1 < flat.length; i += 2) entries.push(parseOutstanding(outstanding, String(flat[i]), String(flat[i + 1])));
      return entries;
    },

    async touchOutstanding(name, runId, entries, checkAt) {
      const { outstanding } = runOf("touchOutstanding", name, runId);
      checkEntries(entries);
      checkTime(checkAt, "checkAt");
      if (entries.length === 0) return;
      // XX: only members that exist, so an entry recorded meanwhile is not brought back.
      const score = String(checkAt);
      const args = entries.flatMap((e) => [score, outstandingMember(e)]);
      await call("touchOutstanding", outstanding, () => client.zadd(outstanding, "XX", ...args));
    },

    async reclaimOutstanding(name, runId, entries): Promise<RangeEntry[]> {
      const keys = runOf("reclaimOutstanding", name, runId);
      checkEntries(entries);
      if (entries.length === 0) return [];
      const args = entries.flatMap((e) => [outstandingMember(e), deferredMember(e), padId(e.beginId), padId(e.endId)]);
      const moved = await call("reclaimOutstanding", keys.outstanding, () =>
        client.superspreaderReclaimOutstanding(keys.outstanding, keys.done, keys.deferred, keys.metrics, ...args),
      );
      return moved.map((position) => {
        const { beginId, endId, cycle } = entries[Number(position) - 1] as RangeEntry;
        return { beginId, endId, cycle };
      });
    },

    async listFailed(name, runId, limit) {
      const { failed } = runOf("listFailed", name, runId);
      checkLimit(limit);
      const members = await call("listFailed", failed, () => client.zrevrangebylex(failed, "+", "-", "LIMIT", 0, limit));
      return members.map((member) => parseFailedMember(failed, member));
    },

    async requeueFailed(name, runId, since) {
      const keys = runOf("requeueFailed", name, runId);
      if (since !== undefined) checkTime(since, "since");
      const moved = await call("requeueFailed", keys.failed, () =>
        client.superspreaderRequeueFailed(keys.failed, keys.deferred, keys.metrics, since === undefined ? "" : String(since)),
      );
      return Number(moved);
    },

    async metrics(name, runId): Promise<RunMetrics> {
      const keys = runOf("metrics", name, runId);
      const [counters, minutes] = await call("metrics", keys.metrics, () =>
        client.superspreaderReadMetrics(keys.metrics, keys.minutes),
      );
      return parseMetrics(keys.metrics, pairs(counters), keys.minutes, pairs(minutes));
    },

    async close() {
      closed = true;
    },
  };
}

function translate(error: unknown, operation: string, key: string): Error {
  if (isSuperSpreaderError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const reported = parseCorruptReply(message);
  if (reported) return corrupt(reported.key, reported.detail, error);
  if (message.includes("WRONGTYPE")) return corrupt(key, "holds a value of the wrong Redis type", error);
  return new SuperSpreaderError("ADAPTER_ERROR", `Redis state store: ${operation} failed: ${message}`, { cause: error });
}

/** A collected-result list item as an entry; CORRUPT_DATA naming the key for anything this store did not write. */
function parseOutputItem(key: string, item: string): OutputEntry {
  const v = parseJson(key, item) as { b?: unknown; e?: unknown; at?: unknown; r?: unknown } | null;
  const id = (x: unknown) => typeof x === "string" && /^\d{1,20}$/.test(x);
  if (v === null || typeof v !== "object" || !id(v.b) || !id(v.e) || typeof v.at !== "number" || typeof v.r !== "string") {
    throw corrupt(key, `holds ${JSON.stringify(item.slice(0, 100))}, expected JSON { b, e, at, r }`);
  }
  return { beginId: BigInt(v.b as string), endId: BigInt(v.e as string), at: v.at, result: v.r };
}

function parseJson(key: string, json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    throw corrupt(key, `holds invalid JSON ${JSON.stringify(json.slice(0, 100))}`, error);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseConfigChange(key: string, json: string): ConfigChange {
  const value = parseJson(key, json);
  if (
    !isPlainObject(value) ||
    typeof value.at !== "number" ||
    typeof value.actor !== "string" ||
    (value.reason !== undefined && typeof value.reason !== "string") ||
    !isPlainObject(value.changes)
  ) {
    throw corrupt(key, `holds ${JSON.stringify(json.slice(0, 100))}, expected a configuration change { at, actor, reason?, changes }`);
  }
  const change = value as unknown as ConfigChange;
  const { at, actor, reason, changes } = change;
  return reason === undefined ? { at, actor, changes } : { at, actor, reason, changes };
}

function parseFailedMember(key: string, member: string): FailedRange {
  const { entry, json } = splitFailedMember(key, member);
  const value = parseJson(key, json);
  if (
    !isPlainObject(value) ||
    typeof value.error !== "string" ||
    typeof value.errorName !== "string" ||
    !Number.isSafeInteger(value.attempts) ||
    typeof value.at !== "number"
  ) {
    throw corrupt(key, `holds ${JSON.stringify(member.slice(0, 200))}, expected a failure record { error, errorName, attempts, at }`);
  }
  return { ...entry, error: value.error, errorName: value.errorName, attempts: value.attempts as number, at: value.at };
}

/** A flat `[field, value, …]` reply as a map. */
function pairs(flat: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i] as string, flat[i + 1] as string);
  return map;
}

function parseMetrics(metricsKey: string, counters: Map<string, string>, minutesKey: string, minutes: Map<string, string>): RunMetrics {
  const count = (field: string): number => {
    const raw = counters.get(field);
    if (raw === undefined) return 0;
    if (!/^\d{1,15}$/.test(raw)) throw corrupt(metricsKey, `has ${field} = ${JSON.stringify(raw)}, expected a whole number`);
    return Number(raw);
  };
  const idsDone = counters.get("idsDone") ?? "0";
  if (!/^\d+$/.test(idsDone)) throw corrupt(metricsKey, `has idsDone = ${JSON.stringify(idsDone)}, expected a decimal`);
  const rawLastDoneAt = counters.get("lastDoneAt");
  let lastDoneAt: number | null = null;
  if (rawLastDoneAt !== undefined) {
    // Written with String(at): any finite number core accepts, in JavaScript's own notation.
    lastDoneAt = /^-?\d+(\.\d+)?(e[+-]\d+)?$/.test(rawLastDoneAt) ? Number(rawLastDoneAt) : Number.NaN;
    if (!Number.isFinite(lastDoneAt)) throw corrupt(metricsKey, `has lastDoneAt = ${JSON.stringify(rawLastDoneAt)}, expected epoch ms`);
  }
  const recent = [...minutes].map(([field, raw]) => {
    const m = /^(\d+):(\d{1,15})(?::(\d{1,15})(?::(\d{1,15}):(\d{1,15}))?)?$/.exec(raw);
    const minute = /^-?\d+$/.test(field) ? Number(field) : Number.NaN;
    if (!Number.isFinite(minute) || !m) {
      throw corrupt(minutesKey, `has ${JSON.stringify(field)} = ${JSON.stringify(raw)}, expected <minute epoch ms> = "<ids>:<batches>[:<failures>[:<ms>:<late>]]"`);
    }
    return {
      minute,
      ids: BigInt(m[1] as string).toString(),
      batches: Number(m[2]),
      failures: Number(m[3] ?? 0),
      handlerMs: Number(m[4] ?? 0),
      lateMs: Number(m[5] ?? 0),
    };
  });
  recent.sort((a, b) => a.minute - b.minute);
  return {
    batchesDone: count("batchesDone"),
    idsDone: BigInt(idsDone).toString(),
    batchesFailed: count("batchesFailed"),
    batchesDeferred: count("batchesDeferred"),
    batchesLost: count("batchesLost"),
    consecutiveFailures: count("consecutiveFailures"),
    lastDoneAt,
    recent: recent.slice(-60),
  };
}
