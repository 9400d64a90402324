export { runCli } from "./run.js";
export type { CliIO } from "./run.js";
export { EXIT } from "./errors.js";
export type { ExitCode } from "./errors.js";
export type { CliConfigModule } from "./app.js";
