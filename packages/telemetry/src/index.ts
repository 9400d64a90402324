export { instrumentOpenTelemetry, INSTRUMENTATION_SCOPE } from "./opentelemetry.js";
export type { InstrumentOpenTelemetryOptions } from "./opentelemetry.js";
export { prometheusMetrics, PROMETHEUS_CONTENT_TYPE } from "./prometheus.js";
export type { PrometheusMetrics, PrometheusMetricsOptions } from "./prometheus.js";
export { logEvents } from "./logger.js";
export type { LogEventsOptions, LogLevel, LogMethod, StructuredLogger } from "./logger.js";
export type { SuperSpreaderEventSource } from "./subscribe.js";
