/**
 * What `markDone`, the per-batch hot path, costs inside Redis and end to end.
 *
 * Each round writes one fresh backfill: 10,000 completions of 100-id batches in cycles of
 * 500, completed in shuffled order within groups of 16 (as concurrent workers finish
 * them), one every 60 ms of store time (a new minute bucket every 1,000). When the store
 * has outstanding entries, each cycle's entries are recorded first, as the runtime does,
 * so every `markDone` really removes one. Reported per round: Redis's own time per
 * `EVALSHA` (`INFO commandstats` usec_per_call, reset before the round's completions; only
 * `markDone` runs scripts then), the commands the script ran inside Redis per call (a
 * figure that does not depend on the machine's load), and the wall time of an awaited
 * call on loopback. The figures are medians over the rounds.
 *
 *   bench/node_modules/.bin/tsx --conditions=@superspreader/source packages/store-redis/bench/mark-done.ts
 *
 * It starts its own redis-server (so nothing else is counted) unless SUPERSPREADER_REDIS_URL
 * is set. BENCH_ROUNDS (default 7) and BENCH_BATCHES (default 10000) change the size.
 * BENCH_BASELINE=<path of another version's src/index.ts> compares: rounds alternate
 * between the two stores (each on its own connection, since both register scripts under
 * the same names), in rotating order, and the median of per-pair ratios is reported too.
 */
import { performance } from "node:perf_hooks";
import type { OutstandingEntry, StateStore } from "@superspreader/core";
import { Redis } from "ioredis";
import { startRedis, type RunningServer } from "../../../scripts/servers/servers.js";
import { createRedisStateStore } from "../src/index.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 10_000);
const CYCLE = 500;
const GROUP = 16;
const T0 = Date.UTC(2026, 11, 1);

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Batch indexes in completion order: shuffled within groups of GROUP. */
function completionOrder(seed: number): number[] {
  const random = lcg(seed);
  const order: number[] = [];
  for (let g = 0; g < BATCHES; g += GROUP) {
    const group = Array.from({ length: Math.min(GROUP, BATCHES - g) }, (_, i) => g + i);
    for (let i = group.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [group[i], group[j]] = [group[j] as number, group[i] as number];
    }
    order.push(...group);
  }
  return order;
}

const entryOf = (i: number) => ({ beginId: BigInt(i * 100 + 1), endId: BigInt(i * 100 + 100), cycle: Math.floor(i / CYCLE) });

/** CPU time the redis-server process has used (user + system, µs): unlike wall time, not inflated by a busy machine. */
async function serverCpuUs(client: Redis): Promise<number> {
  const info = await client.info("cpu");
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
  return (user + sys) * 1e6;
}

/**
 * From `INFO commandstats`: the EVALSHA calls and their mean time, and the commands the
 * scripts ran inside Redis (Redis counts those under their own names), less `topLevel`
 * commands the round itself sent.
 */
