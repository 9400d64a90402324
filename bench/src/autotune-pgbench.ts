/**
 * pgbench as the foreground workload of bench/autotune.ts: found next to the PostgreSQL binaries
 * (as scripts/servers finds them), initialised once, then run for a fixed time with a
 * per-transaction log (`-l`) for percentiles and `-P 1` for its own per-second progress lines.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The pgbench binary next to the postgres one (the directories scripts/servers looks in), or on PATH. */
export function findPgbench(): string {
  const dirs = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"];
  const pgBin = dirs.find((d) => existsSync(join(d, "postgres")));
  if (pgBin && existsSync(join(pgBin, "pgbench"))) return join(pgBin, "pgbench");
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, "pgbench"))) return join(dir, "pgbench");
  throw new Error("pgbench not found next to the PostgreSQL binaries (apt-get install -y postgresql-contrib or postgresql)");
}

/** libpq environment for a postgres:// URL, so pgbench needs no connection flags. */
function pgEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port || "5432",
    PGUSER: decodeURIComponent(u.username || "postgres"),
    PGDATABASE: u.pathname.slice(1) || "postgres",
    ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}),
  };
}

/** `pgbench -i -s <scale>` (TPC-B-like tables: scale × 100,000 accounts). */
export function initPgbench(bin: string, url: string, scale: number): void {
  execFileSync(bin, ["-i", "-q", "-s", String(scale)], { env: pgEnv(url), stdio: "pipe" });
}

/** One `-P 1` progress line. */
export interface PgbenchProgress {
  readonly second: number;
  readonly tps: number;
  readonly latencyAvgMs: number;
  readonly latencyStddevMs: number;
  readonly lagMs: number | null;
}

/** One transaction from the `-l` log: completion time (epoch ms) and latency (ms). */
export interface PgbenchTxn {
  readonly at: number;
  readonly ms: number;
}

export interface PgbenchRun {
  readonly txns: PgbenchTxn[];
  readonly progress: PgbenchProgress[];
  /** When pgbench was started (epoch ms). */
  readonly startedAt: number;
  readonly args: readonly string[];
}

/** Options of one pgbench run. */
export interface PgbenchOptions {
  readonly clients: number;
  readonly seconds: number;
  /** Target transactions per second (`--rate`), or 0 for as fast as it goes. */
  readonly rate: number;
}

/**
 * Starts pgbench for `seconds` (TPC-B-like read/write script) and resolves with every transaction's
 * latency and the progress lines once it exits. With `--rate`, pgbench measures latency from each
 * transaction's scheduled start, so time spent behind schedule counts as latency, as a user would see it.
 */
export function runPgbench(bin: string, url: string, options: PgbenchOptions): { done: Promise<PgbenchRun> } {
  const dir = mkdtempSync(join(tmpdir(), "ss-pgbench-"));
  const args = ["-n", "-c", String(options.clients), "-j", "1", "-T", String(options.seconds), "-P", "1", "-l", `--log-prefix=${join(dir, "txn")}`];
  if (options.rate > 0) args.push("-R", String(options.rate));
  const startedAt = Date.now();
  const child = spawn(bin, args, { env: pgEnv(url), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const done = new Promise<PgbenchRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      try {
        if (code !== 0) throw new Error(`pgbench exited with ${code}: ${stderr.slice(-2000)}`);
        const txns: PgbenchTxn[] = [];
        for (const file of readdirSync(dir)) {
          for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
            // client_id transaction_no time script_no time_epoch time_us [schedule_lag]
            const f = line.split(" ");
            if (f.length < 6) continue;
            const us = Number(f[2]);
            if (!Number.isFinite(us)) continue; // "skipped" transactions (only with --latency-limit)
            txns.push({ at: Number(f[4]) * 1000 + Number(f[5]) / 1000, ms: us / 1000 });
          }
        }
        const progress: PgbenchProgress[] = [];
        const re = /progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+) ms stddev ([\d.]+|NaN)(?:, lag ([\d.]+) ms)?/g;
        for (const m of (stderr + stdout).matchAll(re)) {
          progress.push({ second: Number(m[1]), tps: Number(m[2]), latencyAvgMs: Number(m[3]), latencyStddevMs: Number(m[4]), lagMs: m[5] === undefined ? null : Number(m[5]) });
        }
        txns.sort((a, b) => a.at - b.at);
        resolve({ txns, progress, startedAt, args });
      } catch (error) {
        reject(error);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  return { done };
}

/** The q-quantile (0..1) of a list, nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** Latency percentiles and throughput of the transactions that completed in `[from, to)` (epoch ms). */
export function windowStats(txns: readonly PgbenchTxn[], from: number, to: number): { p50: number; p95: number; p99: number; tps: number; n: number } {
  const ms = txns.filter((t) => t.at >= from && t.at < to).map((t) => t.ms);
  return { p50: quantile(ms, 0.5), p95: quantile(ms, 0.95), p99: quantile(ms, 0.99), tps: ms.length / Math.max(0.001, (to - from) / 1000), n: ms.length };
}

/** Per-second p95, p99 and tps from `from` (epoch ms) for `seconds` seconds. */
export function perSecond(txns: readonly PgbenchTxn[], from: number, seconds: number): Array<{ t: number; p95: number; p99: number; tps: number }> {
  const buckets: number[][] = Array.from({ length: seconds }, () => []);
  for (const t of txns) {
    const i = Math.floor((t.at - from) / 1000);
    if (i >= 0 && i < seconds) buckets[i]?.push(t.ms);
  }
  return buckets.map((b, t) => ({ t, p95: quantile(b, 0.95), p99: quantile(b, 0.99), tps: b.length }));
}
