import { bigint, integer, pgTable, text } from "drizzle-orm/pg-core";

/** Your table, as your app declares it for drizzle: every body is encrypted with the key `keyVersion` names. */
export const messages = pgTable("messages", {
  id: bigint("id", { mode: "bigint" }).primaryKey(),
  body: text("body").notNull(),
  keyVersion: integer("key_version").notNull(),
});
