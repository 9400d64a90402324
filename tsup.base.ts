import type { Options } from "tsup";

/** Shared build settings: every package ships ESM + CJS with declarations for Node 20. */
export const base: Options = {
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  target: "node20",
  sourcemap: true,
  clean: true,
  treeshake: true,
};
