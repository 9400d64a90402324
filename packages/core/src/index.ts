export { SuperSpreaderError, isSuperSpreaderError } from "./errors.js";
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
