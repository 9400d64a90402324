// `pnpm --filter @superspreader/example-demo start [flags]`: the demo's command line (see --help).
import { runCli } from "./cli.js";
import { DEMO_FLAGS, runDemo } from "./demo.js";

await runCli({ spec: DEMO_FLAGS, run: (settings, signal) => runDemo({ ...settings, signal }) });
