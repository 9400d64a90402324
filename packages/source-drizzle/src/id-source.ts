import { SuperSpreaderError, isSuperSpreaderError, parseId } from "@superspreader/core";
import { and, sql } from "drizzle-orm";
import type { IdSource } from "@superspreader/core";
import type { SQL } from "drizzle-orm";
import { idRange } from "./range.js";
import { parseDbId, reasonOf, resolveTarget, selectText } from "./target.js";
import type { Target, TargetOptions } from "./target.js";

/** Options of {@link createDrizzleIdSource}. */
export interface DrizzleIdSourceOptions extends TargetOptions {}

/** Runs a query for the source, turning a driver failure into an `ADAPTER_ERROR` that names the column. */
async function query<T>(target: Target, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isSuperSpreaderError(error)) throw error;
    const reason = reasonOf(error);
    throw new SuperSpreaderError("ADAPTER_ERROR", `${what} of ${target.label} failed: ${reason}`, { cause: error });
  }
}

/** `MIN(column)` or `MAX(column)` within scope, exactly, or null for no rows. */
export async function readBound(target: Target, fn: "min" | "max"): Promise<bigint | null> {
  const aggregate: SQL = fn === "min" ? sql`min(${target.column})` : sql`max(${target.column})`;
  const what = fn === "min" ? "MIN" : "MAX";
  return query(target, what, async () => {
    const [value] = await selectText(target, aggregate, target.where);
    return value === null || value === undefined ? null : parseDbId(value, target, what);
  });
}

/**
 * An IdSource over a table's integer key: `minId()`/`maxId()` are `MIN`/`MAX` of
 * `column` within the optional `where` scope, read exactly (as text) so ids beyond
 * 2^53 survive. Works with node-postgres, PGlite, mysql2 and any other drizzle
 * driver of those dialects; the dialect is taken from the table. The db is used,
 * never closed.
 *
 * Throws `INVALID_ARGUMENT` at creation when the column is not an integer column
 * of the table, or the table is neither a PostgreSQL nor a MySQL table.
 *
 * @example
 * ```ts
 * import { drizzle } from "drizzle-orm/node-postgres";
 * import pg from "pg";
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const source = createDrizzleIdSource({ db, table: messages, column: messages.id, where: isNull(messages.deletedAt) });
 * ```
 */
export function createDrizzleIdSource(options: DrizzleIdSourceOptions): IdSource {
  const target = resolveTarget(options, "createDrizzleIdSource");
  return {
    capabilities: {
      countRange: async (beginId, endId) => {
        const range = idRange(target.column, parseId(beginId, "beginId"), parseId(endId, "endId"));
        return query(target, "count", async () => {
          const [value] = await selectText(target, sql`count(*)`, and(range, target.where));
          return parseDbId(value, target, "count");
        });
      },
    },
    minId: () => readBound(target, "min"),
    maxId: () => readBound(target, "max"),
  };
}
