import { checkBudgetClaim, claimShare } from "./budget.js";
import { SuperSpreaderError } from "./errors.js";
import { mergeRanges, rangeSize } from "./ids.js";
import type { BudgetMember, ConfigChange, FailedRange, FailureCounts, IdRange, OutputEntry, OutstandingEntry, RangeEntry, RunMetrics, StateStore, Versioned } from "./ports.js";
import { checkOutput, checkOutputPage } from "./validate-store.js";
import { checkEntry, checkLimit, checkName, checkRange, checkRunId, checkStartRate, checkTime, checkTiming } from "./validate-args.js";

interface RunData {
  done: IdRange[];
  deferred: Map<string, RangeEntry>;
  failed: Map<string, FailedRange>;
  batchesDone: number;
  idsDone: bigint;
  batchesFailed: number;
  batchesDeferred: number;
  batchesLost: number;
  consecutiveFailures: number;
  lastDoneAt: number | null;
  minutes: Map<number, { ids: bigint; batches: number; failures: number; handlerMs: number; lateMs: number }>;
  outstanding: Map<string, OutstandingEntry>;
  /** Collected results in the order kept, the ranges they are keyed by, their bytes and what was dropped. */
  output: { entries: OutputEntry[]; keys: Set<string>; bytes: number; dropped: number };
}

const entryKey = (e: RangeEntry): string => `${e.beginId}:${e.endId}:${e.cycle}`;
const rangeKey = (r: IdRange): string => `${r.beginId}:${r.endId}`;

/** Highest endId first, then lowest cycle. */
function byEndDescThenCycle(a: RangeEntry, b: RangeEntry): number {
  if (a.endId !== b.endId) return a.endId > b.endId ? -1 : 1;
  return a.cycle - b.cycle;
}

/**
 * A `StateStore` in process memory: the embedded default, and the reference the
 * contract suite is written against. Every method is atomic because it runs to
 * completion without awaiting anything. Documents are deep-copied on the way in and
 * out, as a real store would serialise them.
 *
 * @example
 * ```ts
 * const spreader = createSuperSpreader({ queue: createMemoryJobQueue(), store: createMemoryStateStore() });
 * ```
 */
