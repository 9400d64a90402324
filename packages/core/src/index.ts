export { SuperSpreaderError, isSuperSpreaderError, describeValue } from "./errors.js";
export type { SuperSpreaderErrorCode } from "./errors.js";
export { parseId, padId, mergeRanges, findGaps, rangeSize, formatRange, MAX_ID } from "./ids.js";
export type { IdLike } from "./ids.js";
export type {
  IdRange,
  RangeEntry,
  FailedRange,
  OutstandingEntry,
  FailureCounts,
  BatchTiming,
  BudgetClaim,
  BudgetMember,
  RangeRun,
  RangeTransactions,
  StateStoreCapabilities,
  HealthLevel,
  HealthReading,
  HealthContext,
  HealthIndicator,
  JobState,
  ShutdownMode,
  WatchdogAction,
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
  OutputEntry,
  OutputAdded,
  OutputPage,
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
export { createArraySource, createIterableSource } from "./array-source.js";
export type { ArraySource, IterableSourceOptions } from "./array-source.js";
export type { MemoryIdSourceOptions } from "./memory-source.js";
export { spread } from "./spread.js";
export type { SpreadOptions, SpreadBatch } from "./spread.js";
export { isOnPeak } from "./peak.js";
export type { PeakInput, PeakWindowInput, PeakSchedule, PeakWindow, DaysInput } from "./peak.js";
export { validateConfig, rateAt, MAX_BATCHES_PER_CYCLE, MIN_DURATION_SECONDS, DEFAULT_BATCH_PRIORITY } from "./config.js";
export type { OutputPolicy } from "./config.js";
export type { BackfillConfig, BackfillConfigInput, RateAt, HoldPolicy, HoldPolicyInput, AutotuneInput, AutotunePolicy, HealthPolicy, BudgetPolicy } from "./config.js";
export { decide, initialControl } from "./control.js";
export type { ControlState, ControlDecision, ControlInputs, Sample, SampleMark } from "./control.js";
export { effectiveConfig } from "./effective.js";
export { planDeadline } from "./loop.js";
export type { PlanDeadlineOptions, DeadlinePlan } from "./loop.js";
export { planCycle, cycleJobs, cycleCapacity, planRanges, batchJobId, tickJobId, LATE_TICK_MS, TICK_PRIORITY } from "./cycle.js";
export type { RunState, CyclePlan, CycleJobs, CycleOptions } from "./cycle.js";
export type { HoldState, WatchdogRecord, StartRequest, StoredPace, RepairSummary, RepairRequest, StoredSpan, ExtendRequest, ExtendSummary } from "./doc.js";
export type { ExtendReport } from "./extend.js";
export { estimate, observedRate, nextWindowChange, rateWindow } from "./estimate.js";
export type { Estimate, EstimateOptions, ObservedRateOptions, WindowChange, RateWindow } from "./estimate.js";
export type { BackfillStatusName } from "./doc.js";
export type { SuperSpreaderEvents, SuperSpreaderEventName, SuperSpreaderListener } from "./events.js";
export { createSuperSpreader } from "./runtime.js";
export type {
  SuperSpreader,
  SuperSpreaderOptions,
  BackfillDefinition,
  BatchContext,
  TransactionalBackfillDefinition,
  TransactionalBatchContext,
  ChangeOptions,
  StartOptions,
  RepairReport,
} from "./runtime.js";
export { tally } from "./status.js";
export type { ControlView } from "./status.js";
export type { BackfillStatus, BackfillProgress, AuditReport, ClassifiedGap, GapKind, NextCycle, PlannedBatch, RunEta } from "./status.js";
