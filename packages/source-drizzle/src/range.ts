import { SuperSpreaderError, parseId } from "@superspreader/core";
import { Column, and, asc, is, sql } from "drizzle-orm";
import { PgColumn } from "drizzle-orm/pg-core";
import type { IdLike } from "@superspreader/core";
import type { SQL } from "drizzle-orm";
import { parseDbId, resolveTarget, selectText } from "./target.js";
import type { TargetOptions } from "./target.js";

/**
 * A drizzle condition `column BETWEEN beginId AND endId` (both inclusive), for
 * either dialect. Ids are parsed exactly (bigint, safe integer or decimal string)
 * and bound as bigints, so ids beyond 2^53 stay exact.
 *
 * @example
 * ```ts
 * const rows = await db.select().from(users).where(and(idRange(users.id, beginId, endId), isNull(users.email)));
 * ```
 */
export function idRange(column: Column, beginId: IdLike, endId: IdLike): SQL {
  if (!is(column, Column)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `idRange: column must be a drizzle column (e.g. users.id), got ${String(column)}`, {
      field: "column",
    });
  }
  const begin = parseId(beginId, "beginId");
  const end = parseId(endId, "endId");
  // Bound as plain bigint params, not through the column's encoder: a `mode: "number"`
  // column would round them. mysql2 inlines them as integer literals. PostgreSQL would
  // type them as the column's type, so a range reaching past an `integer` column's
  // largest value would fail ("out of range"); as bigint, the comparison stays
  // indexable (btree compares int2/int4 with int8) and accepts any 64-bit id.
  if (is(column, PgColumn)) return sql`${column} between cast(${begin} as bigint) and cast(${end} as bigint)`;
  return sql`${column} between ${begin} and ${end}`;
}

/** Options of {@link selectIdsInRange}. */
export interface SelectIdsInRangeOptions extends TargetOptions {
  /** First id of the range (inclusive). */
  beginId: IdLike;
  /** Last id of the range (inclusive). */
  endId: IdLike;
}

/**
 * The ids of the rows in `[beginId, endId]` (within `where`), ascending, as bigints.
 * For handlers that work row by row; rejects with the driver's error if the query fails.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * for (const id of await selectIdsInRange({ db, table: users, column: users.id, beginId, endId })) {
 *   await reencrypt(id);
 * }
 * ```
 */
export async function selectIdsInRange(options: SelectIdsInRangeOptions): Promise<bigint[]> {
  const target = resolveTarget(options, "selectIdsInRange");
  const range = idRange(target.column, options.beginId, options.endId);
  const values = await selectText(target, target.column, and(range, target.where), asc(target.column));
  return values.map((value) => parseDbId(value, target, "an id"));
}
