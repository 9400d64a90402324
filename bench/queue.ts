/**
 * The in-memory queue's claim cost (issue #13): µs per `claim()` of `createMemoryJobQueue` with
 * 1,000 / 20,000 / 100,000 pending jobs, this tree's queue (a heap) against the scan-based one of
 * commit `BENCH_BASELINE_QUEUE` (default 658fb4e), loaded with src/baseline.ts, in the same run.
 *
 * Each measurement fills a fresh queue with N due jobs (run times shuffled over the past hour, a
 * tenth of them with a priority), claims one (timed apart: the heap sorts every job that became
 * due into its due-order heap on that first claim), then claims `BENCH_CLAIMS` more (default
 * 1,000; only the `claim()` calls are timed) and settles each as done (untimed), so the pending
 * count stays about N.
 * The order of the two versions alternates round to round; medians, and the median of per-round ratios.
 *
 *   pnpm --filter @superspreader/bench queue
 *   BENCH_PENDING=1000,20000,100000 BENCH_CLAIMS=1000 BENCH_ROUNDS=5 pnpm --filter @superspreader/bench queue
 */
import { createMemoryJobQueue } from "@superspreader/core";
import type { QueueJob } from "@superspreader/core";
import { loadBaseline } from "./src/baseline.js";
import { median, round, writeResult } from "./src/report.js";

const PENDING = (process.env.BENCH_PENDING ?? "1000,20000,100000").split(",").map(Number);
const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 1_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BASELINE = process.env.BENCH_BASELINE_QUEUE ?? "658fb4e";

type Core = typeof import("@superspreader/core");
const before = await loadBaseline<Core>("core", BASELINE);
const VERSIONS = [
  { label: "after", create: createMemoryJobQueue },
  { label: "before", create: before.createMemoryJobQueue as unknown as typeof createMemoryJobQueue },
] as const;

/** `n` due batch jobs, run times shuffled over the past hour, one in ten with a priority. */
function jobs(n: number): QueueJob[] {
  const now = Date.now();
  const out: QueueJob[] = [];
  for (let i = 0; i < n; i++) {
    const runAt = now - 3_600_000 + Math.floor(Math.random() * 3_500_000);
    out.push({
      id: `q.r0.b0.${i}-${i}`,
      runAt,
      attempts: 3,
      ...(i % 10 === 0 ? { priority: 1_000 } : {}),
      data: { kind: "batch", backfill: "q", runId: "r0000000000a", cycle: 0, beginId: String(i), endId: String(i), scheduledAt: runAt },
    });
  }
  return out;
}

/**
 * From a queue of `n` pending due jobs: ms of the first claim() (the heap moves every job that
 * became due into its due-order heap then, once), and µs per claim() over the next `CLAIMS`.
 */
async function measure(create: typeof createMemoryJobQueue, n: number): Promise<{ firstMs: number; us: number }> {
  const queue = create();
  const all = jobs(n + CLAIMS + 1);
  for (let i = 0; i < all.length; i += 10_000) await queue.enqueue(all.slice(i, i + 10_000));
  const t0 = performance.now();
  const first = queue.claim();
  const firstMs = performance.now() - t0;
  if (first) queue.settle(first.job.id, { outcome: "done" });
  let claimMs = 0;
  for (let i = 0; i < CLAIMS; i++) {
    const t = performance.now();
    const record = queue.claim();
    claimMs += performance.now() - t;
    if (!record) throw new Error(`claim ${i} of ${n + CLAIMS} due jobs returned null`);
    queue.settle(record.job.id, { outcome: "done" });
  }
  await queue.close();
  return { firstMs, us: (claimMs * 1000) / CLAIMS };
}

// Warm-up (untimed).
for (const v of VERSIONS) await measure(v.create, 1_000);

const results: Record<string, unknown> = {};
for (const n of PENDING) {
  const us: Record<"after" | "before", number[]> = { after: [], before: [] };
  const firstMs: Record<"after" | "before", number[]> = { after: [], before: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of r % 2 === 0 ? VERSIONS : [...VERSIONS].reverse()) {
      const m = await measure(v.create, n);
      us[v.label].push(m.us);
      firstMs[v.label].push(m.firstMs);
    }
  }
  const after = median(us.after);
  const beforeUs = median(us.before);
  const ratio = median(us.before.map((b, i) => b / (us.after[i] ?? Number.NaN)));
  results[String(n)] = {
    pending: n,
    usPerClaim: { after: round(after, 3), before: round(beforeUs, 3) },
    // The fastest round: a claim takes microseconds, so one preemption by another process shows in a round's mean.
    minUsPerClaim: { after: round(Math.min(...us.after), 3), before: round(Math.min(...us.before), 3) },
    firstClaimMs: { after: round(median(firstMs.after), 2), before: round(median(firstMs.before), 2) },
    beforeOverAfter: round(beforeUs / after, 1),
    beforeOverAfterPerRoundMedian: round(ratio, 1),
    all: { after: us.after.map((v) => round(v, 3)), before: us.before.map((v) => round(v, 3)) },
  };
  console.log(
    `${n} pending: ${after.toFixed(2)} µs per claim (heap, this tree) vs ${beforeUs.toFixed(2)} µs (${BASELINE}) → ${(beforeUs / after).toFixed(1)}× (per-round ${ratio.toFixed(1)}×); ` +
      `fastest round ${Math.min(...us.after).toFixed(2)} vs ${Math.min(...us.before).toFixed(2)} µs; ` +
      `first claim ${median(firstMs.after).toFixed(1)} ms vs ${median(firstMs.before).toFixed(1)} ms`,
  );
}

const path = writeResult("queue", "queue", {
  claims: CLAIMS,
  rounds: ROUNDS,
  baselineCommit: BASELINE,
  note:
    "createMemoryJobQueue claim() cost with N due jobs pending: usPerClaim over the claims after the first (only claim() timed, each claimed job settled " +
    "done untimed); firstClaimMs is the first claim after all N became due (the heap promotes them all then). 'before' is the baseline commit's core.",
  results,
});
console.log(`wrote ${path}`);
