/**
 * Health indicators for bench/autotune.ts: a load signal for PostgreSQL written against core's public
 * `HealthIndicator` type (the built-ins of @superspreader/source-drizzle read replication lag, long
 * transactions, autovacuum, lock waits and connections, none of which a CPU-bound foreground workload
 * moves), and a wrapper that records every reading for the report.
 */
import type { HealthIndicator, HealthLevel, HealthReading } from "@superspreader/core";
import type pg from "pg";

/** Options of {@link createPgActiveSessionsIndicator}. */
export interface ActiveSessionsOptions {
  /** A small pool of its own (set `application_name` so its sessions are left out). */
  readonly pool: pg.Pool;
  /** The application_name of the indicators' own sessions, left out of the count. */
  readonly ownApplicationName: string;
  /** Mean active sessions at or above which it says slow. */
  readonly slow: number;
  /** Mean active sessions at or above which it says stop (null: never). */
  readonly stop: number | null;
  /** Samples per poll, `spacingMs` apart: one sample of a fast-changing gauge is mostly noise. */
  readonly samples?: number;
  readonly spacingMs?: number;
}

/**
 * PostgreSQL's `Threads_running`: client backends in state `active` (running a statement, or waiting
 * for CPU, I/O or a lock while doing so), averaged over a few samples. When it stays above the cores,
 * statements queue for CPU and every session's latency grows (Vitess: load average 1 per core;
 * pt-osc: `--max-load Threads_running=25` on large servers).
 */
export function createPgActiveSessionsIndicator(options: ActiveSessionsOptions): HealthIndicator {
  const samples = options.samples ?? 5;
  const spacingMs = options.spacingMs ?? 50;
  const query = `select count(*)::int as n from pg_stat_activity
    where backend_type = 'client backend' and state = 'active' and pid <> pg_backend_pid() and application_name <> $1`;
  return async ({ signal }): Promise<HealthReading> => {
    const client = await options.pool.connect();
    try {
      let sum = 0;
      for (let i = 0; i < samples; i++) {
        if (signal.aborted) throw new Error("active sessions: poll timed out");
        // pg_stat_activity is a snapshot per transaction: each sample is its own statement outside one.
        const { rows } = await client.query<{ n: number }>(query, [options.ownApplicationName]);
        sum += rows[0]?.n ?? 0;
        if (i < samples - 1) await new Promise((r) => setTimeout(r, spacingMs));
      }
      const value = Math.round((sum / samples) * 100) / 100;
      const level: HealthLevel = options.stop !== null && value >= options.stop ? "stop" : value >= options.slow ? "slow" : "ok";
      const threshold = level === "stop" ? `≥ ${options.stop}` : level === "slow" ? `≥ ${options.slow}` : `< ${options.slow}`;
      return { level, reason: `${value} active sessions (mean of ${samples}) ${threshold}`, value };
    } finally {
      client.release();
    }
  };
}

/** One recorded reading. */
export interface RecordedReading {
  /** Seconds since `t0()`. */
  readonly t: number;
  readonly name: string;
  readonly level: HealthLevel | "error";
  readonly value: number | null;
  readonly reason: string;
}

/** Wraps an indicator so that each reading (or error) is appended to `log` under `name`. */
export function recorded(name: string, indicator: HealthIndicator, log: RecordedReading[], t0: () => number): HealthIndicator {
  return async (context) => {
    try {
      const reading = await indicator(context);
      log.push({ t: (Date.now() - t0()) / 1000, name, level: reading.level, value: reading.value, reason: reading.reason });
      return reading;
    } catch (error) {
      log.push({ t: (Date.now() - t0()) / 1000, name, level: "error", value: null, reason: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  };
}
