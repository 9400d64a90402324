import type { Command } from "./commands.js";
import { CliError, EXIT } from "./errors.js";

/**
 * `superspreader migrate`: store-drizzle's `migrateStateStore` on the `--database-url` database, reporting
 * whether it created, upgraded or found the tables current. A newer schema is the store's error (exit 1).
 */
export const migrate: Command = async ({ app, args }) => {
  if (args.length > 0) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(args[0])}: superspreader migrate --database-url URL [--table-prefix PREFIX]`);
  const { database } = app;
  if (database === null) {
    throw new CliError(
      EXIT.USAGE,
      app.hasQueue
        ? "migrate works on --database-url, not on a --config module: pass --database-url URL (and --table-prefix if your store has one)"
        : "migrate needs --database-url (a PostgreSQL or MySQL/MariaDB URL): a Redis store has no tables to create",
    );
  }
  const { from, to } = await database.migrate();
  const tables = `"${database.tablePrefix}*"`;
  const where = `${database.label} at ${database.url}`;
  const text =
    from === to
      ? `nothing to do: the tables ${tables} in ${where} are already at schema version ${to}`
      : from === 0
        ? `created the tables ${tables} in ${where} (schema version ${to})`
        : `upgraded the tables ${tables} in ${where} from schema version ${from} to ${to}`;
  return {
    json: { database: database.url, dialect: database.label, tablePrefix: database.tablePrefix, from, to, created: from === 0 && to > 0, changed: from !== to },
    text,
  };
};
