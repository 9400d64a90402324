/**
 * One side of bench/memory.ts: runs the scheduler for a fixed number of cycles over
 * ids 1..maxId and prints its memory after GC as one JSON line.
 * Run with `node --expose-gc`. Args: maxId cycles
 *
 * The clock is manual and the queue keeps only the jobs of the current cycle (each
 * tick's batches run right after it, through the runtime, into the in-memory store),
 * so what is measured is the runtime and its store, not a queue retaining every job.
 * Samples are taken halfway (after V8 has grown its heap to its working size, which
 * takes a few hundred cycles) and at the end.
 */
import { createManualClock, createMemoryIdSource, createMemoryStateStore, createSuperSpreader } from "@superspreader/core";
import type { EnqueueResult, JobContext, JobQueue, QueueJob } from "@superspreader/core";

const [maxIdArg = "1000000", cyclesArg = "500"] = process.argv.slice(2);
const maxId = BigInt(maxIdArg);
const cycles = Number(cyclesArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

let pending: QueueJob[] = [];
const queue: JobQueue = {
  capabilities: { priorities: false },
  async enqueue(jobs: readonly QueueJob[]): Promise<EnqueueResult> {
    pending.push(...jobs);
    return { added: jobs.length, duplicates: 0 };
  },
  counts: async () => ({ waiting: pending.length, delayed: 0, active: 0, failed: 0 }),
  // Jobs of earlier cycles were all performed (and recorded) before the next tick runs.
  lookup: async (ids) => ids.map((id) => (pending.some((job) => job.id === id) ? "waiting" : "missing")),
  close: async () => {},
};

const clock = createManualClock(Date.parse("2026-01-05T03:00:00Z"));
const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock });
// 100 batches of 10 ids per cycle: 1,000 ids a cycle, so 10^6 ids last 1,000 cycles.
spreader.define("memory", {
  source: createMemoryIdSource({ minId: 1n, maxId }),
  config: { batchSize: 10, duration: 10, perSecondOnPeak: 10, perSecondOffPeak: 10 },
  async handle() {},
});
const context: JobContext = { attempt: 1, maxAttempts: 3, signal: new AbortController().signal };

const sample = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
};

await spreader.start("memory");
const samples: Array<ReturnType<typeof sample> & { cycle: number }> = [];
let batches = 0;
for (let cycle = 0; cycle < cycles; cycle++) {
  const jobs = pending;
  pending = [];
  for (const job of jobs) {
    clock.set(job.runAt);
    await spreader.perform(job.data, context);
    if (job.data.kind === "batch") batches += 1;
  }
  if (cycle === Math.floor(cycles / 2) || cycle === cycles - 1) samples.push({ cycle, ...sample() });
}
const status = await spreader.status("memory");
console.log(JSON.stringify({ maxId: maxIdArg, cycles, batches, idsDone: status.progress.idsDone.toString(), cycle: status.cycle, samples }));
