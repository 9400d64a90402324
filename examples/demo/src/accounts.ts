import { createHash } from "node:crypto";
import type { BackfillConfigInput, BatchContext, SuperSpreader } from "@superspreader/core";
import { createDrizzleIdSource, idRange } from "@superspreader/source-drizzle";
import { sql } from "drizzle-orm";
import { bigint, pgTable, text } from "drizzle-orm/pg-core";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";

/** The name every example defines its backfill under. */
export const BACKFILL_NAME = "normalise-emails";

/** The table the examples create, unless told otherwise. Distinctive, because the real example drops and recreates it. */
export const DEFAULT_TABLE_NAME = "superspreader_example_accounts";

/**
 * The accounts table of the examples: `email` as users typed it, and two columns the
 * backfill fills in: the normalised address and its MD5 checksum.
 *
 * @example
 * ```ts
 * const accounts = accountsTable("accounts_test_1");
 * await createAccountsTable(db, accounts, 10_000);
 * ```
 */
export function accountsTable(name: string = DEFAULT_TABLE_NAME) {
  return pgTable(name, {
    id: bigint("id", { mode: "bigint" }).primaryKey(),
    email: text("email").notNull(),
    emailNormalized: text("email_normalized"),
    emailMd5: text("email_md5"),
  });
}

/** The table type {@link accountsTable} returns. */
export type AccountsTable = ReturnType<typeof accountsTable>;

/** A drizzle PostgreSQL database on any driver (PGlite, node-postgres, …). */
// `any` for the schema: drizzle's databases are invariant in it, and the examples use no relational queries.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPgDatabase = PgDatabase<PgQueryResultHKT, any>;

/**
 * What the backfill does to one address, in application code: trim, lower-case, and drop
 * a `+tag` from the local part. The verification below restates it in SQL; the two agree
 * on the seeded data (PostgreSQL's `trim` strips spaces only, and the seed pads with spaces).
 *
 * @example
 * ```ts
 * normaliseEmail("  Ada.7+news3@Example.COM "); // "ada.7@example.com"
 * ```
 */
export function normaliseEmail(email: string): string {
  const lower = email.trim().toLowerCase();
  const at = lower.lastIndexOf("@");
  const plus = lower.indexOf("+");
  return plus >= 0 && plus < at ? lower.slice(0, plus) + lower.slice(at) : lower;
}

/** The SQL twin of {@link normaliseEmail}, used only to verify the backfill's work. */
function normalisedInSql(table: AccountsTable) {
  return sql`regexp_replace(lower(trim(${table.email})), '\\+[^@]*@', '@')`;
}

/**
 * Drops and creates the table, then inserts `rows` accounts with ids 1..rows in one
 * statement. Mixed-case, padded addresses, a third of them with a `+tag`.
 *
 * @example
 * ```ts
 * await createAccountsTable(drizzle({ client: new PGlite() }), accountsTable(), 1_000_000);
 * ```
 */
export async function createAccountsTable(db: AnyPgDatabase, table: AccountsTable, rows: number): Promise<void> {
  await db.execute(sql`drop table if exists ${table}`);
  // The primary key is added after the insert: building the index once from sorted
  // ids is much faster than maintaining it row by row.
  await db.execute(sql`create table ${table} (id bigint not null, email text not null, email_normalized text, email_md5 text)`);
  await db.execute(sql`
    insert into ${table} (id, email)
    select g, format('  %s.%s%s@%s.COM ',
                     (array['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Ken'])[1 + g % 6],
                     g,
                     case when g % 3 = 0 then '+news' || (g % 7) else '' end,
                     (array['Example', 'Mail', 'Inbox'])[1 + g % 3])
    from generate_series(1, ${rows}::bigint) as g`);
  await db.execute(sql`alter table ${table} add primary key (id)`);
}

/** A PostgreSQL array literal of text values, quoted so that commas, quotes and backslashes survive. */
function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}

/** Rows changed by an UPDATE, from PGlite (`affectedRows`) or node-postgres (`rowCount`). */
function changedRows(result: unknown): number {
  const r = result as { affectedRows?: number; rowCount?: number | null };
  return r.affectedRows ?? r.rowCount ?? 0;
}

/** What one batch did, for statistics. */
export interface BatchWork {
  /** Rows of the range read. */
  readonly rows: number;
  /** Rows the UPDATE changed: 0 when the range had already been done (a repeated delivery). */
  readonly written: number;
}

/** Options of {@link createNormaliseEmailsHandler}. */
export interface NormaliseEmailsHandlerOptions {
  /** The database holding the table. */
  db: AnyPgDatabase;
  /** The table, from {@link accountsTable}. */
  table: AccountsTable;
  /**
   * Called after every batch with what it did.
   * @default undefined
   */
  onBatch?: (work: BatchWork) => void;
}

