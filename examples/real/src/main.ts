// `pnpm --filter @superspreader/example-real start [flags]`: the real example's command line (see --help).
import { runCli } from "@superspreader/example-demo";
import { REAL_FLAGS, runReal } from "./real.js";

await runCli({ spec: REAL_FLAGS, run: (settings, signal) => runReal({ ...settings, signal }) });
