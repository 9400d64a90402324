import { defineConfig } from "tsup";
import { base } from "../../tsup.base";

// src/cli.ts starts with a shebang, which esbuild keeps and tsup turns into an executable file.
export default defineConfig({ ...base, entry: ["src/index.ts", "src/cli.ts"] });
