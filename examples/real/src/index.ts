export { REAL_DEFAULTS, REAL_FLAGS, runReal } from "./real.js";
export type { RealOptions, RealSummary } from "./real.js";
export type { ParentMessage, WorkerArgs, WorkerMessage } from "./protocol.js";
