import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: ["packages/*", "examples/*", "e2e*", "release"],
    // Real servers (redis-server, PostgreSQL, MariaDB) are started once for the whole run.
    globalSetup: ["./scripts/servers/global-setup.ts"],
  },
});
