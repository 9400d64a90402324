export { SuperSpreaderError, isSuperSpreaderError, describeValue } from "./errors.js";
export type { SuperSpreaderErrorCode } from "./errors.js";
export { parseId, padId, mergeRanges, findGaps, rangeSize, formatRange, MAX_ID } from "./ids.js";
export type { IdLike } from "./ids.js";
export type {
  IdRange,
  RangeEntry,
  FailedRange,
  TickJobData,
  BatchJobData,
  JobData,
  QueueJob,
  EnqueueResult,
  QueueCounts,
  JobQueueCapabilities,
  JobQueue,
  JobContext,
  JobOutcome,
  JobProcessor,
  IdSourceCapabilities,
  IdSource,
  Versioned,
  ConfigChange,
  RunMetrics,
  StateStore,
} from "./ports.js";
export { systemClock, createManualClock } from "./clock.js";
export type { Clock, ManualClock } from "./clock.js";
export { createMemoryStateStore } from "./memory-store.js";
export { createMemoryJobQueue, createMemoryWorker } from "./memory-queue.js";
export type {
  MemoryJobQueue,
  MemoryJobQueueOptions,
  MemoryJobRecord,
  MemoryJobState,
  MemoryWorker,
  MemoryWorkerOptions,
} from "./memory-queue.js";
export { createMemoryIdSource } from "./memory-source.js";
export type { MemoryIdSourceOptions } from "./memory-source.js";
export { assertValidJob, checkName, checkRunId, checkRange, checkLimit, NAME_PATTERN } from "./validate-args.js";
export { spread } from "./spread.js";
export type { SpreadOptions, SpreadBatch } from "./spread.js";
export { isOnPeak } from "./peak.js";
export type { PeakInput, PeakWindowInput, PeakSchedule, PeakWindow, DaysInput } from "./peak.js";
export { validateConfig, rateAt, MAX_BATCHES_PER_CYCLE } from "./config.js";
export type { BackfillConfig, BackfillConfigInput, RateAt } from "./config.js";
export { estimate, observedRate, nextWindowChange } from "./estimate.js";
export type { Estimate, EstimateOptions, ObservedRateOptions, WindowChange } from "./estimate.js";
export type { BackfillStatusName } from "./doc.js";
export type { SuperSpreaderEvents, SuperSpreaderEventName, SuperSpreaderListener } from "./events.js";
export { createSuperSpreader, batchJobId, tickJobId } from "./runtime.js";
export type {
  SuperSpreader,
  SuperSpreaderOptions,
  BackfillDefinition,
  BatchContext,
  BackfillStatus,
  BackfillProgress,
  AuditReport,
  ChangeOptions,
  StartOptions,
} from "./runtime.js";
