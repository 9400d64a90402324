import { defineProject } from "vitest/config";

export default defineProject({
  // Resolve workspace packages to their TypeScript sources, so tests need no prior build.
  ssr: { resolve: { conditions: ["@superspreader/source"] } },
  resolve: { conditions: ["@superspreader/source"] },
  test: {
    name: "store-drizzle",
    include: ["test/**/*.test.ts"],
    // PGlite runs PostgreSQL in this process's one thread: the contract's 100 concurrent
    // completions take it several seconds on a loaded 2-core machine (vitest's default is 5 s).
    testTimeout: 30_000,
  },
});
