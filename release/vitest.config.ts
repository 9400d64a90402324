import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "release",
    include: ["test/**/*.test.ts"],
    // Packing, installing and compiling take a while; each command has its own, tighter timeout.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
