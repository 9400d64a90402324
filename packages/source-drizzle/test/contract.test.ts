import { describeIdSourceContract } from "@superspreader/contract-tests";
import { afterAll, beforeAll } from "vitest";
import { createDrizzleIdSource } from "../src/index.js";
import { openMariadb, openPglite, openPostgres } from "./kits.js";
import type { IdKind, Kit } from "./kits.js";

const kits: Partial<Record<"pglite" | "postgres" | "mariadb", Kit>> = {};
beforeAll(async () => {
  // Opened up front: PGlite's start-up (a few seconds) must not eat a test's timeout.
  [kits.pglite, kits.postgres, kits.mariadb] = await Promise.all([openPglite(), openPostgres(), openMariadb()]);
}, 60_000);
afterAll(async () => {
  await Promise.all(Object.values(kits).map((kit) => kit.close()));
});

function contract(name: string, kitName: keyof typeof kits, kind: IdKind): void {
  describeIdSourceContract(
    name,
    async (ids) => {
      const kit = kits[kitName]!;
      const t = await kit.createTable(kind, ids);
      return { source: createDrizzleIdSource({ db: kit.db, table: t.table, column: t.id }), cleanup: () => kit.dropTables() };
    },
    // A 32-bit column cannot hold the suite's ids beyond 2^53.
    { skipBigIds: kind === "integer" },
  );
}

contract("drizzle PGlite, bigint column", "pglite", "bigint");
contract("drizzle PGlite, bigint column in number mode", "pglite", "bigint-number");
contract("drizzle node-postgres, bigint column", "postgres", "bigint");
contract("drizzle node-postgres, integer column", "postgres", "integer");
contract("drizzle mysql2 (MariaDB), bigint unsigned column", "mariadb", "bigint");
contract("drizzle mysql2 (MariaDB), serial column", "mariadb", "serial");