async function scriptStats(client: Redis, topLevel: number): Promise<{ calls: number; usecPerCall: number; inner: number }> {
  const info = await client.info("commandstats");
  let calls = 0;
  let usecPerCall = Number.NaN;
  let inner = -topLevel;
  for (const m of info.matchAll(/cmdstat_([\w|]+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/g)) {
    const [, command, n, perCall] = m as unknown as [string, string, string, string];
    if (command === "evalsha") {
      calls = Number(n);
      usecPerCall = Number(perCall);
    } else if (!/^(info|config\|resetstat)$/.test(command)) inner += Number(n);
  }
  return { calls, usecPerCall, inner };
}

async function round(
  client: Redis,
  store: StateStore,
  r: number,
): Promise<{ usecPerCall: number; wallUsPerCall: number; wallMedianUs: number; cpuUsPerCall: number; calls: number; innerPerCall: number }> {
  const name = `bench-${r}`;
  const run = "r1";
  const tracks = typeof (store as Partial<StateStore>).addOutstanding === "function" && process.env.BENCH_NO_TRACK === undefined;
  const order = completionOrder(r + 1);
  await client.config("RESETSTAT");
  let wall = 0;
  const each: number[] = [];
  let cpu = 0;
  let topLevel = 0;
  for (let c = 0; c < BATCHES; c += CYCLE) {
    if (tracks) {
      topLevel += 1;
      const entries: OutstandingEntry[] = [];
      for (let i = c; i < Math.min(BATCHES, c + CYCLE); i++) entries.push({ ...entryOf(i), checkAt: T0 + i * 60 + 60_000 });
      await store.addOutstanding(name, run, entries);
    }
    const cpuBefore = await serverCpuUs(client);
    for (let k = c; k < Math.min(BATCHES, c + CYCLE); k++) {
      const i = order[k] as number;
      const started = performance.now();
      await store.markDone(name, run, entryOf(i), T0 + k * 60);
      const took = performance.now() - started;
      wall += took;
      each.push(took);
    }
    cpu += (await serverCpuUs(client)) - cpuBefore;
  }
  const stats = await scriptStats(client, topLevel);
  return {
    usecPerCall: stats.usecPerCall,
    calls: stats.calls,
    wallUsPerCall: (wall * 1000) / BATCHES,
    wallMedianUs: median(each) * 1000,
    cpuUsPerCall: cpu / BATCHES,
    innerPerCall: stats.inner / stats.calls,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

type Factory = typeof createRedisStateStore;
type Result = Awaited<ReturnType<typeof round>>;

const summarise = (results: Result[]) => ({
  redisUsecPerMarkDone: median(results.map((x) => x.usecPerCall)),
  redisCpuUsPerMarkDone: Math.round(median(results.map((x) => x.cpuUsPerCall)) * 100) / 100,
  commandsInsideRedisPerMarkDone: Math.round(median(results.map((x) => x.innerPerCall)) * 1000) / 1000,
  wallUsPerMarkDone: Math.round(median(results.map((x) => x.wallUsPerCall)) * 10) / 10,
  wallMedianUsPerMarkDone: Math.round(median(results.map((x) => x.wallMedianUs)) * 10) / 10,
  perRound: results.map((x) => ({ usecPerCall: x.usecPerCall, wallUsPerCall: Math.round(x.wallUsPerCall * 10) / 10, evalsha: x.calls })),
});

async function main(): Promise<void> {
  let server: RunningServer | null = null;
  const url = process.env.SUPERSPREADER_REDIS_URL ?? (server = await startRedis()).url;
  const baseline = process.env.BENCH_BASELINE;
  const factories: Array<[string, Factory]> = [["current", createRedisStateStore]];
  if (baseline) factories.push(["baseline", ((await import(baseline)) as { createRedisStateStore: Factory }).createRedisStateStore]);
  const clients = factories.map(() => new Redis(url));
  try {
    const stores = factories.map(([label, factory], k) => factory({ client: clients[k] as Redis, prefix: `bench-mark-done-${label}-${Date.now()}` }));
    // Warm-up: loads the scripts, fills the allocator, and lets the JIT settle.
    for (const store of stores) for (let i = 0; i < 2_000; i++) await store.markDone("warm-up", "r1", entryOf(i), T0 + i * 60);
    const results: Result[][] = factories.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < stores.length; j++) {
        const k = (r + j) % stores.length; // rotate who goes first
        (results[k] as Result[]).push(await round(clients[k] as Redis, stores[k] as StateStore, r));
      }
    }
    const summary: Record<string, unknown> = { batches: BATCHES, rounds: ROUNDS, redis: (await clients[0]!.info("server")).match(/redis_version:(\S+)/)?.[1] };
    factories.forEach(([label], k) => (summary[label] = summarise(results[k] as Result[])));
    if (baseline) {
      const [current, base] = results as [Result[], Result[]];
      summary.ratioRedisCpu = Math.round(median(current.map((c, r) => c.cpuUsPerCall / (base[r] as Result).cpuUsPerCall)) * 1000) / 1000;
      summary.ratioRedisUsec = Math.round(median(current.map((c, r) => c.usecPerCall / (base[r] as Result).usecPerCall)) * 1000) / 1000;
      summary.ratioWall = Math.round(median(current.map((c, r) => c.wallUsPerCall / (base[r] as Result).wallUsPerCall)) * 1000) / 1000;
      summary.ratioWallMedian = Math.round(median(current.map((c, r) => c.wallMedianUs / (base[r] as Result).wallMedianUs)) * 1000) / 1000;
    }
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    for (const client of clients) client.disconnect();
    await server?.stop();
  }
}

await main();
