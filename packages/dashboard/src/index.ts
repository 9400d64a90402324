export { createDashboard } from "./dashboard.js";
export type { Dashboard, DashboardOptions } from "./dashboard.js";
export type { DashboardSpreader } from "./compat.js";
export type { Authorize, AuthorizeResult } from "./security.js";
export { toNodeListener } from "./node.js";
export type { FetchHandler, NodeListener } from "./node.js";
export { fastifyDashboard, honoDashboard } from "./frameworks.js";
export type { FastifyInstanceLike } from "./frameworks.js";
export { serveDashboard } from "./serve.js";
export type { ServeDashboardOptions, ServedDashboard } from "./serve.js";
export { CONTENT_SECURITY_POLICY } from "./http.js";
export { ACTIONS } from "./wire.js";
export type {
  Capabilities,
  DashboardAction,
  WireChange,
  WireChart,
  WireConfig,
  WireDetail,
  WireControl,
  WireErrorGroup,
  WireEstimate,
  WireEta,
  WireEvents,
  WireList,
  WireListRow,
  WireMonitor,
  WirePlan,
  WirePlannedBatch,
  WireProblem,
  WireRange,
  WireRangeSet,
  WireRanges,
  WireRow,
  WireSession,
  WireUnreadableRow,
  WireWindow,
} from "./wire.js";