/**
 * The batch handler: reads the range's rows, normalises and checksums each address in
 * JavaScript, and writes the range back with one `UPDATE … FROM unnest(…)`.
 *
 * Idempotent: the values are a pure function of `email`, and rows that already hold them
 * are left alone (`is distinct from`), so a range delivered twice writes nothing the second time.
 *
 * @example
 * ```ts
 * spreader.define("normalise-emails", { source, config, handle: createNormaliseEmailsHandler({ db, table }) });
 * ```
 */
export function createNormaliseEmailsHandler(options: NormaliseEmailsHandlerOptions): (context: BatchContext) => Promise<void> {
  const { db, table, onBatch } = options;
  return async ({ beginId, endId, signal }) => {
    // PGlite runs each query synchronously inside a promise. A worker that is behind would
    // then chain batch after batch in microtasks, and timers (progress, the next tick) would
    // never fire; one macrotask turn per batch lets them in. Costs microseconds elsewhere.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const rows = await db.select({ id: table.id, email: table.email }).from(table).where(idRange(table.id, beginId, endId));
    signal.throwIfAborted();
    const ids: string[] = [];
    const normalised: string[] = [];
    const digests: string[] = [];
    for (const row of rows) {
      const value = normaliseEmail(row.email);
      ids.push(row.id.toString());
      normalised.push(value);
      digests.push(createHash("md5").update(value).digest("hex"));
    }
    if (ids.length === 0) {
      onBatch?.({ rows: 0, written: 0 });
      return;
    }
    // Three array parameters whatever the batch size (a VALUES list would need three per row
    // and hit PostgreSQL's 65,535-parameter limit). The id range lets PostgreSQL scan one
    // stretch of the primary key instead of probing it once per row.
    const result = await db.execute(sql`
      update ${table}
      set ${sql.identifier(table.emailNormalized.name)} = v.normalised, ${sql.identifier(table.emailMd5.name)} = v.digest
      from unnest(${`{${ids.join(",")}}`}::bigint[], ${textArray(normalised)}::text[], ${textArray(digests)}::text[]) as v(id, normalised, digest)
      where ${table.id} = v.id and ${idRange(table.id, beginId, endId)}
        and (${table.emailNormalized} is distinct from v.normalised or ${table.emailMd5} is distinct from v.digest)`);
    onBatch?.({ rows: ids.length, written: changedRows(result) });
  };
}

/** Options of {@link defineNormaliseEmails}. */
export interface DefineNormaliseEmailsOptions extends NormaliseEmailsHandlerOptions {
  /** The backfill's pace. */
  config: BackfillConfigInput;
  /**
   * The name to define it under.
   * @default BACKFILL_NAME ("normalise-emails")
   */
  name?: string;
}

/**
 * Defines the examples' backfill on a runtime: ids from the table's primary key, the
 * handler of {@link createNormaliseEmailsHandler}. Every process that may run its jobs
 * (and the one that starts it) calls this.
 *
 * @example
 * ```ts
 * defineNormaliseEmails(spreader, { db, table: accountsTable(), config: { batchSize: 2000, duration: 2, perSecondOnPeak: 30, perSecondOffPeak: 30 } });
 * await spreader.start("normalise-emails");
 * ```
 */
export function defineNormaliseEmails(spreader: SuperSpreader, options: DefineNormaliseEmailsOptions): void {
  spreader.define(options.name ?? BACKFILL_NAME, {
    source: createDrizzleIdSource({ db: options.db, table: options.table, column: options.table.id }),
    config: options.config,
    handle: createNormaliseEmailsHandler(options),
  });
}

/** What {@link verifyAccounts} found. */
export interface AccountsCheck {
  /** Rows in the table. */
  readonly rows: number;
  /** Rows whose normalised address or checksum is missing or wrong. */
  readonly wrongRows: number;
}

/**
 * Checks the backfill's work with SQL alone, independently of the handler: every row's
 * `email_normalized` and `email_md5` must match what PostgreSQL computes from `email`.
 *
 * @example
 * ```ts
 * const { rows, wrongRows } = await verifyAccounts(db, accounts); // wrongRows === 0 when the backfill is complete
 * ```
 */
export async function verifyAccounts(db: AnyPgDatabase, table: AccountsTable): Promise<AccountsCheck> {
  // md5 of the stored value, not of the expression again: where the two differ the row is wrong anyway.
  const result = await db.execute(sql`
    select count(*)::int as rows,
           (count(*) filter (where ${table.emailNormalized} is distinct from ${normalisedInSql(table)}
                                or ${table.emailMd5} is distinct from md5(${table.emailNormalized})))::int as wrong
    from ${table}`);
  const [row] = (result as unknown as { rows: Array<{ rows: number; wrong: number }> }).rows;
  return { rows: Number(row?.rows ?? 0), wrongRows: Number(row?.wrong ?? 0) };
}
