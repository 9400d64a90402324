import { SuperSpreaderError } from "@superspreader/core";
import type { JobState } from "@superspreader/core";
import { checkLookupIds, checkLookupStates } from "@superspreader/core/adapter";
import { quoteSchemaName } from "bullmq";
import type { JobReads } from "./lookup.js";
import type { PostgresPool } from "./validate.js";


/** BullMQ's job states on PostgreSQL (the `job_state` enum) as `lookup` answers them. */
const STATES: Readonly<Record<string, JobState>> = {
  waiting: "waiting",
  active: "active",
  completed: "completed",
  failed: "failed",
  delayed: "delayed",
  // A flow parent waiting for its children: not ready to run yet.
  "waiting-children": "delayed",
};

/**
 * {@link JobReads} on BullMQ's PostgreSQL tables: rows keyed `(queue, id)` in `<schema>.job`, one
 * per job in any state (a `state` enum column), deleted when retention evicts the job. Each read
 * is one indexed statement (so a lookup sees one snapshot). `ready` checks once that BullMQ's
 * functions are reachable through the pool. `schema` is the backend connection's (`"bullmq"` for
 * an injected pool).
 */
export function postgresJobReads(pool: PostgresPool, schema: string, queueName: string): JobReads {
  const table = `${quoteSchemaName(schema)}.job`;
  let checked: Promise<void> | undefined;
  return {
    async presentCount(ids) {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE queue = $1 AND id = ANY($2::text[])`, [queueName, ids]);
      return Number((rows[0] as { n?: unknown } | undefined)?.n ?? 0);
    },

    async lookup(ids) {
      checkLookupIds(ids);
      if (ids.length === 0) return [];
      const { rows } = await pool.query(`SELECT id, state::text AS state FROM ${table} WHERE queue = $1 AND id = ANY($2::text[])`, [
        queueName,
        ids,
      ]);
      const found = new Map((rows as Array<{ id: string; state: string }>).map((row) => [row.id, STATES[row.state] ?? row.state]));
      return checkLookupStates(
        ids.map((id) => found.get(id) ?? "missing"),
        ids.length,
      );
    },

    ready() {
      // BullMQ's SQL calls its functions unqualified, so with an injected pool they resolve only
      // through the pool's search_path; without it every call fails with "function add_jobs_bulk
      // (unknown, jsonb) does not exist", which says nothing about the fix.
      checked ??= (async () => {
        const { rows } = await pool
          .query(
            `SELECT to_regclass($1) IS NOT NULL AS migrated, to_regprocedure('add_jobs_bulk(text, jsonb)') IS NOT NULL AS reachable, current_setting('search_path') AS path`,
            [table],
          )
          .catch((error: unknown) => {
            const reason = error instanceof Error ? error.message : String(error);
            throw new SuperSpreaderError("ADAPTER_ERROR", `BullMQ queue ${JSON.stringify(queueName)} could not reach PostgreSQL: ${reason}`, { cause: error });
          });
        const row = rows[0] as { migrated: boolean; reachable: boolean; path: string } | undefined;
        if (!row?.migrated) {
          throw new SuperSpreaderError(
            "INVALID_STATE",
            `BullMQ's PostgreSQL schema ${JSON.stringify(schema)} has no job table: run BullMQ's migrations first (runMigrations(client) from "bullmq", on a client checked out of the pool)`,
            { field: "connection" },
          );
        }
        if (!row.reachable) {
          throw new SuperSpreaderError(
            "INVALID_ARGUMENT",
            `connection: the pg Pool's search_path (${JSON.stringify(row.path)}) does not reach BullMQ's schema ${JSON.stringify(schema)}; create the pool with options: "-c search_path=${schema}"`,
            { field: "connection" },
          );
        }
      })();
      checked.catch(() => {
        checked = undefined; // a lost connection or a later migration: check again next time
      });
      return checked;
    },
  };
}

/** Where a pool connects, without a password, for the worker's log lines. */
export function whereOfPool(pool: PostgresPool): string {
  const options = (pool as { options?: { host?: string; port?: number; database?: string; connectionString?: string } }).options ?? {};
  if (options.connectionString) {
    try {
      const url = new URL(options.connectionString);
      return `PostgreSQL at ${url.host}${url.pathname}`;
    } catch {
      return "PostgreSQL";
    }
  }
  return `PostgreSQL at ${options.host ?? "localhost"}:${options.port ?? 5432}/${options.database ?? ""}`;
}
