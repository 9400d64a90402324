/**
 * Scheduler memory against the size of the id space (issue #5): the runtime runs the
 * same number of cycles (ticks and their batches) over ids 1..10^6 and 1..10^12, each in
 * a child process of its own, and reports RSS after GC. Target: within 10% (ratio 0.9–1.1).
 *
 *   pnpm --filter @superspreader/bench memory
 *   BENCH_CYCLES=800 BENCH_ROUNDS=3 pnpm --filter @superspreader/bench memory
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { median, round, writeResult } from "./src/report.js";

const CYCLES = Number(process.env.BENCH_CYCLES ?? 800);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SPACES = { small: "1000000", large: "1000000000000" } as const;

interface Sample {
  readonly cycle: number;
  readonly rss: number;
  readonly heapUsed: number;
}
interface ChildResult {
  readonly batches: number;
  readonly idsDone: string;
  readonly samples: readonly Sample[];
}

function runChild(maxId: string): ChildResult {
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "--conditions", "@superspreader/source", fileURLToPath(new URL("./src/memory-child.ts", import.meta.url)), maxId, String(CYCLES)],
    { cwd: fileURLToPath(new URL(".", import.meta.url)), encoding: "utf8" },
  );
  return JSON.parse(out.trim().split("\n").pop() ?? "{}") as ChildResult;
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1);
const results: Record<keyof typeof SPACES, ChildResult[]> = { small: [], large: [] };
for (let r = 0; r < ROUNDS; r++) {
  // Alternating order, so neither side always runs on a warmer machine.
  for (const side of (r % 2 === 0 ? ["small", "large"] : ["large", "small"]) as Array<keyof typeof SPACES>) {
    const result = runChild(SPACES[side]);
    results[side].push(result);
    const last = result.samples[result.samples.length - 1];
    console.log(`round ${r + 1}/${ROUNDS} ids 1..${SPACES[side]}: ${result.batches} batches, RSS ${mib(last?.rss ?? 0)} MiB, heap ${mib(last?.heapUsed ?? 0)} MiB`);
  }
}

const at = (side: keyof typeof SPACES, field: "rss" | "heapUsed", which: "halfway" | "last") =>
  median(results[side].map((res) => (which === "last" ? res.samples[res.samples.length - 1] : res.samples[0])?.[field] ?? 0));
const rssRatio = at("large", "rss", "last") / at("small", "rss", "last");
const heapRatio = at("large", "heapUsed", "last") / at("small", "heapUsed", "last");
console.log(
  `RSS after GC at the end (median): 10^6 ids ${mib(at("small", "rss", "last"))} MiB, 10^12 ids ${mib(at("large", "rss", "last"))} MiB → ` +
    `ratio ${rssRatio.toFixed(3)} (target 0.9–1.1); heap used ratio ${heapRatio.toFixed(3)}; ` +
    `growth from cycle ${Math.floor(CYCLES / 2)} to ${CYCLES - 1}: ${mib(at("small", "rss", "last") - at("small", "rss", "halfway"))} / ${mib(at("large", "rss", "last") - at("large", "rss", "halfway"))} MiB`,
);
const path = writeResult("memory", "memory", {
  cycles: CYCLES,
  rounds: ROUNDS,
  batchesPerCycle: 100,
  batchSize: 10,
  note: "RSS and heap after two forced GCs, halfway and at the last cycle; in-memory store, manual clock, a queue that keeps only the current cycle's jobs. " +
    "Each cycle runs one tick and its 100 batches through the runtime.",
  mib: Object.fromEntries(
    (Object.keys(SPACES) as Array<keyof typeof SPACES>).map((side) => [
      `ids 1..${SPACES[side]}`,
      {
        rssEnd: mib(at(side, "rss", "last")),
        rssHalfway: mib(at(side, "rss", "halfway")),
        heapUsedEnd: mib(at(side, "heapUsed", "last")),
        heapUsedHalfway: mib(at(side, "heapUsed", "halfway")),
        rssEndAllRounds: results[side].map((res) => mib(res.samples[res.samples.length - 1]?.rss ?? 0)),
      },
    ]),
  ),
  ratios: { rss: round(rssRatio, 3), heapUsed: round(heapRatio, 3) },
  targetMet: rssRatio >= 0.9 && rssRatio <= 1.1,
});
console.log(`wrote ${path}`);
