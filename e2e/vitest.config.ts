import { defineProject } from "vitest/config";

export default defineProject({
  // Resolve workspace packages to their TypeScript sources, so the suite needs no prior build.
  ssr: { resolve: { conditions: ["@superspreader/source"] } },
  resolve: { conditions: ["@superspreader/source"] },
  test: { name: "e2e", include: ["test/**/*.test.ts"] },
});
