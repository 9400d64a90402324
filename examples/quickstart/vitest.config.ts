import { defineProject } from "vitest/config";

export default defineProject({
  // Resolve workspace packages to their TypeScript sources, so tests need no prior build.
  ssr: { resolve: { conditions: ["@superspreader/source"] } },
  resolve: { conditions: ["@superspreader/source"] },
  test: { name: "quickstart", include: ["test/**/*.test.ts"] },
});
