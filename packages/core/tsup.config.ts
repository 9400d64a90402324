import { defineConfig } from "tsup";
import { base } from "../../tsup.base";

// Two entries: the user API, and the adapter-author helpers at @superspreader/core/adapter.
export default defineConfig({ ...base, entry: ["src/index.ts", "src/adapter.ts"] });
