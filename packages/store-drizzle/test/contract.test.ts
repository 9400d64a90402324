import { describeStateStoreContract } from "@superspreader/contract-tests";
import { afterAll, beforeAll } from "vitest";
import { createDrizzleStateStore, migrateStateStore } from "../src/index.js";
import { KIT_NAMES, OPENERS, type Kit, type KitName } from "./kits.js";

// One database per driver for the file, migrated once; the suite's random backfill names and
// budget keys keep its tests apart.
const kits: Partial<Record<KitName, Kit>> = {};
beforeAll(async () => {
  // Opened up front: PGlite's start-up (a few seconds) must not eat a test's timeout.
  await Promise.all(
    KIT_NAMES.map(async (name) => {
      const kit = await OPENERS[name]();
      kits[name] = kit;
      await migrateStateStore(kit.db);
    }),
  );
}, 60_000);
afterAll(async () => {
  await Promise.all(Object.values(kits).map((kit) => kit.close()));
});

const labels: Record<KitName, string> = {
  pglite: "drizzle PGlite",
  postgres: "drizzle node-postgres (PostgreSQL)",
  mariadb: "drizzle mysql2 (MariaDB)",
};

for (const name of KIT_NAMES) {
  describeStateStoreContract(labels[name], async () => ({ store: createDrizzleStateStore({ db: kits[name]!.db }) }));
}