export function createMemoryStateStore(): StateStore {
  const docs = new Map<string, { version: number; json: string }>();
  /**
   * Start rate limits by run, as GCRA: `tat` is the theoretical arrival time of the next start (epoch ms);
   * a start conforms `burst - 1` intervals before it. Every request reserves the next slot.
   */
  const buckets = new Map<string, { perSecond: number | null; burst: number; tat: number }>();
  const budgets = new Map<string, Record<string, Omit<BudgetMember, "member">>>();
  const history = new Map<string, ConfigChange[]>();
  const runs = new Map<string, RunData>();

  const run = (name: string, runId: string): RunData => {
    const key = `${name}\u0000${runId}`;
    let data = runs.get(key);
    if (!data) {
      data = {
        done: [],
        deferred: new Map(),
        failed: new Map(),
        batchesDone: 0,
        idsDone: 0n,
        batchesFailed: 0,
        batchesDeferred: 0,
        batchesLost: 0,
        consecutiveFailures: 0,
        lastDoneAt: null,
        minutes: new Map(),
        outstanding: new Map(),
        output: { entries: [], keys: new Set(), bytes: 0, dropped: 0 },
      };
      runs.set(key, data);
    }
    return data;
  };

  const covers = (ledger: readonly IdRange[], range: IdRange): boolean =>
    ledger.some((r) => r.beginId <= range.beginId && r.endId >= range.endId);

  const bucketOf = (data: RunData, at: number) => {
    const minute = Math.floor(at / 60_000) * 60_000;
    let bucket = data.minutes.get(minute);
    if (!bucket) {
      bucket = { ids: 0n, batches: 0, failures: 0, handlerMs: 0, lateMs: 0 };
      data.minutes.set(minute, bucket);
      for (const m of data.minutes.keys()) if (m <= minute - 60 * 60_000) data.minutes.delete(m);
    }
    return bucket;
  };

  return {
    capabilities: {},
    async get(name): Promise<Versioned<unknown> | null> {
      checkName(name);
      const stored = docs.get(name);
      return stored ? { version: stored.version, value: JSON.parse(stored.json) as unknown } : null;
    },

    async readForStart(name, runId, at) {
      checkName(name);
      checkRunId(runId);
      checkTime(at, "at");
      const stored = docs.get(name);
      const doc = stored ? { version: stored.version, value: JSON.parse(stored.json) as unknown } : null;
      const bucket = buckets.get(`${name}\u0000${runId}`);
      if (!bucket || bucket.perSecond === null) return { doc, waitMs: 0 };
      if (bucket.perSecond === 0) return { doc, waitMs: Number.POSITIVE_INFINITY };
      const interval = 1000 / bucket.perSecond;
      const tat = Math.max(bucket.tat, at);
      const startAt = Math.max(at, tat - (bucket.burst - 1) * interval);
      bucket.tat = tat + interval;
      return { doc, waitMs: Math.ceil(startAt - at) };
    },

    async setStartRate(name, runId, perSecond, burst, at) {
      checkName(name);
      checkRunId(runId);
      checkStartRate(perSecond, burst);
      checkTime(at, "at");
      const key = `${name}\u0000${runId}`;
      // Slots already handed out stay reserved; the next one comes one interval of the new rate after
      // the last one (the stored tat is one old interval after it).
      const old = buckets.get(key);
      let tat = old?.tat ?? at;
      if (old && old.perSecond && perSecond) tat = tat - 1000 / old.perSecond + 1000 / perSecond;
      buckets.set(key, { perSecond, burst, tat });
    },

    async claimBudget(key, member, claim, at) {
      checkBudgetClaim(key, member, claim, at);
      const stored = budgets.get(key) ?? {};
      const { record, expired, members } = claimShare(stored, member, claim, at);
      const next = { ...stored, [member]: record };
      for (const name of expired) delete next[name];
      budgets.set(key, next);
      return { cap: record.cap, members };
    },

    async compareAndSet(name, expectedVersion, value) {
      checkName(name);
      if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `expectedVersion must be a whole number ≥ 0, got ${String(expectedVersion)}`, {
          field: "expectedVersion",
        });
      }
      const json = JSON.stringify(value);
      if (json === undefined) throw new SuperSpreaderError("INVALID_ARGUMENT", "value must be JSON-serialisable", { field: "value" });
      const current = docs.get(name)?.version ?? 0;
      if (current !== expectedVersion) return null;
      docs.set(name, { version: current + 1, json });
      return current + 1;
    },

    async list() {
      return [...docs.keys()].sort();
    },

    async appendConfigChange(name, change) {
      checkName(name);
      const list = history.get(name) ?? [];
      list.unshift(JSON.parse(JSON.stringify(change)) as ConfigChange);
      if (list.length > 1000) list.length = 1000;
      history.set(name, list);
    },

    async listConfigChanges(name, limit) {
      checkName(name);
      checkLimit(limit);
      return (history.get(name) ?? []).slice(0, limit).map((c) => JSON.parse(JSON.stringify(c)) as ConfigChange);
    },

    async markDone(name, runId, entry, at, timing) {
      checkName(name);
      checkRunId(runId);
      checkEntry(entry);
      checkTime(at, "at");
      if (timing !== undefined) checkTiming(timing);
      if (timing?.slotAt !== undefined) {
        // A start that reserved no slot is counted in the bucket at its slot, as a reservation there would be.
        const bucket = buckets.get(`${name}\u0000${runId}`);
        if (bucket && bucket.perSecond) bucket.tat = Math.max(bucket.tat, timing.slotAt) + 1000 / bucket.perSecond;
      }
      const data = run(name, runId);
      data.outstanding.delete(entryKey(entry));
      data.consecutiveFailures = 0;
      if (covers(data.done, entry)) return false;
      data.done = mergeRanges([...data.done, { beginId: entry.beginId, endId: entry.endId }]);
      data.batchesDone += 1;
      data.idsDone += rangeSize(entry);
      data.lastDoneAt = at;
      const bucket = bucketOf(data, at);
      bucket.ids += rangeSize(entry);
      bucket.batches += 1;
      if (timing) {
        bucket.handlerMs += timing.handlerMs;
        bucket.lateMs += timing.lateMs;
      }
      return true;
    },

    async listDone(name, runId) {
      checkName(name);
      checkRunId(runId);
      return run(name, runId).done.map((r) => ({ beginId: r.beginId, endId: r.endId }));
    },

    async addDeferred(name, runId, entry) {
      checkName(name);
      checkRunId(runId);
      checkEntry(entry);
      const data = run(name, runId);
      const key = entryKey(entry);
      data.outstanding.delete(key);
      if (data.deferred.has(key)) return;
      data.deferred.set(key, { beginId: entry.beginId, endId: entry.endId, cycle: entry.cycle });
      data.batchesDeferred += 1;
    },

    async listDeferred(name, runId, limit) {
      checkName(name);
      checkRunId(runId);
      checkLimit(limit);
      return [...run(name, runId).deferred.values()].sort(byEndDescThenCycle).slice(0, limit);
    },

    async removeDeferred(name, runId, entries) {
      checkName(name);
      checkRunId(runId);
      const data = run(name, runId);
      for (const e of entries) data.deferred.delete(entryKey(e));
    },

    async addFailed(name, runId, failure) {
      checkName(name);
      checkRunId(runId);
      checkEntry(failure);
      const data = run(name, runId);
      data.outstanding.delete(entryKey(failure));
      data.failed.set(rangeKey(failure), { ...failure });
      data.batchesFailed += 1;
    },

    async recordFailure(name, runId, at): Promise<FailureCounts> {
      checkName(name);
      checkRunId(runId);
      checkTime(at, "at");
      const data = run(name, runId);
      data.consecutiveFailures += 1;
      bucketOf(data, at).failures += 1;
      const minute = Math.floor(at / 60_000) * 60_000;
      let recentFailures = 0;
      let recentDone = 0;
      for (const m of [minute, minute - 60_000]) {
        const b = data.minutes.get(m);
        if (b) {
          recentFailures += b.failures;
          recentDone += b.batches;
        }
      }
      return { consecutive: data.consecutiveFailures, recentFailures, recentDone };
    },

    async addOutstanding(name, runId, entries) {
      checkName(name);
      checkRunId(runId);
      for (const e of entries) {
        checkEntry(e);
        checkTime(e.checkAt, "checkAt");
      }
      const data = run(name, runId);
      for (const e of entries) data.outstanding.set(entryKey(e), { beginId: e.beginId, endId: e.endId, cycle: e.cycle, checkAt: e.checkAt });
    },

    async listOutstanding(name, runId, dueBefore, limit) {
      checkName(name);
      checkRunId(runId);
      checkTime(dueBefore, "dueBefore");
      checkLimit(limit);
      return [...run(name, runId).outstanding.values()]
        .filter((e) => e.checkAt <= dueBefore)
        .sort((a, b) => a.checkAt - b.checkAt || byEndDescThenCycle(a, b))
        .slice(0, limit)
        .map((e) => ({ ...e }));
    },

    async touchOutstanding(name, runId, entries, checkAt) {
      checkName(name);
      checkRunId(runId);
      for (const e of entries) checkEntry(e);
      checkTime(checkAt, "checkAt");
      const data = run(name, runId);
      for (const e of entries) {
        const current = data.outstanding.get(entryKey(e));
        if (current) data.outstanding.set(entryKey(e), { ...current, checkAt });
      }
    },

    async reclaimOutstanding(name, runId, entries) {
      checkName(name);
      checkRunId(runId);
      for (const e of entries) checkEntry(e);
      const data = run(name, runId);
      const moved: RangeEntry[] = [];
      for (const e of entries) {
        const key = entryKey(e);
        if (!data.outstanding.delete(key)) continue;
        if (covers(data.done, e)) continue;
        const entry = { beginId: e.beginId, endId: e.endId, cycle: e.cycle };
        if (!data.deferred.has(key)) {
          data.deferred.set(key, entry);
          data.batchesDeferred += 1;
        }
        data.batchesLost += 1;
        moved.push(entry);
      }
      return moved;
    },

    async listFailed(name, runId, limit) {
      checkName(name);
      checkRunId(runId);
      checkLimit(limit);
      return [...run(name, runId).failed.values()].sort(byEndDescThenCycle).slice(0, limit).map((f) => ({ ...f }));
    },

    async requeueFailed(name, runId, since) {
      checkName(name);
      checkRunId(runId);
      if (since !== undefined) checkTime(since, "since");
      const data = run(name, runId);
      const moved = [...data.failed.values()].filter((f) => since === undefined || f.at >= since);
      for (const f of moved) {
        const entry: RangeEntry = { beginId: f.beginId, endId: f.endId, cycle: f.cycle };
        if (!data.deferred.has(entryKey(entry))) {
          data.deferred.set(entryKey(entry), entry);
          data.batchesDeferred += 1;
        }
      }
      for (const f of moved) data.failed.delete(rangeKey(f));
      return moved.length;
    },

    async metrics(name, runId): Promise<RunMetrics> {
      checkName(name);
      checkRunId(runId);
      const data = run(name, runId);
      const recent = [...data.minutes.entries()]
        .sort((a, b) => a[0] - b[0])
        .slice(-60)
        .map(([minute, b]) => ({ minute, ids: b.ids.toString(), batches: b.batches, failures: b.failures, handlerMs: b.handlerMs, lateMs: b.lateMs }));
      return {
        batchesDone: data.batchesDone,
        idsDone: data.idsDone.toString(),
        batchesFailed: data.batchesFailed,
        batchesDeferred: data.batchesDeferred,
        batchesLost: data.batchesLost,
        consecutiveFailures: data.consecutiveFailures,
        lastDoneAt: data.lastDoneAt,
        recent,
      };
    },

    async addOutput(name, runId, entry, maxBytes) {
      checkName(name);
      checkRunId(runId);
      const bytes = checkOutput(entry, maxBytes);
      const output = run(name, runId).output;
      const key = rangeKey(entry);
      if (output.keys.has(key)) return "exists";
      if (output.bytes + bytes > maxBytes) {
        output.dropped += 1;
        return "full";
      }
      output.keys.add(key);
      output.entries.push({ beginId: entry.beginId, endId: entry.endId, at: entry.at, result: entry.result });
      output.bytes += bytes;
      return "added";
    },

    async listOutput(name, runId, cursor, limit) {
      checkName(name);
      checkRunId(runId);
      checkOutputPage(cursor, limit);
      const { entries, bytes, dropped } = run(name, runId).output;
      const page = entries.slice(cursor, cursor + limit).map((e) => ({ ...e }));
      return { entries: page, next: cursor + limit < entries.length ? cursor + limit : null, count: entries.length, bytes, dropped };
    },

    async close() {},
  };
}
