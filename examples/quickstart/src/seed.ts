// Creates the quickstart's `messages` table in DATABASE_URL (dropping an old one) and fills it
// with ROWS messages encrypted with key 1:   DATABASE_URL=postgres://… pnpm seed [ROWS=2000]
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { encrypt } from "./crypto.js";
import { messages } from "./schema.js";

const plainText = (id: bigint) => `message ${id}: the quick brown fox`;

const rows = BigInt(process.argv[2] ?? "2000");
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const db = drizzle({ client: pool });
try {
  await db.execute(sql`drop table if exists ${messages}`);
  await db.execute(sql`create table ${messages} (id bigint primary key, body text not null, key_version integer not null)`);
  for (let first = 1n; first <= rows; first += 1000n) {
    const chunk = [];
    for (let id = first; id < first + 1000n && id <= rows; id++) chunk.push({ id, body: encrypt(plainText(id), 1), keyVersion: 1 });
    await db.insert(messages).values(chunk);
  }
  console.log(`seeded ${rows} messages, encrypted with key 1`);
} finally {
  await pool.end();
}
