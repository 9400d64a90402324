import { SuperSpreaderError } from "./errors.js";
import { mergeRanges, rangeSize } from "./ids.js";
import type { ConfigChange, FailedRange, IdRange, RangeEntry, RunMetrics, StateStore, Versioned } from "./ports.js";
import { checkLimit, checkName, checkRange, checkRunId } from "./validate-args.js";

interface RunData {
  done: IdRange[];
  deferred: Map<string, RangeEntry>;
  failed: Map<string, FailedRange>;
  batchesDone: number;
  idsDone: bigint;
  batchesFailed: number;
  batchesDeferred: number;
  lastDoneAt: number | null;
  minutes: Map<number, { ids: bigint; batches: number }>;
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
        lastDoneAt: null,
        minutes: new Map(),
      };
      runs.set(key, data);
    }
    return data;
  };

  const covers = (ledger: readonly IdRange[], range: IdRange): boolean =>
    ledger.some((r) => r.beginId <= range.beginId && r.endId >= range.endId);

  return {
    async get(name): Promise<Versioned<unknown> | null> {
      checkName(name);
      const stored = docs.get(name);
      return stored ? { version: stored.version, value: JSON.parse(stored.json) as unknown } : null;
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

    async markDone(name, runId, range, at) {
      checkName(name);
      checkRunId(runId);
      checkRange(range);
      const data = run(name, runId);
      if (covers(data.done, range)) return false;
      data.done = mergeRanges([...data.done, { beginId: range.beginId, endId: range.endId }]);
      data.batchesDone += 1;
      data.idsDone += rangeSize(range);
      data.lastDoneAt = at;
      const minute = Math.floor(at / 60_000) * 60_000;
      const bucket = data.minutes.get(minute) ?? { ids: 0n, batches: 0 };
      bucket.ids += rangeSize(range);
      bucket.batches += 1;
      data.minutes.set(minute, bucket);
      for (const m of data.minutes.keys()) if (m <= minute - 60 * 60_000) data.minutes.delete(m);
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
      checkRange(entry);
      const data = run(name, runId);
      const key = entryKey(entry);
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
      checkRange(failure);
      const data = run(name, runId);
      data.failed.set(rangeKey(failure), { ...failure });
      data.batchesFailed += 1;
    },

    async listFailed(name, runId, limit) {
      checkName(name);
      checkRunId(runId);
      checkLimit(limit);
      return [...run(name, runId).failed.values()].sort(byEndDescThenCycle).slice(0, limit).map((f) => ({ ...f }));
    },

    async requeueFailed(name, runId) {
      checkName(name);
      checkRunId(runId);
      const data = run(name, runId);
      const moved = [...data.failed.values()];
      for (const f of moved) {
        const entry: RangeEntry = { beginId: f.beginId, endId: f.endId, cycle: f.cycle };
        if (!data.deferred.has(entryKey(entry))) {
          data.deferred.set(entryKey(entry), entry);
          data.batchesDeferred += 1;
        }
      }
      data.failed.clear();
      return moved.length;
    },

    async metrics(name, runId): Promise<RunMetrics> {
      checkName(name);
      checkRunId(runId);
      const data = run(name, runId);
      const recent = [...data.minutes.entries()]
        .sort((a, b) => a[0] - b[0])
        .slice(-60)
        .map(([minute, b]) => ({ minute, ids: b.ids.toString(), batches: b.batches }));
      return {
        batchesDone: data.batchesDone,
        idsDone: data.idsDone.toString(),
        batchesFailed: data.batchesFailed,
        batchesDeferred: data.batchesDeferred,
        lastDoneAt: data.lastDoneAt,
        recent,
      };
    },

    async close() {},
  };
}
